//! Checking a receipt: its signature is the service's, and the log it cites states exactly the
//! movement it states, in a final block. [`verify_on_index`] checks against the index (the API's
//! `GET /receipts/verify/{id}`); [`verify_on_node`] against a chain node, trusting neither the
//! API nor its database (`pactum receipts verify`).

use alloy::{
    primitives::{Address, B256, LogData},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use pactum_api_types::ReceiptView;
use pactum_bindings::{AgreementEscrow, eip712::receipts_domain};
use pactum_core::{
    escrow::events::Contracts,
    receipt::{self, Found, ReceiptKind},
};
use pactum_db::receipts::{self as store, StoredReceipt};
use sqlx::PgConnection;

use crate::document::{self, DocumentError};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the receipt holds.
    pub valid: bool,
    /// Why not (empty when valid).
    pub reasons: Vec<String>,
    /// The address its signature recovers to.
    pub recovered_signer: Option<Address>,
}

impl Verdict {
    fn of(reasons: Vec<String>, recovered_signer: Option<Address>) -> Self {
        Self {
            valid: reasons.is_empty(),
            reasons,
            recovered_signer,
        }
    }
}

/// Why a check could not be made (as opposed to a receipt that does not hold).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document is not a receipt.
    #[error("not a receipt: {0}")]
    Document(#[from] DocumentError),
    /// The database.
    #[error(transparent)]
    Db(#[from] pactum_db::Error),
    /// The node.
    #[error("the node: {0}")]
    Node(String),
}

fn signature_reason(recovered: Option<Address>, expected: Address) -> Option<String> {
    match recovered {
        Some(a) if a == expected => None,
        Some(a) => Some(format!(
            "not signed by the receipt key {expected}: the signature recovers to {a} (the receipt was altered, or signed by another key)"
        )),
        None => Some("the signature is not a valid ECDSA signature".to_owned()),
    }
}

fn decode(
    contracts: Contracts,
    contract: Address,
    topics: Vec<B256>,
    data: Vec<u8>,
) -> Option<receipt::Movement> {
    let data = LogData::new(topics, data.into())?;
    let event = contracts.decode(contract, &data).ok()?;
    receipt::movement(&event, contracts)
}

/// Checks stored receipt `r` against the index: signed by one of `signers` (the current receipt
/// key's address, and retired ones) in the domain it names, its log still indexed (not reorged
/// away) in a final block, stating exactly its movement. Returns the verdict and the index's
/// final block.
pub async fn verify_on_index(
    conn: &mut PgConnection,
    r: &StoredReceipt,
    contracts: Contracts,
    signers: &[Address],
) -> Result<(Verdict, Option<u64>), Error> {
    let message = document::message(r);
    let digest = alloy::sol_types::SolStruct::eip712_signing_hash(
        &message,
        &receipts_domain(r.chain_id, r.verifying_contract),
    );
    let recovered = pactum_core::signature::recover(digest, &r.signature);
    let mut reasons: Vec<String> = match recovered {
        Some(a) if signers.contains(&a) => Vec::new(),
        Some(a) => vec![format!(
            "not signed by the receipt key ({}): the signature recovers to {a} (the receipt was altered, or signed by another key)",
            signers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )],
        None => vec!["the signature is not a valid ECDSA signature".to_owned()],
    };
    if r.verifying_contract != contracts.escrow {
        reasons.push(format!(
            "signed for the deployment of escrow {}, not this one's ({})",
            r.verifying_contract, contracts.escrow
        ));
    }
    let log = store::indexed_log(conn, r.chain_id, r.block_hash, r.log_index).await?;
    let finalized = log.as_ref().map(|l| l.finalized_block);
    match log {
        None => reasons.push(format!(
            "the index holds no log {} in block {}: the block is no longer canonical (a reorg removed it)",
            r.log_index, r.block_hash
        )),
        Some(log) => {
            if log.block_number > log.finalized_block {
                reasons.push(format!(
                    "block {} is not final (the index's final block is {})",
                    log.block_number, log.finalized_block
                ));
            }
            let topics = log.topics.chunks_exact(32).map(B256::from_slice).collect();
            let found = Found {
                contract: log.contract,
                tx_hash: log.tx_hash,
                block_number: log.block_number,
                block_hash: r.block_hash,
                movement: decode(contracts, log.contract, topics, log.data),
                agreement_token: log.agreement_token,
                block_time: None,
            };
            reasons.extend(receipt::discrepancies(&message, &found));
        }
    }
    Ok((Verdict::of(reasons, recovered), finalized))
}

/// What a node check counts as final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// At or below the node's `finalized` block (if the node has no such tag, 12 confirmations).
    Finalized,
    /// At least this many blocks on top.
    Confirmations(u64),
}

/// What a node check trusts: nothing but the chain, the operator's published signer address,
/// and the deployment's escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted {
    /// The receipt signer's address, as the operator publishes it.
    pub signer: Address,
    /// The deployment's escrow (its fee collector is read from it on chain).
    pub escrow: Address,
    /// What counts as final.
    pub finality: Finality,
    /// Where to start looking for an agreement's activation (for the token of a payout).
    pub from_block: u64,
}

/// Checks receipt document `doc` against the node behind `provider`, trusting only `trusted`:
/// signed by the published signer in the deployment's domain; the document's digest and typed
/// data are its fields'; on this node's chain, its transaction mined in its block (at its time),
/// final; its log emitted by the contract that logs that kind of movement (the escrow, or the fee
/// collector the escrow names on chain) stating exactly its movement (for a payout, the token is
/// the one the agreement's activation names).
pub async fn verify_on_node<P: Provider>(
    provider: &P,
    doc: &ReceiptView,
    trusted: Trusted,
) -> Result<Verdict, Error> {
    let node = |e: alloy::transports::TransportError| Error::Node(e.to_string());
    let signed = document::signed(doc)?;
    let recovered = signed.recovered();
    let mut reasons: Vec<String> = signature_reason(recovered, trusted.signer)
        .into_iter()
        .collect();
    let m = &signed.message;
    let escrow = signed.domain.verifying_contract.unwrap_or_default();
    if escrow != trusted.escrow {
        reasons.push(format!(
            "signed for escrow {escrow}, not the deployment's {}",
            trusted.escrow
        ));
    }
    let (typed, digest) = pactum_core::escrow::typed_data::receipt(&signed.domain, m);
    if doc.digest != digest.to_string() || doc.typed_data != typed {
        reasons.push(
            "the document's digest or typed data are not its fields' (altered after signing?)"
                .to_owned(),
        );
    }
    let chain_id = provider.get_chain_id().await.map_err(node)?;
    if m.chainId != alloy::primitives::U256::from(chain_id) {
        reasons.push(format!(
            "the receipt is for chain {}, the node serves chain {chain_id}",
            m.chainId
        ));
        return Ok(Verdict::of(reasons, recovered));
    }
    let fee_collector = AgreementEscrow::new(trusted.escrow, provider)
        .FEE_COLLECTOR()
        .call()
        .await
        .map_err(|e| Error::Node(format!("reading the escrow's fee collector: {e}")))?;
    let contracts = Contracts {
        escrow: trusted.escrow,
        fee_collector,
    };
    let expected_emitter = match m.kind.parse::<ReceiptKind>() {
        Ok(kind) => receipt::emitter(kind, contracts),
        Err(_) => {
            reasons.push(format!("{:?} is not a kind of receipt", m.kind));
            return Ok(Verdict::of(reasons, recovered));
        }
    };
    if m.emitter != expected_emitter {
        reasons.push(format!(
            "emitter {} is not the contract that logs a {} ({expected_emitter})",
            m.emitter, m.kind
        ));
    }
    let Some(tx) = provider
        .get_transaction_receipt(m.txHash)
        .await
        .map_err(node)?
    else {
        reasons.push(format!("the node has no transaction {}", m.txHash));
        return Ok(Verdict::of(reasons, recovered));
    };
    if tx.block_hash != Some(m.blockHash) {
        reasons.push(format!(
            "the transaction is in block {:?}, not {} (a reorg moved or removed it)",
            tx.block_hash, m.blockHash
        ));
    }
    if !tx.status() {
        reasons.push("the transaction reverted".to_owned());
    }
    let block = tx.block_number.unwrap_or_default();
    if let Some(why) = not_final(provider, block, trusted.finality).await? {
        reasons.push(why);
    }
    let block_time = provider
        .get_block_by_hash(m.blockHash)
        .await
        .map_err(node)?
        .map(|b| b.header.timestamp);
    let index = u64::try_from(m.logIndex).unwrap_or(u64::MAX);
    let Some(log) = tx.inner.logs().iter().find(|l| l.log_index == Some(index)) else {
        reasons.push(format!("the transaction has no log {index}"));
        return Ok(Verdict::of(reasons, recovered));
    };
    let movement = decode(
        contracts,
        log.address(),
        log.topics().to_vec(),
        log.data().data.to_vec(),
    );
    let agreement_token = match movement {
        Some(mv) if mv.token.is_none() => {
            activation_token(
                provider,
                trusted.escrow,
                mv.agreement_id,
                trusted.from_block,
                block,
            )
            .await?
        }
        _ => None,
    };
    let found = Found {
        contract: log.address(),
        tx_hash: m.txHash,
        block_number: block,
        block_hash: tx.block_hash.unwrap_or_default(),
        movement,
        agreement_token,
        block_time,
    };
    reasons.extend(receipt::discrepancies(m, &found));
    Ok(Verdict::of(reasons, recovered))
}

/// Why block `block` is not final by `finality`, if it is not.
async fn not_final<P: Provider>(
    provider: &P,
    block: u64,
    finality: Finality,
) -> Result<Option<String>, Error> {
    let head = provider
        .get_block_number()
        .await
        .map_err(|e| Error::Node(e.to_string()))?;
    let by_depth = |confirmations: u64| {
        (head.saturating_sub(block) < confirmations).then(|| {
            format!(
                "block {block} has {} confirmations, fewer than the {confirmations} asked for",
                head.saturating_sub(block)
            )
        })
    };
    Ok(match finality {
        Finality::Confirmations(n) => by_depth(n),
        Finality::Finalized => match provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Finalized)
            .await
        {
            Ok(Some(f)) if block <= f.header.number => None,
            Ok(Some(f)) => Some(format!(
                "block {block} is not final (the node's finalized block is {})",
                f.header.number
            )),
            // A node without the tag: confirmations decide.
            _ => by_depth(12),
        },
    })
}

/// The token of escrow agreement `id`, from its `AgreementActivated` log (blocks `from..=to`).
async fn activation_token<P: Provider>(
    provider: &P,
    escrow: Address,
    id: B256,
    from: u64,
    to: u64,
) -> Result<Option<Address>, Error> {
    let filter = Filter::new()
        .address(escrow)
        .event_signature(AgreementEscrow::AgreementActivated::SIGNATURE_HASH)
        .topic1(id)
        .from_block(from)
        .to_block(to);
    let logs = provider
        .get_logs(&filter)
        .await
        .map_err(|e| Error::Node(e.to_string()))?;
    Ok(logs.iter().rev().find_map(|l| {
        AgreementEscrow::AgreementActivated::decode_log_data(l.data())
            .ok()
            .map(|e| e.token)
    }))
}
