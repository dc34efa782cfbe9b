//! Receipts on a real Anvil and PostgreSQL: each money movement of a lifecycle gets one receipt
//! (the payout and the withdrawal adding up to the deposit exactly), valid through the API,
//! against the node, and offline with an independent EIP-712 library; a tampered receipt is
//! refused; a receipt whose log a reorg removed is reported invalid; only the parties and their
//! owners see them; each is announced as `receipt.issued`.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use pactum_client::types::{ListReceipts, ReceiptIssuedPayload, ReceiptKind, ReceiptView};
use pactum_core::escrow::events::Contracts;
use pactum_receipts::{Finality, Issuer, Trusted, verify_on_node};

use crate::{
    agreements::{activation::accepted, problem, proposal, terms_of},
    chain::USDC,
    relayer::Fixture,
    webhooks::{
        Workers, hook,
        receiver::{Mode, Receiver},
    },
};

/// What a node check trusts: the fixture's receipt signer `signer` and escrow; `confirmations`.
fn trusted(f: &Fixture, signer: Address, confirmations: u64) -> Trusted {
    Trusted {
        signer,
        escrow: f.chain.deployment.escrow,
        finality: Finality::Confirmations(confirmations),
        from_block: 0,
    }
}

/// An issuer over the fixture's database and node, signing with its receipt key.
fn issuer(f: &Fixture) -> Issuer {
    let d = &f.chain.deployment;
    Issuer::new(
        f.db().clone(),
        f.plain.clone(),
        f.receipt_key.clone(),
        d.chain_id,
        Contracts {
            escrow: d.escrow,
            fee_collector: d.fee_collector,
        },
    )
}

/// Indexes to the head, every block counting as final (a development chain).
async fn index_final(f: &Fixture) -> eyre::Result<()> {
    crate::indexing::indexer(&f.chain, f.db(), |c| {
        c.confirmations = 0;
        c.use_finalized_tag = false;
    })
    .await?
    .catch_up()
    .await?;
    Ok(())
}

/// The reference proposal accepted and activated by the buyer's own call; its API id, terms and
/// escrow id.
async fn active(f: &Fixture) -> eyre::Result<(String, pactum_bindings::Agreement, B256)> {
    let c = &f.chain;
    let id = accepted(f, &f.buyer_api, &proposal(f)).await?;
    let terms = terms_of(&f.buyer_api.usage_agreement(&id).await?)?;
    let (onchain, _) = pactum_devnet::scenario::activate(
        &c.provider,
        &c.deployment,
        &terms,
        &c.buyer,
        c.relayer.address(),
    )
    .await?;
    Ok((id, terms, onchain))
}

/// ... then closed by the seller, $4 claimed with the buyer's voucher, and the remaining $6
/// withdrawn by the buyer; everything indexed.
async fn settled(f: &Fixture) -> eyre::Result<String> {
    let claim = 4;
    let c = &f.chain;
    let (id, terms, onchain) = active(f).await?;
    pactum_devnet::confirm(
        c.escrow()
            .initiateClose(terms.clone())
            .from(c.seller.address()),
    )
    .await?;
    let voucher = f.sign(onchain).voucher(claim * USDC).await?;
    pactum_devnet::confirm(
        c.escrow()
            .sellerClaim(
                terms.clone(),
                U256::from(claim * USDC),
                voucher,
                c.seller.address(),
            )
            .from(c.seller.address()),
    )
    .await?;
    pactum_devnet::confirm(
        c.escrow()
            .buyerWithdraw(terms.clone(), c.buyer.address())
            .from(c.buyer.address()),
    )
    .await?;
    index_final(f).await?;
    Ok(id)
}

fn of(receipts: &[ReceiptView], kind: ReceiptKind) -> eyre::Result<ReceiptView> {
    receipts
        .iter()
        .find(|r| r.kind == kind)
        .cloned()
        .ok_or_else(|| eyre::eyre!("no {kind} receipt"))
}

/// Each of `expected` starts one of `reasons` (why a receipt was found invalid).
fn gives(reasons: &[String], expected: &[&str]) {
    for prefix in expected {
        assert!(
            reasons.iter().any(|r| r.starts_with(prefix)),
            "no reason starts with {prefix:?}: {reasons:?}"
        );
    }
}

fn amount(r: &ReceiptView) -> eyre::Result<U256> {
    Ok(r.amount.parse()?)
}

fn list(agent: &str) -> ListReceipts {
    ListReceipts {
        agent_id: agent.to_owned(),
        limit: Some(100),
        cursor: None,
    }
}

/// Checks `r` offline with the `eth-account` library from PyPI (an EIP-712 implementation
/// independent of alloy): its `typed_data` must hash to its digest and recover to `signer`.
fn verify_offline(r: &ReceiptView, signer: Address) -> eyre::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = r#"
import json, sys
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
doc = json.load(sys.stdin)
message = encode_typed_data(full_message=doc["typed_data"])
print(to_checksum_address(Account.recover_message(message, signature=bytes.fromhex(doc["signature"][2:]))))
"#;
    let mut child = std::process::Command::new(root.join(".venv/bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or_else(|| eyre::eyre!("no stdin"))?;
        stdin.write_all(&serde_json::to_vec(r)?)?;
    }
    let out = child.wait_with_output()?;
    eyre::ensure!(
        out.status.success(),
        "eth-account: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recovered = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    eyre::ensure!(
        recovered == signer.to_string(),
        "eth-account recovers {recovered}, not {signer}"
    );
    Ok(())
}

#[tokio::test]
async fn every_money_movement_of_a_lifecycle_has_one_valid_receipt() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Ok).await?;
    hook(&owner, "buyer", &rx.url(), Some(&["receipt.issued"])).await?;
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    let id = settled(&f).await?;
    let issuer = issuer(&f);
    assert_eq!(issuer.issue_pending().await?, 4);
    // Looking again issues nothing more: one log, one receipt.
    assert_eq!(issuer.issue_pending().await?, 0);

    let receipts = f.buyer_api.receipts(&list("buyer")).await?.receipts;
    assert_eq!(receipts.len(), 4);
    let d = &f.chain.deployment;
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());
    let deposit = of(&receipts, ReceiptKind::Deposit)?;
    let fee = of(&receipts, ReceiptKind::InfraFee)?;
    let payout = of(&receipts, ReceiptKind::SellerPayout)?;
    let withdrawal = of(&receipts, ReceiptKind::BuyerWithdrawal)?;
    for (r, payer, payee) in [
        (&deposit, buyer, d.escrow),
        (&fee, buyer, d.fee_collector),
        (&payout, d.escrow, seller),
        (&withdrawal, d.escrow, buyer),
    ] {
        assert_eq!(
            (r.payer.as_str(), r.payee.as_str()),
            (payer.to_string().as_str(), payee.to_string().as_str()),
            "{}",
            r.kind
        );
        assert_eq!(r.token, d.token.to_string());
        assert_eq!(r.agreement_id.as_deref(), Some(id.as_str()));
        assert_eq!(r.signer, f.receipt_key.address().to_string());
    }
    assert_eq!(amount(&deposit)?, U256::from(10 * USDC));
    assert_eq!(amount(&fee)?, U256::from(USDC / 10));
    assert_eq!(amount(&payout)?, U256::from(4 * USDC));
    assert_eq!(amount(&withdrawal)?, U256::from(6 * USDC));
    // Paid out exactly what was deposited.
    assert_eq!(amount(&payout)? + amount(&withdrawal)?, amount(&deposit)?);

    for r in &receipts {
        // Through the API, against the index.
        let checked = f.seller_api.verify_receipt(&r.receipt_id).await?;
        assert!(checked.valid, "{}: {:?}", r.kind, checked.reasons);
        assert_eq!(checked.recovered_signer, Some(r.signer.clone()));
        // Against the node, trusting only the signer's address.
        let verdict = verify_on_node(&f.plain, r, trusted(&f, f.receipt_key.address(), 0)).await?;
        assert!(verdict.valid, "{}: {:?}", r.kind, verdict.reasons);
        // Offline, with another EIP-712 library.
        verify_offline(r, f.receipt_key.address())?;
        // The document is the one the API serves.
        assert_eq!(&owner.receipt(&r.receipt_id).await?, r);
    }
    // Not enough confirmations is not final for a node check.
    let verdict = verify_on_node(
        &f.plain,
        &deposit,
        trusted(&f, f.receipt_key.address(), 1_000),
    )
    .await?;
    assert!(!verdict.valid);

    // Announced, each once.
    let got = rx.wait(Duration::from_secs(30), |p| p.len() == 4).await?;
    let mut announced: Vec<String> = got
        .iter()
        .map(|g| serde_json::from_slice::<ReceiptIssuedPayload>(&g.body).map(|p| p.data.receipt_id))
        .collect::<Result<_, _>>()?;
    announced.sort();
    let mut ids: Vec<String> = receipts.iter().map(|r| r.receipt_id.clone()).collect();
    ids.sort();
    assert_eq!(announced, ids);

    // Only the parties and their owners.
    let stranger = f
        .other_owner(
            "globex",
            "globex-agent",
            &alloy::signers::local::PrivateKeySigner::random(),
        )
        .await?;
    for api in [&stranger, &f.owner_api("globex")] {
        assert_eq!(
            problem(api.verify_receipt(&deposit.receipt_id).await)?,
            (404, "receipt_not_found".into())
        );
        assert_eq!(
            problem(api.receipts(&list("buyer")).await)?,
            (404, "agent_not_found".into())
        );
    }
    assert_eq!(
        problem(
            owner
                .verify_receipt("rcp_00000000000000000000000000000000")
                .await
        )?,
        (404, "receipt_not_found".into())
    );
    let signer = owner.receipt_signer().await?;
    assert_eq!(signer.address, f.receipt_key.address().to_string());
    assert_eq!(signer.verifying_contract, d.escrow.to_string());
    Ok(())
}

#[tokio::test]
async fn a_tampered_receipt_is_refused() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    settled(&f).await?;
    issuer(&f).issue_pending().await?;
    let receipts = f.buyer_api.receipts(&list("buyer")).await?.receipts;
    let payout = of(&receipts, ReceiptKind::SellerPayout)?;
    let key = f.receipt_key.address();

    // A document claiming more than was paid: neither the signature nor the log agrees.
    let mut more = payout.clone();
    more.amount = (5 * USDC).to_string();
    let verdict = verify_on_node(&f.plain, &more, trusted(&f, key, 0)).await?;
    assert!(!verdict.valid);
    gives(
        &verdict.reasons,
        &["not signed by the receipt key", "amount"],
    );
    // Paid to someone else.
    let mut elsewhere = payout.clone();
    elsewhere.payee = Address::repeat_byte(0x42).to_string();
    assert!(
        !verify_on_node(&f.plain, &elsewhere, trusted(&f, key, 0))
            .await?
            .valid
    );
    // Checked for another deployment than the operator's: refused (the escrow is trusted, not
    // taken from the document).
    let elsewhere_escrow = Trusted {
        escrow: Address::repeat_byte(0x33),
        ..trusted(&f, key, 0)
    };
    let verdict = verify_on_node(&f.plain, &payout, elsewhere_escrow).await;
    assert!(verdict.is_err() || !verdict?.valid);
    // The right document, checked against another key than the operator's.
    let other = Address::repeat_byte(0x17);
    let verdict = verify_on_node(&f.plain, &payout, trusted(&f, other, 0)).await?;
    assert!(!verdict.valid, "{:?}", verdict.reasons);

    // A stored receipt altered in the database: the API's check refuses it.
    sqlx::query("UPDATE receipts SET amount = amount + 1 WHERE id = $1")
        .bind(&payout.receipt_id)
        .execute(f.db().pool())
        .await?;
    let checked = f.buyer_api.verify_receipt(&payout.receipt_id).await?;
    assert!(!checked.valid);
    gives(
        &checked.reasons,
        &["not signed by the receipt key", "amount"],
    );
    Ok(())
}

#[tokio::test]
async fn a_receipt_whose_log_was_reorged_away_is_invalid() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let c = &f.chain;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let terms = terms_of(&f.buyer_api.usage_agreement(&id).await?)?;
    index_final(&f).await?;
    let snapshot = c.snapshot().await?;
    pactum_devnet::scenario::activate(
        &c.provider,
        &c.deployment,
        &terms,
        &c.buyer,
        c.relayer.address(),
    )
    .await?;
    index_final(&f).await?;
    assert_eq!(issuer(&f).issue_pending().await?, 2);
    let deposit = of(
        &f.buyer_api.receipts(&list("buyer")).await?.receipts,
        ReceiptKind::Deposit,
    )?;
    assert!(f.buyer_api.verify_receipt(&deposit.receipt_id).await?.valid);

    // The activation's block is replaced by a longer branch without it: a reorg deeper than
    // the index counted final (as when an operator's `confirmations` were too few). The index
    // never rolls back below what it recorded as final, so that record is revised to before
    // the fork first; the index then rolls back and follows the new branch.
    c.revert(snapshot).await?;
    c.mine(4).await?;
    sqlx::query("UPDATE indexer_cursor SET finalized_block = 0")
        .execute(f.db().pool())
        .await?;
    crate::indexing::indexer(c, f.db(), |config| config.confirmations = 12)
        .await?
        .catch_up()
        .await?;
    let checked = f.buyer_api.verify_receipt(&deposit.receipt_id).await?;
    assert!(!checked.valid);
    assert!(
        checked
            .reasons
            .iter()
            .any(|r| r.contains("no longer canonical")),
        "{:?}",
        checked.reasons
    );
    let verdict =
        verify_on_node(&f.plain, &deposit, trusted(&f, f.receipt_key.address(), 0)).await?;
    assert!(!verdict.valid);
    assert!(
        verdict
            .reasons
            .iter()
            .any(|r| r.contains("has no transaction")),
        "{:?}",
        verdict.reasons
    );
    // The receipt is kept: a signed statement does not disappear.
    assert_eq!(f.buyer_api.receipt(&deposit.receipt_id).await?, deposit);
    Ok(())
}

/// A payout whose agreement's token the index does not know (as for an escrow activated before
/// the index's start block: its `agreements` row is removed here) gets no receipt: it is
/// recorded as a skip with its reason, and the issuer's checkpoint moves past it.
#[tokio::test]
async fn a_movement_without_a_known_token_is_skipped_and_holds_nothing_up() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    settled(&f).await?;
    sqlx::query("DELETE FROM agreements")
        .execute(f.db().pool())
        .await?;
    // The deposit and the fee name their token; the payout and the withdrawal do not.
    assert_eq!(issuer(&f).issue_pending().await?, 2);
    let skipped: Vec<String> = sqlx::query_scalar("SELECT reason FROM receipt_skips")
        .fetch_all(f.db().pool())
        .await?;
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped.iter().all(|r| r.contains("is unknown")),
        "{skipped:?}"
    );
    let (checkpoint, finalized): (i64, i64) = sqlx::query_as(
        "SELECT k.block_number, c.finalized_block FROM receipt_checkpoints k
           JOIN indexer_cursor c ON c.chain_id = k.chain_id",
    )
    .fetch_one(f.db().pool())
    .await?;
    assert_eq!(checkpoint, finalized);
    assert_eq!(issuer(&f).issue_pending().await?, 0);
    Ok(())
}
