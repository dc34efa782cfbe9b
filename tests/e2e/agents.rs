//! Owners register their agents through the API with the wallet's EIP-712 proof (ECDSA or
//! ERC-1271), list them, and issue and list their API keys. A registration without a valid
//! proof, or for a wallet another agent has, stores nothing; an agent registered before proofs
//! existed cannot sign in.

use alloy::signers::local::PrivateKeySigner;
use pactum_client::{
    Client, Registration, sign_registration,
    types::{ListAgents, RegisterAgent, RegistrationParams},
};

use crate::{
    agreements::problem,
    relayer::Fixture,
    wallet::{APPROVE, REFUSE, WalletSigner, set_mode},
};

/// Seconds since the epoch.
fn now() -> u64 {
    pactum_core::Clock::now_secs(&pactum_core::SystemClock)
}

/// A registration of `agent_id` for owner `acme` in the fixture's deployment, valid 10 minutes.
fn registration<'a>(f: &Fixture, agent_id: &'a str) -> Registration<'a> {
    Registration {
        chain_id: f.chain.deployment.chain_id,
        escrow: f.chain.deployment.escrow,
        owner_id: "acme",
        agent_id,
        name: "research bot",
        deadline: now() + 600,
    }
}

async fn agents_stored(f: &Fixture) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(f.db().pool())
        .await?)
}

#[tokio::test]
async fn an_owner_registers_an_agent_and_issues_its_keys() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let wallet = PrivateKeySigner::random();

    // The message the API hands out is the one the wallet signs on its own.
    let handed = owner
        .registration_message(&RegistrationParams {
            agent_id: "research-bot".into(),
            wallet_address: wallet.address().to_string(),
            deadline: Some(now() + 600),
        })
        .await?;
    let r = Registration {
        deadline: handed.deadline,
        ..registration(&f, "research-bot")
    };
    let ours = pactum_api::identity::registration_digest(
        pactum_api::identity::Deployment {
            chain_id: r.chain_id,
            escrow: r.escrow,
        },
        "acme",
        "research-bot",
        wallet.address(),
        r.deadline,
    );
    assert_eq!(handed.registration.digest, ours.to_string());
    assert_eq!(
        handed.registration.typed_data["primaryType"],
        "AgentRegistration"
    );

    let body = sign_registration(&wallet, &r).await?;
    let created = owner.register_agent(&body, "reg-1").await?;
    assert_eq!(created.status, 201);
    let agent = created.body;
    assert_eq!(agent.agent_id, "research-bot");
    assert_eq!(agent.owner_id, "acme");
    assert_eq!(agent.wallet_address, wallet.address().to_string());
    assert!(agent.wallet_proven);
    assert_eq!(agent.active_api_keys, 0);
    // The same request again is answered as it was; the same id with a new key is taken.
    let replayed = owner.register_agent(&body, "reg-1").await?;
    assert_eq!(replayed.body, agent);
    assert_eq!(
        problem(owner.register_agent(&body, "reg-2").await)?,
        (409, "agent_id_taken".into())
    );

    // A key for it, shown once; listed without its secret; the agent signs in with it.
    let key = owner.create_api_key("research-bot", "ci", "key-1").await?;
    assert_eq!(key.status, 201);
    assert!(
        key.body
            .api_key
            .starts_with(&format!("pk_{}_", key.body.key_id))
    );
    let listed = owner.api_keys("research-bot").await?;
    assert_eq!(listed.keys.len(), 1);
    assert_eq!(listed.keys[0].key_id, key.body.key_id);
    assert_eq!(listed.keys[0].label, "ci");
    let raw = owner
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            "agents/research-bot/api-keys",
            &[],
            None,
        )
        .await?;
    assert!(
        !raw.text().contains(&key.body.api_key[20..]),
        "a secret was listed"
    );
    let as_agent = owner.authenticated(&key.body.api_key);
    assert_eq!(as_agent.agent("research-bot").await?.active_api_keys, 1);
    // An agent does not manage agents.
    assert_eq!(
        problem(as_agent.agents(&ListAgents::default()).await)?,
        (403, "owner_only".into())
    );
    assert_eq!(
        problem(as_agent.create_api_key("research-bot", "", "k").await)?,
        (403, "owner_only".into())
    );

    // The owner's agents, a page at a time, by id: buyer, research-bot, seller.
    let first = owner
        .agents(&ListAgents {
            limit: Some(2),
            cursor: None,
        })
        .await?;
    let ids: Vec<&str> = first.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["buyer", "research-bot"]);
    let rest = owner
        .agents(&ListAgents {
            limit: Some(2),
            cursor: first.next_cursor.clone(),
        })
        .await?;
    let ids: Vec<&str> = rest.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, ["seller"]);
    assert_eq!(rest.next_cursor, None);

    // Another owner sees none of it.
    let stranger = f.owner_api("globex");
    let mut conn = f.db().pool().acquire().await?;
    pactum_db::identity::create_owner(&mut conn, "globex", "Globex", "ops@globex.test").await?;
    drop(conn);
    assert_eq!(
        problem(stranger.agent("research-bot").await)?,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        problem(stranger.api_keys("research-bot").await)?,
        (404, "agent_not_found".into())
    );
    assert!(
        stranger
            .agents(&ListAgents::default())
            .await?
            .agents
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_registration_without_a_valid_proof_stores_nothing() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let before = agents_stored(&f).await?;
    let wallet = PrivateKeySigner::random();
    let good = sign_registration(&wallet, &registration(&f, "bot-1")).await?;

    // Signed by another key than the wallet's.
    let mut other_key =
        sign_registration(&PrivateKeySigner::random(), &registration(&f, "bot-1")).await?;
    other_key.wallet_address = wallet.address().to_string();
    // The wallet's signature, but of another agent id, owner, chain, or deadline.
    let other_agent = RegisterAgent {
        agent_id: "bot-2".into(),
        ..good.clone()
    };
    let other_owner = sign_registration(
        &wallet,
        &Registration {
            owner_id: "globex",
            ..registration(&f, "bot-1")
        },
    )
    .await?;
    let other_chain = sign_registration(
        &wallet,
        &Registration {
            chain_id: 1,
            ..registration(&f, "bot-1")
        },
    )
    .await?;
    let other_deadline = RegisterAgent {
        deadline: good.deadline + 1,
        ..good.clone()
    };
    for (n, body) in [
        other_key,
        other_agent,
        other_owner,
        other_chain,
        other_deadline,
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            problem(owner.register_agent(body, &format!("bad-{n}")).await)?,
            (422, "invalid_wallet_proof".into()),
            "case {n}"
        );
    }
    // Deadlines past, or too far ahead.
    let past = sign_registration(
        &wallet,
        &Registration {
            deadline: now() - 1,
            ..registration(&f, "bot-1")
        },
    )
    .await?;
    assert_eq!(
        problem(owner.register_agent(&past, "past").await)?,
        (422, "wallet_proof_expired".into())
    );
    let far = sign_registration(
        &wallet,
        &Registration {
            deadline: now() + 7_200,
            ..registration(&f, "bot-1")
        },
    )
    .await?;
    assert_eq!(
        problem(owner.register_agent(&far, "far").await)?,
        (422, "wallet_proof_deadline_too_far".into())
    );
    // A bad id, a blank name.
    let bad_id = sign_registration(&wallet, &registration(&f, "no spaces")).await?;
    assert_eq!(
        problem(owner.register_agent(&bad_id, "id").await)?,
        (422, "invalid_agent_id".into())
    );
    let blank = sign_registration(
        &wallet,
        &Registration {
            name: "  ",
            ..registration(&f, "bot-1")
        },
    )
    .await?;
    assert_eq!(
        problem(owner.register_agent(&blank, "name").await)?,
        (422, "invalid_name".into())
    );
    // A wallet another agent already has, with its own valid proof.
    let reused = sign_registration(&f.chain.buyer, &registration(&f, "buyer-2")).await?;
    assert_eq!(
        problem(owner.register_agent(&reused, "reused").await)?,
        (409, "wallet_already_registered".into())
    );
    // An agent's key cannot register agents.
    assert_eq!(
        problem(f.buyer_api.register_agent(&good, "as-agent").await)?,
        (403, "owner_only".into())
    );
    assert_eq!(agents_stored(&f).await?, before);

    // The good one still registers.
    owner.register_agent(&good, "good").await?;
    assert_eq!(agents_stored(&f).await?, before + 1);
    Ok(())
}

#[tokio::test]
async fn a_contract_wallet_proves_itself_through_erc1271() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let wallet = WalletSigner::deploy_funded(&f.chain, 1).await?;
    // While the wallet refuses every signature, its owner's is not enough.
    set_mode(&f.chain, wallet.wallet, REFUSE).await?;
    let body = sign_registration(&wallet, &registration(&f, "vault-bot")).await?;
    assert_eq!(
        problem(owner.register_agent(&body, "refused").await)?,
        (422, "invalid_wallet_proof".into())
    );
    // Approving again, the same proof registers it.
    set_mode(&f.chain, wallet.wallet, APPROVE).await?;
    let agent = owner.register_agent(&body, "approved").await?.body;
    assert_eq!(agent.wallet_address, wallet.wallet.to_string());
    assert!(agent.wallet_proven);
    Ok(())
}

#[tokio::test]
async fn an_agent_whose_wallet_never_proved_itself_cannot_sign_in() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    // An agent as registered before proofs existed: no proof stored.
    let wallet = PrivateKeySigner::random();
    let mut conn = f.db().pool().acquire().await?;
    sqlx::query(
        "INSERT INTO agents (id, owner_id, name, wallet_address) VALUES ('legacy', 'acme', 'legacy', $1)",
    )
    .bind(wallet.address().as_slice())
    .execute(&mut *conn)
    .await?;
    let (id, key, hash) = pactum_api::auth::generate_api_key();
    pactum_db::identity::create_api_key(&mut conn, &id, "legacy", &hash, "old").await?;
    drop(conn);
    let legacy: Client = f.buyer_api.authenticated(&key);
    let answer = legacy
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            "agents/legacy",
            &[],
            None,
        )
        .await?;
    assert_eq!(answer.status.as_u16(), 401, "{}", answer.text());
    assert!(
        answer.text().contains("never proved itself"),
        "{}",
        answer.text()
    );
    // Its owner still sees it, unproven.
    let seen = f.owner_api("acme").agent("legacy").await?;
    assert!(!seen.wallet_proven);
    // It does not keep the wallet from the agent that proves it.
    let proven = sign_registration(&wallet, &registration(&f, "proven-bot")).await?;
    let agent = f
        .owner_api("acme")
        .register_agent(&proven, "proven")
        .await?
        .body;
    assert!(agent.wallet_proven);
    Ok(())
}
