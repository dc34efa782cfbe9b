//! The contracts' events, decoded: what each is called and which agreement it concerns.

use alloy::{
    primitives::{Address, B256, LogData},
    sol_types::SolEventInterface,
};
use pactum_bindings::{
    AgreementEscrow::AgreementEscrowEvents, InfraFeeCollector::InfraFeeCollectorEvents,
};

/// A decoded event of one of the indexed contracts.
#[derive(Debug, Clone)]
pub enum PactumEvent {
    /// An escrow event.
    Escrow(AgreementEscrowEvents),
    /// A fee-collector event.
    FeeCollector(InfraFeeCollectorEvents),
}

impl PactumEvent {
    /// The event's name (as the contracts declare it; stored as the event's kind).
    pub const fn kind(&self) -> &'static str {
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
    pub const fn agreement_id(&self) -> Option<B256> {
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

/// A log that is not an event of the indexed contracts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The two contracts whose events make up an agreement's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contracts {
    /// The escrow.
    pub escrow: Address,
    /// The fee collector.
    pub fee_collector: Address,
}

impl Contracts {
    /// Decodes a log's topics and data as an event of `contract`.
    pub fn decode(&self, contract: Address, data: &LogData) -> Result<PactumEvent, DecodeError> {
        let log = alloy::primitives::Log {
            address: contract,
            data: data.clone(),
        };
        if contract == self.escrow {
            AgreementEscrowEvents::decode_log(&log)
                .map(|l| PactumEvent::Escrow(l.data))
                .map_err(|e| DecodeError(format!("escrow log: {e}")))
        } else if contract == self.fee_collector {
            InfraFeeCollectorEvents::decode_log(&log)
                .map(|l| PactumEvent::FeeCollector(l.data))
                .map_err(|e| DecodeError(format!("fee collector log: {e}")))
        } else {
            Err(DecodeError(format!(
                "log of unexpected contract {contract}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::{primitives::U256, sol_types::SolEvent};
    use pactum_bindings::{AgreementEscrow as Escrow, InfraFeeCollector as Fees};

    use super::*;

    const CONTRACTS: Contracts = Contracts {
        escrow: Address::repeat_byte(0xe5),
        fee_collector: Address::repeat_byte(0xfc),
    };

    #[test]
    fn an_escrow_log_decodes_with_its_name_and_agreement() {
        let id = B256::repeat_byte(3);
        let event = Escrow::CloseInitiated {
            agreementId: id,
            initiator: Address::repeat_byte(1),
            closeDeadline: U256::from(9u64),
        };
        let decoded = CONTRACTS
            .decode(CONTRACTS.escrow, &event.encode_log_data())
            .unwrap();
        assert_eq!(decoded.kind(), "CloseInitiated");
        assert_eq!(decoded.agreement_id(), Some(id));
    }

    #[test]
    fn a_fee_log_concerns_an_agreement_only_when_it_is_a_fee() {
        let id = B256::repeat_byte(4);
        let fee = Fees::InfraFeeCollected {
            agreementId: id,
            buyer: Address::repeat_byte(5),
            token: Address::repeat_byte(2),
            amount: U256::from(1u64),
        };
        let decoded = CONTRACTS
            .decode(CONTRACTS.fee_collector, &fee.encode_log_data())
            .unwrap();
        assert_eq!(decoded.agreement_id(), Some(id));
        let swept = Fees::TreasuryUpdated {
            previousTreasury: Address::ZERO,
            newTreasury: Address::repeat_byte(6),
        };
        let decoded = CONTRACTS
            .decode(CONTRACTS.fee_collector, &swept.encode_log_data())
            .unwrap();
        assert_eq!(decoded.kind(), "TreasuryUpdated");
        assert_eq!(decoded.agreement_id(), None);
    }

    #[test]
    fn a_log_of_another_contract_or_the_wrong_one_is_refused() {
        let event = Fees::TreasuryUpdated {
            previousTreasury: Address::ZERO,
            newTreasury: Address::ZERO,
        }
        .encode_log_data();
        assert!(CONTRACTS.decode(Address::ZERO, &event).is_err());
        assert!(CONTRACTS.decode(CONTRACTS.escrow, &event).is_err());
    }
}
