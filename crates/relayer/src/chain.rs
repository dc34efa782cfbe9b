//! What the relayer asks the node: the head, an agreement's state, code and ERC-1271 answers,
//! gas estimates (the simulation), and the meaning of a revert.

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol,
    sol_types::SolCall,
    transports::{RpcError, TransportErrorKind},
};
use pactum_bindings::{AgreementEscrow, AgreementState};

use pactum_core::{Refusal, RefusalCode, escrow::explain_revert, signature::is_delegation};

use crate::Error;

sol! {
    /// ERC-1271.
    function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magic);
}

/// The latest block, as far as the relayer needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
    pub(crate) base_fee: u128,
}

pub(crate) async fn head(provider: &DynProvider) -> Result<Head, Error> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(|e| Error::node("reading the latest block", e))?
        .ok_or_else(|| Error::node("reading the latest block", "node returned no block"))?;
    Ok(Head {
        number: block.header.number,
        timestamp: block.header.timestamp,
        base_fee: u128::from(block.header.base_fee_per_gas.unwrap_or(0)),
    })
}

pub(crate) async fn agreement_state(
    provider: &DynProvider,
    escrow: Address,
    id: B256,
) -> Result<AgreementState, Error> {
    agreement_state_on(provider, escrow, id, BlockId::latest()).await
}

/// The agreement's state as block `number` left it.
pub(crate) async fn agreement_state_at(
    provider: &DynProvider,
    escrow: Address,
    id: B256,
    number: u64,
) -> Result<AgreementState, Error> {
    agreement_state_on(provider, escrow, id, BlockId::number(number)).await
}

async fn agreement_state_on(
    provider: &DynProvider,
    escrow: Address,
    id: B256,
    block: BlockId,
) -> Result<AgreementState, Error> {
    AgreementEscrow::new(escrow, provider)
        .agreementState(id)
        .call()
        .block(block)
        .await
        .map_err(|e| Error::node("reading the agreement state", e))
}

/// The timestamp of block `number`.
pub(crate) async fn block_timestamp(provider: &DynProvider, number: u64) -> Result<u64, Error> {
    provider
        .get_block_by_number(BlockNumberOrTag::Number(number))
        .await
        .map_err(|e| Error::node("reading a block", e))?
        .map(|block| block.header.timestamp)
        .ok_or_else(|| Error::node("reading a block", format!("node has no block {number}")))
}

/// What a signer's account supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignerKind {
    /// No code (or an EIP-7702 delegation): ECDSA.
    Eoa,
    /// A contract answering ERC-1271.
    Erc1271,
    /// A contract without ERC-1271: it can only act directly.
    Unsupported,
}

/// Whether `account` has code, which is when the escrow falls back to ERC-1271 after a failed
/// ECDSA recovery (an EIP-7702 delegation counts, exactly as `signer.code.length` does there).
pub(crate) async fn has_code(provider: &DynProvider, account: Address) -> Result<bool, Error> {
    let code = provider
        .get_code_at(account)
        .await
        .map_err(|e| Error::node("reading a signer's code", e))?;
    Ok(!code.is_empty())
}

/// Probes `account`: a contract "supports" ERC-1271 when `isValidSignature` answers at all (a
/// 32-byte result, or a revert carrying a reason), rather than falling into an empty fallback.
/// The probe runs with at most `gas_cap` gas: a party's contract cannot make the node run
/// unbounded code (one that needs more is treated as answering, and the simulation judges it).
pub(crate) async fn signer_kind(
    provider: &DynProvider,
    account: Address,
    gas_cap: u64,
) -> Result<SignerKind, Error> {
    let code = provider
        .get_code_at(account)
        .await
        .map_err(|e| Error::node("reading a signer's code", e))?;
    if code.is_empty() || is_delegation(&code) {
        return Ok(SignerKind::Eoa);
    }
    let probe = isValidSignatureCall {
        hash: B256::ZERO,
        signature: Bytes::new(),
    };
    let request = TransactionRequest::default()
        .to(account)
        .gas_limit(gas_cap)
        .input(probe.abi_encode().into());
    match provider.call(request).block(BlockId::latest()).await {
        Ok(out) if out.len() >= 32 => Ok(SignerKind::Erc1271),
        Ok(_) => Ok(SignerKind::Unsupported),
        Err(err) => match revert_data(&err) {
            Some(data) if !data.is_empty() => Ok(SignerKind::Erc1271),
            Some(_) => Ok(SignerKind::Unsupported),
            // It ran out of the capped gas: it answers, expensively; the simulation judges it.
            None if err
                .as_error_resp()
                .is_some_and(|p| p.message.to_lowercase().contains("out of gas")) =>
            {
                Ok(SignerKind::Erc1271)
            }
            None => Err(Error::node("probing a signer for ERC-1271", err)),
        },
    }
}

/// Whether contract `account` approves `signature` over `digest` through ERC-1271, asked as a
/// verifier asks it: a static call with at most `gas_cap` gas, approved only by the full 32-byte
/// answer (the magic value, left-aligned, then zeros). A revert, a short or dirty answer, or
/// running out of the capped gas is a refusal.
pub(crate) async fn erc1271_approves(
    provider: &DynProvider,
    account: Address,
    digest: B256,
    signature: &Bytes,
    gas_cap: u64,
) -> Result<bool, Error> {
    let call = isValidSignatureCall {
        hash: digest,
        signature: signature.clone(),
    };
    let request = TransactionRequest::default()
        .to(account)
        .gas_limit(gas_cap)
        .input(call.abi_encode().into());
    match provider.call(request).block(BlockId::latest()).await {
        Ok(out) => {
            let mut magic = [0u8; 32];
            magic[..4].copy_from_slice(&isValidSignatureCall::SELECTOR);
            Ok(out.as_ref() == magic.as_slice())
        }
        Err(err) if err.as_error_resp().is_some() => Ok(false),
        Err(err) => Err(Error::node("asking a wallet for ERC-1271 approval", err)),
    }
}

/// The revert data of a failed call or estimate, if the node says it reverted.
pub(crate) fn revert_data(err: &RpcError<TransportErrorKind>) -> Option<Bytes> {
    let payload = err.as_error_resp()?;
    if let Some(data) = payload.as_revert_data() {
        return Some(data);
    }
    // A revert without data (e.g. `revert()`), which some nodes report without a data field.
    payload.message.contains("revert").then(Bytes::new)
}

/// The outcome of simulating a call.
#[derive(Debug)]
pub(crate) enum Simulation {
    /// It succeeds with about this much gas.
    Ok(u64),
    /// It reverts: why, for the client.
    Reverts(Refusal),
}

/// Simulates `input` on `to` from `from` (`eth_estimateGas`: it runs the call and finds the gas it
/// needs), with the fees (`max_fee`, `tip`) the transaction will carry, so that the call sees the
/// same `tx.gasprice` as on chain. The search never goes above `gas_cap` (the sponsor's ceiling
/// per action): a party's contract cannot make the node run unbounded code, and a call that
/// needs more is `gas_ceiling_exceeded`.
pub(crate) async fn simulate(
    provider: &DynProvider,
    from: Address,
    to: Address,
    input: &Bytes,
    (max_fee, tip): (u128, u128),
    gas_cap: u64,
) -> Result<Simulation, Error> {
    let request = TransactionRequest::default()
        .from(from)
        .to(to)
        .gas_limit(gas_cap)
        .input(input.clone().into())
        .max_fee_per_gas(max_fee)
        .max_priority_fee_per_gas(tip.min(max_fee));
    // Against the latest block, never `pending`: the pending block holds the relayer's own
    // unmined transactions, and a simulation seeing its own action already applied would
    // wrongly conclude that the action can no longer succeed.
    match provider
        .estimate_gas(request)
        .block(BlockId::latest())
        .await
    {
        Ok(gas) => Ok(Simulation::Ok(gas)),
        Err(err) => match revert_data(&err) {
            Some(data) => Ok(Simulation::Reverts(explain_revert(&data))),
            None => {
                // Running out of gas at any limit is the call's failure; anything else (funds,
                // fees, transport) is the node's or the relayer's, not a verdict on the call.
                let message = err.as_error_resp().map(|p| p.message.to_lowercase());
                match message {
                    // An allowance below the cap: the sender's balance limited the search (the
                    // relayer's key is short of funds), not the call.
                    Some(m) if allowance_in(&m).is_some_and(|a| a < gas_cap) => {
                        Err(Error::node("simulating the call", err))
                    }
                    Some(m) if m.contains("out of gas") || m.contains("gas required exceeds") => {
                        Ok(Simulation::Reverts(Refusal::new(
                            RefusalCode::GasCeilingExceeded,
                            format!(
                                "the call does not complete within the sponsor's {gas_cap} gas \
                                 per action ({m})"
                            ),
                        )))
                    }
                    _ => Err(Error::node("simulating the call", err)),
                }
            }
        },
    }
}

/// The gas a node says it allowed a call ("gas required exceeds allowance (N)"), if it says.
fn allowance_in(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("allowance (")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The simulation right before a transaction is signed: one `eth_call` of the call with
/// `gas_limit`, against the latest block. `None`: it succeeds within that limit. Only when it
/// does not is the call estimated afresh ([`simulate`], up to `gas_cap`), which either finds the
/// gas it now needs or explains the revert.
pub(crate) async fn simulate_within(
    provider: &DynProvider,
    from: Address,
    to: Address,
    input: &Bytes,
    (max_fee, tip): (u128, u128),
    gas_limit: u64,
    gas_cap: u64,
) -> Result<Option<Simulation>, Error> {
    let request = TransactionRequest::default()
        .from(from)
        .to(to)
        .input(input.clone().into())
        .gas_limit(gas_limit)
        .max_fee_per_gas(max_fee)
        .max_priority_fee_per_gas(tip.min(max_fee));
    match provider.call(request).block(BlockId::latest()).await {
        Ok(_) => Ok(None),
        Err(err) if err.as_error_resp().is_some() => Ok(Some(
            simulate(provider, from, to, input, (max_fee, tip), gas_cap).await?,
        )),
        Err(err) => Err(Error::node("simulating the call", err)),
    }
}

/// Replays `input` on `to` from `from` with `gas_limit` against the state block `block` left:
/// the escrow's (or a wallet's) error if it reverts there, `None` if it does not revert or the
/// error does not decode. Used to tell who caused a mined revert.
pub(crate) async fn replay_error(
    provider: &DynProvider,
    from: Address,
    to: Address,
    input: &Bytes,
    gas_limit: u64,
    block: u64,
) -> Result<Option<Refusal>, Error> {
    let request = TransactionRequest::default()
        .from(from)
        .to(to)
        .gas_limit(gas_limit)
        .input(input.clone().into());
    match provider.call(request).block(BlockId::number(block)).await {
        Ok(_) => Ok(None),
        Err(err) => match revert_data(&err) {
            Some(data) if !data.is_empty() => Ok(Some(explain_revert(&data))),
            Some(_) => Ok(None),
            None => Err(Error::node("replaying a reverted transaction", err)),
        },
    }
}

/// Largest JSON-RPC batch sent (providers commonly accept 100 or more).
const MAX_BATCH: usize = 100;

/// The receipts of `hashes` (in order; `None`: not mined, as far as the node knows), fetched in
/// JSON-RPC batches rather than one request each; one request each if the node refuses batches.
pub(crate) async fn receipts(
    provider: &DynProvider,
    hashes: &[B256],
) -> Result<Vec<Option<TransactionReceipt>>, Error> {
    let mut out = Vec::with_capacity(hashes.len());
    for chunk in hashes.chunks(MAX_BATCH) {
        match receipts_batch(provider, chunk).await {
            Ok(receipts) => out.extend(receipts),
            Err(err) => {
                tracing::debug!(%err, "batched receipts refused; reading them one by one");
                for hash in chunk {
                    out.push(
                        provider
                            .get_transaction_receipt(*hash)
                            .await
                            .map_err(|e| Error::node("reading a receipt", e))?,
                    );
                }
            }
        }
    }
    Ok(out)
}

async fn receipts_batch(
    provider: &DynProvider,
    hashes: &[B256],
) -> Result<Vec<Option<TransactionReceipt>>, RpcError<TransportErrorKind>> {
    let mut batch = alloy::rpc::client::BatchRequest::new(provider.client());
    let mut waiters = Vec::with_capacity(hashes.len());
    for hash in hashes {
        waiters.push(
            batch
                .add_call::<_, Option<TransactionReceipt>>("eth_getTransactionReceipt", &(hash,))?,
        );
    }
    batch.send().await?;
    let mut out = Vec::with_capacity(waiters.len());
    for waiter in waiters {
        out.push(waiter.await?);
    }
    Ok(out)
}

/// Sends signed transactions in JSON-RPC batches, in order (a node may still process a batch's
/// items in any order: one that arrives before its predecessor waits in the node's queue), or
/// one request each if the node refuses batches. One answer each.
pub(crate) async fn send_raw_batch(
    provider: &DynProvider,
    raws: &[&Bytes],
) -> Vec<Result<B256, RpcError<TransportErrorKind>>> {
    let mut out = Vec::with_capacity(raws.len());
    for chunk in raws.chunks(MAX_BATCH) {
        let mut batch = alloy::rpc::client::BatchRequest::new(provider.client());
        let waiters: Result<Vec<_>, _> = chunk
            .iter()
            .map(|raw| batch.add_call::<_, B256>("eth_sendRawTransaction", &(raw,)))
            .collect();
        let sent = match waiters {
            Ok(waiters) => match batch.send().await {
                Ok(()) => Some(waiters),
                Err(err) => {
                    tracing::debug!(%err, "batched broadcast refused; sending one by one");
                    None
                }
            },
            Err(_) => None,
        };
        match sent {
            Some(waiters) => {
                for waiter in waiters {
                    out.push(waiter.await);
                }
            }
            None => {
                for raw in chunk {
                    out.push(
                        provider
                            .send_raw_transaction(raw)
                            .await
                            .map(|pending| *pending.tx_hash()),
                    );
                }
            }
        }
    }
    out
}

/// The node's chain id.
pub(crate) async fn chain_id(provider: &DynProvider) -> Result<u64, Error> {
    provider
        .get_chain_id()
        .await
        .map_err(|e| Error::node("reading the chain id", e))
}

/// An account's balance.
pub(crate) async fn balance(provider: &DynProvider, account: Address) -> Result<U256, Error> {
    provider
        .get_balance(account)
        .await
        .map_err(|e| Error::node("reading a balance", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_a_node_names_is_read() {
        assert_eq!(
            allowance_in("gas required exceeds allowance (21000)"),
            Some(21_000)
        );
        assert_eq!(allowance_in("gas required exceeds allowance"), None);
        assert_eq!(allowance_in("out of gas"), None);
    }
}
