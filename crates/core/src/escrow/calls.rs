//! The direct path: the unsigned calls a party sends from its own wallet.

use alloy::{
    primitives::{Address, Bytes, U256},
    sol_types::SolCall,
};
use pactum_bindings::{Agreement, AgreementEscrow};

/// A call to the escrow that a party sends itself (and pays for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectCall {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub to: Address,
    /// ABI-encoded call.
    pub data: Bytes,
    /// The function, for display.
    pub function: &'static str,
    /// Who may send it (the escrow checks `msg.sender`).
    pub from: Vec<Address>,
}

/// `initiateClose(agreement)`, sendable by the buyer or the seller.
pub fn initiate_close(chain_id: u64, escrow: Address, terms: &Agreement) -> DirectCall {
    DirectCall {
        chain_id,
        to: escrow,
        data: AgreementEscrow::initiateCloseCall {
            agreement: terms.clone(),
        }
        .abi_encode()
        .into(),
        function: "initiateClose(Agreement)",
        from: vec![terms.buyer, terms.seller],
    }
}

/// `sellerClaim(agreement, amount, voucherSignature, recipient)`, sendable by the seller.
pub fn seller_claim(
    chain_id: u64,
    escrow: Address,
    terms: &Agreement,
    amount: U256,
    voucher_signature: Bytes,
    recipient: Address,
) -> DirectCall {
    DirectCall {
        chain_id,
        to: escrow,
        data: AgreementEscrow::sellerClaimCall {
            agreement: terms.clone(),
            amount,
            voucherSignature: voucher_signature,
            recipient,
        }
        .abi_encode()
        .into(),
        function: "sellerClaim(Agreement,uint256,bytes,address)",
        from: vec![terms.seller],
    }
}

/// `buyerWithdraw(agreement, recipient)`, sendable by the buyer.
pub fn buyer_withdraw(
    chain_id: u64,
    escrow: Address,
    terms: &Agreement,
    recipient: Address,
) -> DirectCall {
    DirectCall {
        chain_id,
        to: escrow,
        data: AgreementEscrow::buyerWithdrawCall {
            agreement: terms.clone(),
            recipient,
        }
        .abi_encode()
        .into(),
        function: "buyerWithdraw(Agreement,address)",
        from: vec![terms.buyer],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escrow::rules::tests::{BUYER, ESCROW, SELLER, terms};

    #[test]
    fn each_call_decodes_to_its_arguments_and_names_its_senders() {
        let t = terms();
        let close = initiate_close(7, ESCROW, &t);
        assert_eq!((close.chain_id, close.to), (7, ESCROW));
        assert_eq!(close.from, [BUYER, SELLER]);
        let decoded = AgreementEscrow::initiateCloseCall::abi_decode(&close.data).unwrap();
        assert_eq!(decoded.agreement, t);

        let claim = seller_claim(7, ESCROW, &t, U256::from(9), Bytes::from(vec![1, 2]), BUYER);
        assert_eq!(claim.from, [SELLER]);
        let decoded = AgreementEscrow::sellerClaimCall::abi_decode(&claim.data).unwrap();
        assert_eq!(
            (decoded.amount, decoded.voucherSignature, decoded.recipient),
            (U256::from(9), Bytes::from(vec![1, 2]), BUYER)
        );

        let withdraw = buyer_withdraw(7, ESCROW, &t, SELLER);
        assert_eq!(withdraw.from, [BUYER]);
        let decoded = AgreementEscrow::buyerWithdrawCall::abi_decode(&withdraw.data).unwrap();
        assert_eq!(decoded.recipient, SELLER);
        assert!(withdraw.function.starts_with("buyerWithdraw("));
    }
}
