//! Turning the contracts' logs into stored [`EventRecord`]s, and stored records back into typed
//! events. The events themselves and their decoding are the domain's
//! ([`pactum_core::escrow::events`]).

use alloy::{primitives::LogData, rpc::types::Log};
use pactum_db::index::EventRecord;

pub use pactum_core::escrow::events::{Contracts, DecodeError, PactumEvent};

use crate::Error;

/// Logs and stored records of the indexed contracts, decoded.
pub trait Records {
    /// A node's log as a stored record (decoding it to name it and find its agreement).
    fn record(&self, log: &Log) -> Result<(EventRecord, PactumEvent), Error>;

    /// A stored record decoded again.
    fn decode_record(&self, record: &EventRecord) -> Result<PactumEvent, Error>;
}

impl Records for Contracts {
    fn record(&self, log: &Log) -> Result<(EventRecord, PactumEvent), Error> {
        let missing = |field: &str| Error::Node(format!("log without {field} (pending?)"));
        let event = self.decode(log.address(), log.data())?;
        let record = EventRecord {
            block_number: log.block_number.ok_or_else(|| missing("blockNumber"))?,
            block_hash: log.block_hash.ok_or_else(|| missing("blockHash"))?,
            log_index: log
                .log_index
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| missing("logIndex"))?,
            tx_hash: log
                .transaction_hash
                .ok_or_else(|| missing("transactionHash"))?,
            contract: log.address(),
            kind: event.kind().to_owned(),
            agreement_id: event.agreement_id(),
            topics: log.topics().to_vec(),
            data: log.data().data.clone(),
        };
        Ok((record, event))
    }

    fn decode_record(&self, record: &EventRecord) -> Result<PactumEvent, Error> {
        let data = LogData::new(record.topics.clone(), record.data.clone()).ok_or_else(|| {
            Error::Decode(format!("stored event with {} topics", record.topics.len()))
        })?;
        Ok(self.decode(record.contract, &data)?)
    }
}
