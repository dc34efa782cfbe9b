//! What a party asks the relayer to submit, and how each request becomes a call.

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    sol_types::{Eip712Domain, SolCall, SolStruct},
};
use pactum_bindings::{
    Agreement, AgreementEscrow, PermitSignature, ReceiveAuthorization,
    eip712::{Activation, BuyerWithdraw, InitiateClose, SellerClaim},
};
use pactum_db::relay::ActionKind;

/// A settlement step the sponsored path offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementAction {
    /// Start the close window (buyer or seller).
    InitiateClose,
    /// The seller claims (or retries the payout of) its entitlement.
    SellerClaim,
    /// The buyer withdraws its remainder.
    BuyerWithdraw,
}

impl SettlementAction {
    /// The API name (`initiate_close`, ...).
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    /// Parses the API name.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "initiate_close" => Self::InitiateClose,
            "seller_claim" => Self::SellerClaim,
            "buyer_withdraw" => Self::BuyerWithdraw,
            _ => return None,
        })
    }

    /// The job kind.
    pub fn kind(self) -> ActionKind {
        match self {
            Self::InitiateClose => ActionKind::InitiateClose,
            Self::SellerClaim => ActionKind::SellerClaim,
            Self::BuyerWithdraw => ActionKind::BuyerWithdraw,
        }
    }
}

/// A party's signed authorization, as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `InitiateClose(agreementId, party, deadline)` signed by `party`.
    InitiateClose {
        /// The buyer or the seller.
        party: Address,
        /// Unix seconds.
        deadline: u64,
        /// `party`'s signature.
        signature: Bytes,
    },
    /// `SellerClaim(agreementId, amount, recipient, deadline)` signed by the seller, with the
    /// buyer's voucher for `amount`.
    SellerClaim {
        /// The voucher's cumulative amount.
        amount: U256,
        /// The buyer's `Voucher` signature (ignored on chain when retrying a deferred payout).
        voucher_signature: Bytes,
        /// Where to pay.
        recipient: Address,
        /// Unix seconds.
        deadline: u64,
        /// The seller's signature.
        signature: Bytes,
    },
    /// `BuyerWithdraw(agreementId, recipient, deadline)` signed by the buyer.
    BuyerWithdraw {
        /// Where to pay.
        recipient: Address,
        /// Unix seconds.
        deadline: u64,
        /// The buyer's signature.
        signature: Bytes,
    },
    /// The buyer's activation package: EIP-3009 authorizations for the deposit and the fee.
    ActivateWithAuthorization {
        /// `maxAmount` to the escrow (nonce: the agreement id).
        deposit: ReceiveAuthorization,
        /// `infraFee` to the fee collector (empty when waived).
        fee: ReceiveAuthorization,
    },
    /// The buyer's activation package: its `Activation` signature and EIP-2612 permits.
    ActivateWithPermit {
        /// The `Activation` deadline (unix seconds).
        deadline: u64,
        /// The buyer's `Activation` signature.
        signature: Bytes,
        /// Permit for `maxAmount` to the escrow.
        deposit: PermitSignature,
        /// Permit for `infraFee` to the fee collector.
        fee: PermitSignature,
    },
}

impl Authorization {
    /// The job kind.
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::InitiateClose { .. } => ActionKind::InitiateClose,
            Self::SellerClaim { .. } => ActionKind::SellerClaim,
            Self::BuyerWithdraw { .. } => ActionKind::BuyerWithdraw,
            Self::ActivateWithAuthorization { .. } | Self::ActivateWithPermit { .. } => {
                ActionKind::Activate
            }
        }
    }

    /// The account whose signature the escrow checks.
    pub fn signer(&self, terms: &Agreement) -> Address {
        match self {
            Self::InitiateClose { party, .. } => *party,
            Self::SellerClaim { .. } => terms.seller,
            Self::BuyerWithdraw { .. }
            | Self::ActivateWithAuthorization { .. }
            | Self::ActivateWithPermit { .. } => terms.buyer,
        }
    }

    /// The authorization's deadline (for EIP-3009: the deposit's `validBefore`, saturating).
    pub fn deadline(&self) -> u64 {
        match self {
            Self::InitiateClose { deadline, .. }
            | Self::SellerClaim { deadline, .. }
            | Self::BuyerWithdraw { deadline, .. }
            | Self::ActivateWithPermit { deadline, .. } => *deadline,
            Self::ActivateWithAuthorization { deposit, .. } => {
                u64::try_from(deposit.validBefore).unwrap_or(u64::MAX)
            }
        }
    }

    /// The party's signature over [`Self::digest`] (none for EIP-3009: the token checks it).
    pub fn signature(&self) -> Option<&Bytes> {
        match self {
            Self::InitiateClose { signature, .. }
            | Self::SellerClaim { signature, .. }
            | Self::BuyerWithdraw { signature, .. }
            | Self::ActivateWithPermit { signature, .. } => Some(signature),
            Self::ActivateWithAuthorization { .. } => None,
        }
    }

    /// The EIP-712 digest the party signed under the escrow's domain (`id`: the agreement id).
    /// For an EIP-3009 activation, whose signatures are under the token's domain, the hash of
    /// the call instead: either way, the same authorization always has the same digest.
    pub fn digest(
        &self,
        terms: &Agreement,
        id: B256,
        escrow: &Eip712Domain,
        target: Address,
    ) -> B256 {
        match self {
            Self::InitiateClose {
                party, deadline, ..
            } => InitiateClose {
                agreementId: id,
                party: *party,
                deadline: U256::from(*deadline),
            }
            .eip712_signing_hash(escrow),
            Self::SellerClaim {
                amount,
                recipient,
                deadline,
                ..
            } => SellerClaim {
                agreementId: id,
                amount: *amount,
                recipient: *recipient,
                deadline: U256::from(*deadline),
            }
            .eip712_signing_hash(escrow),
            Self::BuyerWithdraw {
                recipient,
                deadline,
                ..
            } => BuyerWithdraw {
                agreementId: id,
                recipient: *recipient,
                deadline: U256::from(*deadline),
            }
            .eip712_signing_hash(escrow),
            Self::ActivateWithPermit { deadline, .. } => Activation {
                agreement: terms.clone(),
                deadline: U256::from(*deadline),
            }
            .eip712_signing_hash(escrow),
            Self::ActivateWithAuthorization { .. } => {
                keccak256([target.as_slice(), &self.calldata(terms)].concat())
            }
        }
    }

    /// The escrow call submitting it.
    pub fn calldata(&self, terms: &Agreement) -> Bytes {
        let agreement = terms.clone();
        Bytes::from(match self {
            Self::InitiateClose {
                party,
                deadline,
                signature,
            } => AgreementEscrow::initiateCloseWithSigCall {
                agreement,
                party: *party,
                deadline: U256::from(*deadline),
                signature: signature.clone(),
            }
            .abi_encode(),
            Self::SellerClaim {
                amount,
                voucher_signature,
                recipient,
                deadline,
                signature,
            } => AgreementEscrow::sellerClaimWithSigCall {
                agreement,
                amount: *amount,
                voucherSignature: voucher_signature.clone(),
                recipient: *recipient,
                deadline: U256::from(*deadline),
                sellerSignature: signature.clone(),
            }
            .abi_encode(),
            Self::BuyerWithdraw {
                recipient,
                deadline,
                signature,
            } => AgreementEscrow::buyerWithdrawWithSigCall {
                agreement,
                recipient: *recipient,
                deadline: U256::from(*deadline),
                buyerSignature: signature.clone(),
            }
            .abi_encode(),
            Self::ActivateWithAuthorization { deposit, fee } => {
                AgreementEscrow::activateWithAuthorizationCall {
                    agreement,
                    deposit: deposit.clone(),
                    fee: fee.clone(),
                }
                .abi_encode()
            }
            Self::ActivateWithPermit {
                deadline,
                signature,
                deposit,
                fee,
            } => AgreementEscrow::activateWithPermitCall {
                agreement,
                deadline: U256::from(*deadline),
                buyerSignature: signature.clone(),
                deposit: deposit.clone(),
                fee: fee.clone(),
            }
            .abi_encode(),
        })
    }
}

/// The selectors the relayer will ever sign a call with (all on the escrow).
pub(crate) const SPONSORED_SELECTORS: [[u8; 4]; 5] = [
    AgreementEscrow::initiateCloseWithSigCall::SELECTOR,
    AgreementEscrow::sellerClaimWithSigCall::SELECTOR,
    AgreementEscrow::buyerWithdrawWithSigCall::SELECTOR,
    AgreementEscrow::activateWithAuthorizationCall::SELECTOR,
    AgreementEscrow::activateWithPermitCall::SELECTOR,
];

/// The terms an activation job's calldata activates (`None` for any other call).
pub fn activation_terms(calldata: &[u8]) -> Option<Agreement> {
    if let Ok(call) = AgreementEscrow::activateWithAuthorizationCall::abi_decode(calldata) {
        return Some(call.agreement);
    }
    AgreementEscrow::activateWithPermitCall::abi_decode(calldata)
        .ok()
        .map(|call| call.agreement)
}

/// The terms any sponsored call carries (its first argument), if `calldata` is one.
pub(crate) fn terms_of(calldata: &[u8]) -> Option<Agreement> {
    use AgreementEscrow as E;
    activation_terms(calldata)
        .or_else(|| {
            E::initiateCloseWithSigCall::abi_decode(calldata)
                .ok()
                .map(|c| c.agreement)
        })
        .or_else(|| {
            E::sellerClaimWithSigCall::abi_decode(calldata)
                .ok()
                .map(|c| c.agreement)
        })
        .or_else(|| {
            E::buyerWithdrawWithSigCall::abi_decode(calldata)
                .ok()
                .map(|c| c.agreement)
        })
}
