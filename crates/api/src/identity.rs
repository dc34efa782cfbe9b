//! Owners' agents: registration with the wallet's proof, listing, and API keys.
//!
//! An owner registers an agent under an id it chooses, acting from a wallet, with the wallet's
//! EIP-712 signature of `AgentRegistration(owner, agent, wallet, deadline)` in the agents domain
//! (chain id and escrow address bind it to this deployment). The signature is checked before
//! anything is stored: recovered locally (ECDSA), else asked of the wallet (ERC-1271, through
//! the relayer's node). A wallet belongs to one agent. `pactum admin` registers through the same
//! [`register_agent`].

use alloy::primitives::{Address, Bytes};
use pactum_api_types::{
    AgentPage, AgentView, ApiKeyList, ApiKeyView, NewApiKey, RegisterAgent, RegistrationMessage,
    RegistrationParams, TypedMessage,
};
use pactum_core::{
    Clock, SystemClock,
    escrow::typed_data,
    identity::{self as rules, IdentityCode, IdentityError},
};
use pactum_db::identity::{self as store, Registration, WalletProof};

use crate::{AppState, auth::Principal, input::parse_address, problem::Problem};

/// How long a registration message handed out stays usable unless a deadline is asked for.
pub const DEFAULT_PROOF_SECS: u64 = 900;

/// Where registrations are verified: the chain and the deployment's escrow (the agents
/// domain's verifying contract).
#[derive(Debug, Clone, Copy)]
pub struct Deployment {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub escrow: Address,
}

fn deployment(state: &AppState) -> Result<Deployment, Problem> {
    state
        .agreements
        .map(|a| Deployment {
            chain_id: state.chain_id,
            escrow: a.escrow,
        })
        .ok_or_else(|| {
            Problem::unavailable("this server registers no agents (no deployment configured)")
        })
}

pub(crate) fn owner_of(principal: &Principal) -> Result<&str, Problem> {
    match principal {
        Principal::Owner { owner_id } => Ok(owner_id),
        Principal::Agent { .. } => Err(IdentityError::new(
            IdentityCode::OwnerOnly,
            "agents are managed by their owner: send the owner's JWT",
        )
        .into()),
    }
}

fn not_found(agent_id: &str) -> Problem {
    IdentityError::new(
        IdentityCode::AgentNotFound,
        format!("no agent {agent_id:?} of yours"),
    )
    .into()
}

/// `GET /agents/registration-message`: the typed data the wallet signs.
pub(crate) fn registration_message(
    state: &AppState,
    principal: &Principal,
    params: &RegistrationParams,
) -> Result<RegistrationMessage, Problem> {
    let owner = owner_of(principal)?;
    let d = deployment(state)?;
    let agent = rules::agent_id(&params.agent_id)?;
    let wallet = parse_address("wallet_address", &params.wallet_address)?;
    let now = SystemClock.now_secs();
    let deadline = params.deadline.unwrap_or(now + DEFAULT_PROOF_SECS);
    rules::proof_deadline(deadline, now)?;
    let domain = pactum_bindings::eip712::agents_domain(d.chain_id, d.escrow);
    let (typed_data, digest) =
        typed_data::agent_registration(&domain, owner, agent, wallet, deadline);
    Ok(RegistrationMessage {
        owner_id: owner.to_owned(),
        agent_id: agent.to_owned(),
        wallet_address: wallet.to_string(),
        deadline,
        registration: TypedMessage {
            typed_data,
            digest: digest.to_string(),
        },
    })
}

/// A registration to check and store.
#[derive(Debug, Clone)]
pub struct NewAgent<'a> {
    /// The owner registering.
    pub owner_id: &'a str,
    /// The agent id.
    pub agent_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// The wallet.
    pub wallet: Address,
    /// The wallet's signature of the registration.
    pub signature: &'a [u8],
    /// The registration's deadline.
    pub deadline: u64,
}

/// Who answers for a contract wallet (ERC-1271) when a registration is not the wallet's own
/// ECDSA signature.
#[derive(Debug, Clone, Copy)]
pub enum ContractWallets<'a> {
    /// Nobody: ECDSA signatures only.
    None,
    /// The relayer's node, under its gas cap.
    Relayer(&'a pactum_relayer::Relayer),
    /// A node, one `eth_call` under [`ERC1271_GAS_CAP`].
    Node(&'a alloy::providers::DynProvider),
}

/// The gas an ERC-1271 check through [`ContractWallets::Node`] may use.
pub const ERC1271_GAS_CAP: u64 = 400_000;

/// The digest the wallet signs to register agent `agent_id` of `owner_id` until `deadline`.
pub fn registration_digest(
    deployment: Deployment,
    owner_id: &str,
    agent_id: &str,
    wallet: Address,
    deadline: u64,
) -> alloy::primitives::B256 {
    let domain = pactum_bindings::eip712::agents_domain(deployment.chain_id, deployment.escrow);
    typed_data::agent_registration(&domain, owner_id, agent_id, wallet, deadline).1
}

/// Registers agent `agent_id` of `owner_id` with `key`'s wallet, signing the proof here (the
/// wallet's key is at hand: `pactum admin` and the demo on the local stack, benchmarks, tests).
/// The same checks as `POST /agents`.
pub async fn register_with_key(
    db: &pactum_db::Db,
    deployment: Deployment,
    owner_id: &str,
    agent_id: &str,
    name: &str,
    key: &alloy::signers::local::PrivateKeySigner,
) -> Result<(), Problem> {
    use alloy::signers::SignerSync;
    let now = SystemClock.now_secs();
    let deadline = now + DEFAULT_PROOF_SECS;
    let digest = registration_digest(deployment, owner_id, agent_id, key.address(), deadline);
    let signature = key
        .sign_hash_sync(&digest)
        .map_err(|e| Problem::unavailable(format!("signing the registration: {e}")))?;
    register_agent(
        db,
        deployment,
        ContractWallets::None,
        &NewAgent {
            owner_id,
            agent_id,
            name,
            wallet: key.address(),
            signature: &signature.as_bytes(),
            deadline,
        },
        now,
    )
    .await
}

/// Checks `agent`'s registration at `now` (ids, name, deadline, then the wallet's signature:
/// ECDSA, else ERC-1271 through `contract_wallets`) and stores it. Nothing is stored unless all
/// of it holds.
pub async fn register_agent(
    db: &pactum_db::Db,
    deployment: Deployment,
    contract_wallets: ContractWallets<'_>,
    agent: &NewAgent<'_>,
    now: u64,
) -> Result<(), Problem> {
    let agent_id = rules::agent_id(agent.agent_id)?;
    let name = rules::agent_name(agent.name)?;
    rules::proof_deadline(agent.deadline, now)?;
    let digest = registration_digest(
        deployment,
        agent.owner_id,
        agent_id,
        agent.wallet,
        agent.deadline,
    );
    let signature = Bytes::copy_from_slice(agent.signature);
    // Not the wallet's own ECDSA signature: a contract wallet may approve it.
    let valid = pactum_core::signature::recover(digest, agent.signature) == Some(agent.wallet)
        || match contract_wallets {
            ContractWallets::Relayer(relayer) => relayer
                .signature_is_valid(agent.wallet, digest, &signature)
                .await
                .map_err(crate::routes::settlement::node_problem)?,
            ContractWallets::Node(provider) => pactum_relayer::wallet_signature_is_valid(
                provider,
                agent.wallet,
                digest,
                &signature,
                ERC1271_GAS_CAP,
            )
            .await
            .map_err(crate::routes::settlement::node_problem)?,
            ContractWallets::None => false,
        };
    if !valid {
        return Err(IdentityError::new(
            IdentityCode::InvalidWalletProof,
            format!(
                "the signature is not wallet {}'s over this registration (digest {digest})",
                agent.wallet
            ),
        )
        .into());
    }
    let mut conn = db.acquire().await?;
    let proof = WalletProof {
        signature: agent.signature.to_vec(),
        deadline: agent.deadline,
    };
    match store::create_agent(
        &mut conn,
        agent_id,
        agent.owner_id,
        &name,
        agent.wallet,
        &proof,
    )
    .await?
    {
        Registration::Created => Ok(()),
        Registration::IdTaken => Err(IdentityError::new(
            IdentityCode::AgentIdTaken,
            format!("agent id {agent_id:?} is taken; choose another"),
        )
        .into()),
        Registration::WalletTaken => Err(IdentityError::new(
            IdentityCode::WalletAlreadyRegistered,
            format!("wallet {} belongs to another agent", agent.wallet),
        )
        .into()),
    }
}

/// `POST /agents`.
pub(crate) async fn register(
    state: &AppState,
    principal: &Principal,
    body: &RegisterAgent,
) -> Result<AgentView, Problem> {
    let owner = owner_of(principal)?;
    let wallet = parse_address("wallet_address", &body.wallet_address)?;
    let signature: Bytes = crate::input::parse_bytes("wallet_signature", &body.wallet_signature)?;
    let contract_wallets = state
        .relayer
        .as_ref()
        .map_or(ContractWallets::None, ContractWallets::Relayer);
    register_agent(
        &state.db,
        deployment(state)?,
        contract_wallets,
        &NewAgent {
            owner_id: owner,
            agent_id: &body.agent_id,
            name: &body.name,
            wallet,
            signature: &signature,
            deadline: body.deadline,
        },
        SystemClock.now_secs(),
    )
    .await?;
    tracing::info!(owner_id = owner, agent_id = %body.agent_id, %wallet, "agent registered");
    agent_view(state, principal, &body.agent_id).await
}

fn view(record: store::AgentRecord) -> AgentView {
    AgentView {
        agent_id: record.agent.id,
        owner_id: record.agent.owner_id,
        name: record.agent.name,
        wallet_address: record.agent.wallet.to_string(),
        wallet_proven: record.wallet_proven,
        created_at: record.created_at,
        active_api_keys: record.active_keys,
    }
}

/// The agent `agent_id` as `principal` may see it: its owner, or the agent itself.
pub(crate) async fn visible_agent(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<store::AgentRecord, Problem> {
    let record = store::agent_record(state.db.pool(), agent_id).await?;
    let visible = record.filter(|r| match principal {
        Principal::Owner { owner_id } => r.agent.owner_id == *owner_id,
        Principal::Agent { agent_id: me, .. } => r.agent.id == *me,
    });
    visible.ok_or_else(|| not_found(agent_id))
}

/// `GET /agents/{agent_id}`.
pub(crate) async fn agent_view(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<AgentView, Problem> {
    Ok(view(visible_agent(state, principal, agent_id).await?))
}

/// `GET /agents`: the owner's agents by id, keyset-paged.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<AgentPage, Problem> {
    let owner = owner_of(principal)?;
    let limit = crate::paging::limit(limit)?;
    if let Some(raw) = cursor
        && pactum_core::identity::agent_id(raw).is_err()
    {
        return Err(crate::input::bad_request(
            "invalid_cursor",
            format!("{raw:?} is not a cursor this API gave"),
        ));
    }
    let mut records =
        store::agents_of(state.db.pool(), owner, cursor, i64::from(limit) + 1).await?;
    let next_cursor = (records.len() > limit as usize).then(|| {
        records.truncate(limit as usize);
        records
            .last()
            .map(|r| r.agent.id.clone())
            .unwrap_or_default()
    });
    Ok(AgentPage {
        agents: records.into_iter().map(view).collect(),
        next_cursor,
    })
}

/// `POST /agents/{agent_id}/api-keys`: a new key, shown once.
pub(crate) async fn create_key(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    label: &str,
) -> Result<NewApiKey, Problem> {
    owner_of(principal)?;
    let agent = visible_agent(state, principal, agent_id).await?;
    let label = rules::key_label(label)?;
    let (id, key, hash) = crate::auth::generate_api_key();
    let mut conn = state.db.acquire().await?;
    store::create_api_key(&mut conn, &id, &agent.agent.id, &hash, &label).await?;
    tracing::info!(agent_id, key_id = %id, "API key created");
    Ok(NewApiKey {
        key_id: id,
        api_key: key,
        label,
        agent_id: agent.agent.id,
    })
}

/// `GET /agents/{agent_id}/api-keys`: the keys' metadata, never a secret.
pub(crate) async fn keys(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<ApiKeyList, Problem> {
    owner_of(principal)?;
    let agent = visible_agent(state, principal, agent_id).await?;
    let keys = store::api_keys_of(state.db.pool(), &agent.agent.id).await?;
    Ok(ApiKeyList {
        keys: keys
            .into_iter()
            .map(|k| ApiKeyView {
                key_id: k.id,
                label: k.label,
                created_at: k.created_at,
                revoked_at: k.revoked_at,
            })
            .collect(),
    })
}
