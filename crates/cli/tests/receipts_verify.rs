//! `pactum receipts verify`, as a process against a real Anvil: a receipt of a deposit, signed
//! with a receipt key, holds (exit status 0); the same receipt claiming another amount, checked
//! against another signer, or demanding more confirmations than the block has, does not (exit
//! status 1, with the reasons).

use std::process::Command;

use alloy::{
    network::EthereumWallet,
    primitives::{B256, Bytes, U256, keccak256},
    providers::Provider,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolStruct,
};
use pactum_bindings::{Agreement, eip712::receipts_domain};
use pactum_core::receipt::{ReceiptKind, receipt_id};
use pactum_db::receipts::StoredReceipt;
use pactum_devnet::{dev_signer, scenario};

const USDC: u64 = 1_000_000;

fn verify(
    file: &std::path::Path,
    rpc: &str,
    (signer, escrow): (&str, &str),
    confirmations: u64,
) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pactum"))
        .args(["receipts", "verify"])
        .arg(file)
        .args(["--rpc-url", rpc, "--signer", signer, "--escrow", escrow])
        .args(["--confirmations", &confirmations.to_string()])
        .env("RUST_LOG", "error")
        .output()
        .expect("run pactum");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_verifies_a_receipt_against_the_node() -> eyre::Result<()> {
    let anvil = pactum_devnet::spawn_anvil()?;
    let (deployer, buyer, seller) = (dev_signer(0), dev_signer(1), dev_signer(2));
    let mut wallet = EthereumWallet::new(deployer.clone());
    wallet.register_signer(buyer.clone());
    let provider = pactum_devnet::connect(anvil.endpoint_url(), wallet);
    let d = pactum_devnet::deploy_funded(&provider, &[(buyer.address(), U256::from(100 * USDC))])
        .await?;
    let now = scenario::latest_timestamp(&provider).await?;
    let terms = Agreement {
        buyer: buyer.address(),
        seller: seller.address(),
        token: d.token,
        maxAmount: U256::from(10 * USDC),
        infraFee: U256::ZERO,
        expiry: now + 86_400,
        closeWindow: 3_600,
        salt: keccak256("receipt-cli"),
    };
    let (onchain, mined) =
        scenario::activate(&provider, &d, &terms, &buyer, deployer.address()).await?;
    let log = mined
        .inner
        .logs()
        .iter()
        .find(|l| l.address() == d.escrow)
        .ok_or_else(|| eyre::eyre!("no escrow log"))?;
    let block_hash = mined.block_hash.unwrap_or_default();
    let block_time = provider
        .get_block_by_hash(block_hash)
        .await?
        .map(|b| b.header.timestamp)
        .unwrap_or_default();
    let log_index = log.log_index.unwrap_or_default();

    // The receipt the issuer would sign for that log.
    let key = PrivateKeySigner::random();
    let mut r = StoredReceipt {
        id: receipt_id(d.chain_id, block_hash, log_index),
        seq: 1,
        chain_id: d.chain_id,
        kind: ReceiptKind::Deposit,
        onchain_agreement_id: onchain,
        agreement_id: None,
        buyer_agent_id: None,
        seller_agent_id: None,
        payer: buyer.address(),
        payee: d.escrow,
        token: d.token,
        amount: U256::from(10 * USDC),
        emitter: d.escrow,
        tx_hash: mined.transaction_hash,
        log_index,
        block_number: mined.block_number.unwrap_or_default(),
        block_hash,
        block_time,
        verifying_contract: d.escrow,
        signer: key.address(),
        signature: Bytes::new(),
        issued_at: "2026-12-06T00:00:00.000000Z".into(),
    };
    let digest = pactum_receipts::document::message(&r)
        .eip712_signing_hash(&receipts_domain(d.chain_id, d.escrow));
    r.signature = Bytes::copy_from_slice(&key.sign_hash_sync(&digest)?.as_bytes());
    let doc = pactum_receipts::document::view(&r);
    let dir = std::env::temp_dir().join(format!("pactum-receipt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("receipt.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc)?)?;
    let rpc = anvil.endpoint();
    let signer = key.address().to_string();
    let escrow = d.escrow.to_string();
    let trusted = (signer.as_str(), escrow.as_str());

    let (ok, out) = verify(&file, &rpc, trusted, 0);
    assert!(ok, "{out}");
    assert!(out.contains("holds"), "{out}");

    // Another signer than the operator's.
    let other = B256::repeat_byte(1).to_string()[..42].to_owned();
    let (ok, out) = verify(&file, &rpc, (&other, &escrow), 0);
    assert!(!ok);
    assert!(out.contains("not signed by the receipt key"), "{out}");
    // More confirmations than the block has.
    let (ok, out) = verify(&file, &rpc, trusted, 100);
    assert!(!ok);
    assert!(out.contains("confirmations"), "{out}");
    // A tampered amount.
    let mut tampered = doc.clone();
    tampered.amount = (11 * USDC).to_string();
    let forged = dir.join("forged.json");
    std::fs::write(&forged, serde_json::to_vec_pretty(&tampered)?)?;
    let (ok, out) = verify(&forged, &rpc, trusted, 0);
    assert!(!ok);
    assert!(out.contains("amount: the receipt says 11000000"), "{out}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
