//! Turning the contracts' logs into stored [`EventRecord`]s, and stored records back into typed
//! events.

use alloy::{
    primitives::{Address, B256, LogData},
    rpc::types::Log,
    sol_types::SolEventInterface,
};
use pactum_bindings::{
    AgreementEscrow::{self, AgreementEscrowEvents},
    InfraFeeCollector::{self, InfraFeeCollectorEvents},
};
use pactum_db::chain::EventRecord;

use crate::Error;

/// A decoded event of one of the indexed contracts.
#[derive(Debug, Clone)]
pub enum PactumEvent {
    /// An escrow event.
    Escrow(AgreementEscrowEvents),
    /// A fee-collector event.
    FeeCollector(InfraFeeCollectorEvents),
}

impl PactumEvent {
    /// The event's name.
    pub fn kind(&self) -> &'static str {
        use AgreementEscrowEvents as E;
        use InfraFeeCollectorEvents as F;
        match self {
            Self::Escrow(e) => match e {
                E::AgreementActivated(_) => "AgreementActivated",
                E::CloseInitiated(_) => "CloseInitiated",
                E::SellerClaimed(_) => "SellerClaimed",
                E::SellerPaid(_) => "SellerPaid",
                E::SellerPayoutDeferred(_) => "SellerPayoutDeferred",
                E::BuyerWithdrew(_) => "BuyerWithdrew",
                E::EIP712DomainChanged(_) => "EIP712DomainChanged",
            },
            Self::FeeCollector(f) => match f {
                F::InfraFeeCollected(_) => "InfraFeeCollected",
                F::FeesSwept(_) => "FeesSwept",
                F::TreasuryUpdated(_) => "TreasuryUpdated",
                F::OwnershipTransferStarted(_) => "OwnershipTransferStarted",
                F::OwnershipTransferred(_) => "OwnershipTransferred",
                F::EIP712DomainChanged(_) => "EIP712DomainChanged",
            },
        }
    }

    /// The agreement the event concerns, if it is an agreement event.
    pub fn agreement_id(&self) -> Option<B256> {
        use AgreementEscrowEvents as E;
        match self {
            Self::Escrow(e) => match e {
                E::AgreementActivated(e) => Some(e.agreementId),
                E::CloseInitiated(e) => Some(e.agreementId),
                E::SellerClaimed(e) => Some(e.agreementId),
                E::SellerPaid(e) => Some(e.agreementId),
                E::SellerPayoutDeferred(e) => Some(e.agreementId),
                E::BuyerWithdrew(e) => Some(e.agreementId),
                E::EIP712DomainChanged(_) => None,
            },
            Self::FeeCollector(InfraFeeCollectorEvents::InfraFeeCollected(e)) => {
                Some(e.agreementId)
            }
            Self::FeeCollector(_) => None,
        }
    }
}

/// Which contract emitted a log.
#[derive(Debug, Clone, Copy)]
pub struct Contracts {
    /// The escrow.
    pub escrow: Address,
    /// The fee collector.
    pub fee_collector: Address,
}

impl Contracts {
    /// Decodes a log's topics and data as an event of `contract`.
    pub fn decode(&self, contract: Address, data: &LogData) -> Result<PactumEvent, Error> {
        let log = alloy::primitives::Log {
            address: contract,
            data: data.clone(),
        };
        if contract == self.escrow {
            AgreementEscrow::AgreementEscrowEvents::decode_log(&log)
                .map(|l| PactumEvent::Escrow(l.data))
                .map_err(|e| Error::Decode(format!("escrow log: {e}")))
        } else if contract == self.fee_collector {
            InfraFeeCollector::InfraFeeCollectorEvents::decode_log(&log)
                .map(|l| PactumEvent::FeeCollector(l.data))
                .map_err(|e| Error::Decode(format!("fee collector log: {e}")))
        } else {
            Err(Error::Decode(format!(
                "log of unexpected contract {contract}"
            )))
        }
    }

    /// A node's log as a stored record (decoding it to name it and find its agreement).
    pub fn record(&self, log: &Log) -> Result<(EventRecord, PactumEvent), Error> {
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

    /// A stored record decoded again.
    pub fn decode_record(&self, record: &EventRecord) -> Result<PactumEvent, Error> {
        let data = LogData::new(record.topics.clone(), record.data.clone()).ok_or_else(|| {
            Error::Decode(format!("stored event with {} topics", record.topics.len()))
        })?;
        self.decode(record.contract, &data)
    }
}
