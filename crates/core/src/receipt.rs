//! Receipts: a signed statement that money moved, final on chain. One receipt per money
//! movement the contracts log: the buyer's deposit into the escrow and its platform fee at
//! activation, the seller's payout and the buyer's withdrawal. The service signs each as EIP-712
//! typed data (`pactum_bindings::eip712::Receipt`, domain "Pactum Receipts"), so that anyone can
//! check it offline with the published signer address; [`discrepancies`] compares a receipt with
//! the log it cites, as the API (against its index) and `pactum receipts verify` (against a node)
//! both do.

use alloy::primitives::{Address, B256, U256, keccak256};
use pactum_bindings::{
    AgreementEscrow::AgreementEscrowEvents, InfraFeeCollector::InfraFeeCollectorEvents,
    eip712::Receipt,
};

use crate::escrow::events::{Contracts, PactumEvent};

named_enum! {
    /// What moved.
    pub enum ReceiptKind {
        /// The buyer's deposit into the escrow, at activation.
        Deposit = "deposit",
        /// The platform fee the buyer paid to the fee collector, at activation.
        InfraFee = "infra_fee",
        /// The escrow's payment to the seller (or the recipient it chose).
        SellerPayout = "seller_payout",
        /// The escrow's payment of the remainder to the buyer (or the recipient it chose).
        BuyerWithdrawal = "buyer_withdrawal",
    }
}

impl ReceiptKind {
    /// The event that logs this movement.
    pub const fn event(self) -> &'static str {
        match self {
            Self::Deposit => "AgreementActivated",
            Self::InfraFee => "InfraFeeCollected",
            Self::SellerPayout => "SellerPaid",
            Self::BuyerWithdrawal => "BuyerWithdrew",
        }
    }

    /// The names of every event that logs a movement (what the issuer looks for).
    pub const EVENTS: [&'static str; 4] = [
        "AgreementActivated",
        "InfraFeeCollected",
        "SellerPaid",
        "BuyerWithdrew",
    ];
}

/// A movement of tokens, as a log states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    /// What moved.
    pub kind: ReceiptKind,
    /// The escrow's agreement.
    pub agreement_id: B256,
    /// From.
    pub payer: Address,
    /// To.
    pub payee: Address,
    /// The token (`None` for payouts: the log does not name it; it is the agreement's).
    pub token: Option<Address>,
    /// How much, in the token's base units.
    pub amount: U256,
}

/// The movement `event` logs, if it logs one of a non-zero amount.
pub fn movement(event: &PactumEvent, contracts: Contracts) -> Option<Movement> {
    use AgreementEscrowEvents as E;
    let m = match event {
        PactumEvent::Escrow(E::AgreementActivated(e)) => Movement {
            kind: ReceiptKind::Deposit,
            agreement_id: e.agreementId,
            payer: e.buyer,
            payee: contracts.escrow,
            token: Some(e.token),
            amount: e.amount,
        },
        PactumEvent::FeeCollector(InfraFeeCollectorEvents::InfraFeeCollected(e)) => Movement {
            kind: ReceiptKind::InfraFee,
            agreement_id: e.agreementId,
            payer: e.buyer,
            payee: contracts.fee_collector,
            token: Some(e.token),
            amount: e.amount,
        },
        PactumEvent::Escrow(E::SellerPaid(e)) => Movement {
            kind: ReceiptKind::SellerPayout,
            agreement_id: e.agreementId,
            payer: contracts.escrow,
            payee: e.recipient,
            token: None,
            amount: e.amount,
        },
        PactumEvent::Escrow(E::BuyerWithdrew(e)) => Movement {
            kind: ReceiptKind::BuyerWithdrawal,
            agreement_id: e.agreementId,
            payer: contracts.escrow,
            payee: e.recipient,
            token: None,
            amount: e.amount,
        },
        _ => return None,
    };
    (!m.amount.is_zero()).then_some(m)
}

/// The contract whose log states a movement of `kind`.
pub const fn emitter(kind: ReceiptKind, contracts: Contracts) -> Address {
    match kind {
        ReceiptKind::InfraFee => contracts.fee_collector,
        _ => contracts.escrow,
    }
}

/// A receipt's id: `rcp_` and 32 hex digits of the hash of the log's place (chain, block,
/// index), so that one log has one receipt however often the issuer looks at it.
pub fn receipt_id(chain_id: u64, block_hash: B256, log_index: u64) -> String {
    let mut preimage = Vec::with_capacity(8 + 32 + 8);
    preimage.extend_from_slice(&chain_id.to_be_bytes());
    preimage.extend_from_slice(block_hash.as_slice());
    preimage.extend_from_slice(&log_index.to_be_bytes());
    let hash = keccak256(&preimage);
    format!("rcp_{}", alloy::hex::encode(&hash[..16]))
}

/// Where the log a receipt cites was found, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// The contract that emitted it.
    pub contract: Address,
    /// Its transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Its block's hash.
    pub block_hash: B256,
    /// The movement it states (`None`: it states none).
    pub movement: Option<Movement>,
    /// The agreement's token (for payouts, whose logs do not name it).
    pub agreement_token: Option<Address>,
    /// The block's time, where the checker has it (a node does; the index does not).
    pub block_time: Option<u64>,
}

/// Every way receipt `r` differs from the log it cites, as found (none: it matches).
pub fn discrepancies(r: &Receipt, found: &Found) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, claimed: String, actual: String| {
        if claimed != actual {
            out.push(format!(
                "{what}: the receipt says {claimed}, the log {actual}"
            ));
        }
    };
    let expected_id = match (u64::try_from(r.chainId), u64::try_from(r.logIndex)) {
        (Ok(chain), Ok(index)) => receipt_id(chain, r.blockHash, index),
        _ => String::new(),
    };
    differ("receipt id", r.receiptId.clone(), expected_id);
    differ(
        "contract",
        r.emitter.to_string(),
        found.contract.to_string(),
    );
    if let Some(time) = found.block_time {
        differ("block time", r.blockTime.to_string(), time.to_string());
    }
    differ(
        "transaction",
        r.txHash.to_string(),
        found.tx_hash.to_string(),
    );
    differ(
        "block number",
        r.blockNumber.to_string(),
        found.block_number.to_string(),
    );
    differ(
        "block hash",
        r.blockHash.to_string(),
        found.block_hash.to_string(),
    );
    let Some(m) = found.movement else {
        out.push("the log states no movement of tokens".to_owned());
        return out;
    };
    differ("kind", r.kind.clone(), m.kind.as_str().to_owned());
    differ(
        "agreement",
        r.agreementId.to_string(),
        m.agreement_id.to_string(),
    );
    differ("payer", r.payer.to_string(), m.payer.to_string());
    differ("payee", r.payee.to_string(), m.payee.to_string());
    differ("amount", r.amount.to_string(), m.amount.to_string());
    match m.token.or(found.agreement_token) {
        Some(token) => differ("token", r.token.to_string(), token.to_string()),
        None => out.push("the agreement's token is unknown".to_owned()),
    }
    out
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256};

    use super::*;

    const CONTRACTS: Contracts = Contracts {
        escrow: address!("0x00000000000000000000000000000000000000e5"),
        fee_collector: address!("0x00000000000000000000000000000000000000fc"),
    };
    const ID: B256 = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
    const BUYER: Address = address!("0x00000000000000000000000000000000000000b0");
    const TOKEN: Address = address!("0x0000000000000000000000000000000000000070");

    fn withdrawal(amount: u64) -> PactumEvent {
        PactumEvent::Escrow(AgreementEscrowEvents::BuyerWithdrew(
            pactum_bindings::AgreementEscrow::BuyerWithdrew {
                agreementId: ID,
                recipient: BUYER,
                amount: U256::from(amount),
            },
        ))
    }

    fn receipt_of(m: Movement, token: Address) -> Receipt {
        Receipt {
            receiptId: receipt_id(1, B256::ZERO, 3),
            agreementId: m.agreement_id,
            apiAgreementId: String::new(),
            kind: m.kind.as_str().to_owned(),
            payer: m.payer,
            payee: m.payee,
            token,
            amount: m.amount,
            chainId: U256::from(1),
            emitter: emitter(m.kind, CONTRACTS),
            txHash: B256::repeat_byte(7),
            logIndex: U256::from(3),
            blockNumber: U256::from(10),
            blockHash: B256::ZERO,
            blockTime: U256::from(1_000),
        }
    }

    #[test]
    fn movements_are_read_from_their_logs() {
        let m = movement(&withdrawal(6), CONTRACTS).expect("a movement");
        assert_eq!(m.kind, ReceiptKind::BuyerWithdrawal);
        assert_eq!((m.payer, m.payee), (CONTRACTS.escrow, BUYER));
        assert_eq!(m.amount, U256::from(6));
        assert_eq!(m.token, None);
        // Nothing moved: no receipt.
        assert_eq!(movement(&withdrawal(0), CONTRACTS), None);
        for kind in ReceiptKind::ALL {
            assert!(ReceiptKind::EVENTS.contains(&kind.event()));
        }
        assert_eq!(
            emitter(ReceiptKind::InfraFee, CONTRACTS),
            CONTRACTS.fee_collector
        );
        assert_eq!(
            emitter(ReceiptKind::SellerPayout, CONTRACTS),
            CONTRACTS.escrow
        );
    }

    #[test]
    fn a_log_has_one_receipt_id() {
        let a = receipt_id(1, B256::ZERO, 3);
        assert_eq!(a, receipt_id(1, B256::ZERO, 3));
        assert_ne!(a, receipt_id(1, B256::ZERO, 4));
        assert_ne!(a, receipt_id(2, B256::ZERO, 3));
        assert_ne!(a, receipt_id(1, B256::repeat_byte(1), 3));
        assert_eq!(a.len(), 4 + 32);
    }

    #[test]
    fn a_receipt_matching_its_log_has_no_discrepancy_and_a_tampered_one_has() {
        let m = movement(&withdrawal(6), CONTRACTS).expect("a movement");
        let r = receipt_of(m, TOKEN);
        let found = Found {
            contract: CONTRACTS.escrow,
            tx_hash: B256::repeat_byte(7),
            block_number: 10,
            block_hash: B256::ZERO,
            movement: Some(m),
            agreement_token: Some(TOKEN),
            block_time: Some(1_000),
        };
        assert!(discrepancies(&r, &found).is_empty());
        let mut more = r.clone();
        more.amount = U256::from(7);
        let reasons = discrepancies(&more, &found);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("amount"), "{reasons:?}");
        let elsewhere = Found {
            block_hash: B256::repeat_byte(9),
            ..found
        };
        assert!(discrepancies(&r, &elsewhere)[0].starts_with("block hash"));
        let nothing = Found {
            movement: None,
            ..found
        };
        assert_eq!(discrepancies(&r, &nothing).len(), 1);
        // Another id for the same log, or another time, are discrepancies too.
        let mut renamed = r.clone();
        renamed.receiptId = "rcp_00000000000000000000000000000000".into();
        assert!(discrepancies(&renamed, &found)[0].starts_with("receipt id"));
        let mut later = r.clone();
        later.blockTime = U256::from(2_000);
        assert!(discrepancies(&later, &found)[0].starts_with("block time"));
    }
}
