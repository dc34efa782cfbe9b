//! The node, as the indexer uses it: heads, block hashes and logs, with transient failures
//! retried (exponential backoff) and `eth_getLogs` ranges split when the node refuses them as too
//! large.

use std::time::Duration;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    transports::{RpcError, TransportErrorKind},
};
use pactum_db::index::BlockRef;

use crate::{Error, metrics::Metrics};

/// Retry policy for transient RPC failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// The node the indexer reads.
#[derive(Debug, Clone)]
pub struct Source {
    provider: DynProvider,
    addresses: Vec<Address>,
    backoff: Backoff,
    metrics: Metrics,
}

type RpcErr = RpcError<TransportErrorKind>;

/// Whether the node refused a log query for its size (block range or result count). Providers
/// phrase it differently; these are the phrasings of geth, erigon, nethermind, reth, anvil and the
/// large hosted providers.
pub fn is_range_too_large(err: &RpcErr) -> bool {
    let Some(resp) = err.as_error_resp() else {
        return false;
    };
    let message = resp.message.to_ascii_lowercase();
    resp.code == -32005
        || [
            "query returned more than",
            "too many",
            "block range",
            "range too large",
            "exceed",
            "limit",
            "response size",
        ]
        .iter()
        .any(|needle| message.contains(needle))
}

impl Source {
    /// Reads `addresses`' logs through `provider`.
    pub fn new(
        provider: DynProvider,
        addresses: Vec<Address>,
        backoff: Backoff,
        metrics: Metrics,
    ) -> Self {
        Self {
            provider,
            addresses,
            backoff,
            metrics,
        }
    }

    /// Runs `call` until it succeeds, waiting longer after each transient failure. A node that
    /// answers with a JSON-RPC error (not a transport failure) is not retried.
    async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RpcErr>>,
    {
        let mut delay = self.backoff.initial;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_error_resp() => return Err(Error::Rpc(what.to_owned(), err)),
                Err(err) => {
                    self.metrics.rpc_retry();
                    tracing::warn!(%err, what, retry_in_ms = delay.as_millis() as u64, "node request failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.backoff.max);
                }
            }
        }
    }

    /// The chain id.
    pub async fn chain_id(&self) -> Result<u64, Error> {
        self.retry("eth_chainId", || self.provider.get_chain_id())
            .await
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, Error> {
        self.retry("eth_blockNumber", || self.provider.get_block_number())
            .await
    }

    /// The node's `finalized` block number, if it has the tag.
    pub async fn finalized(&self) -> Result<Option<u64>, Error> {
        let block = self
            .retry("eth_getBlockByNumber(finalized)", || async {
                match self
                    .provider
                    .get_block_by_number(BlockNumberOrTag::Finalized)
                    .await
                {
                    // A node without finality tags answers with an error: confirmations decide.
                    Err(err) if err.is_error_resp() => Ok(None),
                    other => other,
                }
            })
            .await?;
        Ok(block.map(|b| b.header.number))
    }

    /// Block `number`'s hash and parent hash, or `None` if the node does not have it (yet).
    pub async fn block(&self, number: u64) -> Result<Option<BlockRef>, Error> {
        let block = self
            .retry("eth_getBlockByNumber", || async {
                self.provider
                    .get_block_by_number(BlockNumberOrTag::Number(number))
                    .await
            })
            .await?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
        }))
    }

    /// The indexed contracts' logs in `from..=to`, split into smaller ranges as often as the
    /// node asks.
    pub async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>, Error> {
        let mut out = Vec::new();
        let mut pending = vec![(from, to)];
        while let Some((lo, hi)) = pending.pop() {
            let filter = Filter::new()
                .address(self.addresses.clone())
                .from_block(lo)
                .to_block(hi);
            let mut delay = self.backoff.initial;
            let logs = loop {
                match self.provider.get_logs(&filter).await {
                    Ok(logs) => break logs,
                    Err(err) if is_range_too_large(&err) && hi > lo => {
                        self.metrics.range_split();
                        let mid = lo + (hi - lo) / 2;
                        tracing::debug!(lo, hi, mid, %err, "log range refused; splitting");
                        // Lower half first: pop order is last-in, so push the upper half first.
                        pending.push((mid + 1, hi));
                        pending.push((lo, mid));
                        break Vec::new();
                    }
                    // Refused although it is a single block (or not about size at all): retrying
                    // cannot help.
                    Err(err) if err.is_error_resp() => {
                        return Err(Error::Rpc(format!("eth_getLogs {lo}..={hi}"), err));
                    }
                    Err(err) => {
                        self.metrics.rpc_retry();
                        tracing::warn!(%err, lo, hi, retry_in_ms = delay.as_millis() as u64, "eth_getLogs failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.backoff.max);
                    }
                }
            };
            out.extend(logs);
        }
        out.sort_by_key(|l| (l.block_number, l.log_index));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_error(code: i64, message: &'static str) -> RpcErr {
        // The payload type is not re-exported with the features this crate uses; it
        // deserialises from a node's JSON like any error response.
        let payload = serde_json::json!({ "code": code, "message": message });
        RpcError::ErrorResp(serde_json::from_value(payload).unwrap())
    }

    #[test]
    fn the_providers_ways_of_saying_too_large_are_recognised() {
        for message in [
            "query returned more than 10000 results",
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
            "block range is too wide",
            "eth_getLogs is limited to a 10,000 range",
            "exceed maximum block range: 5000",
            "Too Many Results",
        ] {
            assert!(
                is_range_too_large(&node_error(-32000, message)),
                "{message}"
            );
        }
        assert!(is_range_too_large(&node_error(-32005, "anything")));
    }

    #[test]
    fn other_failures_are_not_a_range_problem() {
        assert!(!is_range_too_large(&node_error(-32000, "header not found")));
        assert!(!is_range_too_large(&node_error(-32602, "invalid params")));
        assert!(!is_range_too_large(&RpcError::local_usage_str(
            "connection refused"
        )));
    }
}
