//! A party's signed authorization, as submitted for the sponsored path, and the escrow call that
//! submits it. The relayer signs only calls built here, to the escrow, with one of
//! [`SPONSORED_SELECTORS`].

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    sol_types::{Eip712Domain, SolCall, SolStruct},
};
use pactum_bindings::{
    Agreement, AgreementEscrow, PermitSignature, ReceiveAuthorization,
    eip712::{Activation, BuyerWithdraw, InitiateClose, SellerClaim},
};

use crate::ActionKind;

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

    /// The last moment the whole authorization can take effect (unix seconds, saturating): its
    /// deadline, bounded by every token authorization it carries. For EIP-3009 the deposit's
    /// and the fee's `validBefore` (the fee's when it has a signature); for permits the
    /// `Activation` deadline and each signed permit's (an expired permit would leave the
    /// allowance short and the activation would revert).
    pub fn deadline(&self) -> u64 {
        let at = |t: U256| u64::try_from(t).unwrap_or(u64::MAX);
        match self {
            Self::InitiateClose { deadline, .. }
            | Self::SellerClaim { deadline, .. }
            | Self::BuyerWithdraw { deadline, .. } => *deadline,
            Self::ActivateWithAuthorization { deposit, fee } => {
                let fee_until = if fee.signature.is_empty() {
                    u64::MAX
                } else {
                    at(fee.validBefore)
                };
                at(deposit.validBefore).min(fee_until)
            }
            Self::ActivateWithPermit {
                deadline,
                deposit,
                fee,
                ..
            } => [deposit, fee]
                .iter()
                .filter(|p| !p.signature.is_empty())
                .map(|p| at(p.deadline))
                .fold(*deadline, u64::min),
        }
    }

    /// Whether it carries a fee authorization (a signature for the fee transfer).
    pub fn has_fee_authorization(&self) -> bool {
        match self {
            Self::ActivateWithAuthorization { fee, .. } => !fee.signature.is_empty(),
            Self::ActivateWithPermit { fee, .. } => !fee.signature.is_empty(),
            _ => false,
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
pub const SPONSORED_SELECTORS: [[u8; 4]; 5] = [
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
pub fn terms_of(calldata: &[u8]) -> Option<Agreement> {
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

/// The sponsor policy's contract and function allowlist: a call to `escrow` with one of
/// [`SPONSORED_SELECTORS`].
pub fn is_sponsored_call(escrow: Address, target: Address, calldata: &[u8]) -> bool {
    target == escrow
        && calldata.len() >= 4
        && SPONSORED_SELECTORS.iter().any(|s| s[..] == calldata[..4])
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;
    use pactum_bindings::eip712;

    use super::*;
    use crate::escrow::rules::tests::{BUYER, ESCROW, SELLER, terms};

    fn close(party: Address) -> Authorization {
        Authorization::InitiateClose {
            party,
            deadline: 1_234,
            signature: Bytes::from(vec![1; 65]),
        }
    }

    fn eip3009(valid_before: U256) -> Authorization {
        let auth = ReceiveAuthorization {
            validAfter: U256::ZERO,
            validBefore: valid_before,
            signature: Bytes::from(vec![2; 65]),
        };
        Authorization::ActivateWithAuthorization {
            deposit: auth.clone(),
            fee: auth,
        }
    }

    #[test]
    fn signer_kind_and_deadline() {
        let t = terms();
        assert_eq!(close(SELLER).signer(&t), SELLER);
        assert_eq!(close(SELLER).kind(), ActionKind::InitiateClose);
        assert_eq!(close(SELLER).deadline(), 1_234);
        let activation = eip3009(U256::MAX);
        assert_eq!(activation.signer(&t), BUYER);
        assert_eq!(activation.kind(), ActionKind::Activate);
        assert_eq!(activation.deadline(), u64::MAX, "validBefore saturates");
        assert!(activation.has_fee_authorization());
        assert!(
            activation.signature().is_none(),
            "the token checks EIP-3009"
        );
    }

    #[test]
    fn the_digest_is_the_eip712_hash_the_party_signs() {
        let t = terms();
        let domain = eip712::escrow_domain(31_337, ESCROW);
        let id = eip712::agreement_id(&t, &domain);
        let expected = eip712::InitiateClose {
            agreementId: id,
            party: BUYER,
            deadline: U256::from(1_234),
        }
        .eip712_signing_hash(&domain);
        assert_eq!(close(BUYER).digest(&t, id, &domain, ESCROW), expected);
        // Another chain's domain is another digest.
        let other = eip712::escrow_domain(1, ESCROW);
        assert_ne!(close(BUYER).digest(&t, id, &other, ESCROW), expected);
        // An EIP-3009 package is identified by its call: the same package, the same digest.
        let a = eip3009(U256::from(9));
        assert_eq!(
            a.digest(&t, id, &domain, ESCROW),
            eip3009(U256::from(9)).digest(&t, id, &domain, ESCROW)
        );
        assert_ne!(
            a.digest(&t, id, &domain, ESCROW),
            eip3009(U256::from(10)).digest(&t, id, &domain, ESCROW)
        );
    }

    #[test]
    fn every_call_carries_its_terms_and_is_sponsored() {
        let t = terms();
        let all = [
            close(BUYER),
            Authorization::SellerClaim {
                amount: U256::from(5),
                voucher_signature: Bytes::new(),
                recipient: SELLER,
                deadline: 1,
                signature: Bytes::new(),
            },
            Authorization::BuyerWithdraw {
                recipient: BUYER,
                deadline: 1,
                signature: Bytes::new(),
            },
            eip3009(U256::from(1)),
            Authorization::ActivateWithPermit {
                deadline: 1,
                signature: Bytes::new(),
                deposit: PermitSignature {
                    deadline: U256::from(1),
                    signature: Bytes::new(),
                },
                fee: PermitSignature {
                    deadline: U256::from(1),
                    signature: Bytes::new(),
                },
            },
        ];
        for auth in &all {
            let calldata = auth.calldata(&t);
            assert_eq!(terms_of(&calldata), Some(t.clone()));
            assert_eq!(
                activation_terms(&calldata).is_some(),
                auth.kind() == ActionKind::Activate
            );
            assert!(is_sponsored_call(ESCROW, ESCROW, &calldata));
            assert!(!is_sponsored_call(ESCROW, SELLER, &calldata));
        }
    }

    #[test]
    fn other_calls_are_not_sponsored() {
        let t = terms();
        let direct = AgreementEscrow::initiateCloseCall { agreement: t }.abi_encode();
        assert!(!is_sponsored_call(ESCROW, ESCROW, &direct));
        assert_eq!(terms_of(&direct), None);
        assert!(!is_sponsored_call(ESCROW, ESCROW, &[]));
        assert!(!is_sponsored_call(
            ESCROW,
            ESCROW,
            &SPONSORED_SELECTORS[0][..3]
        ));
        assert_eq!(
            terms_of(&SPONSORED_SELECTORS[0]),
            None,
            "selector without arguments"
        );
    }

    #[test]
    fn an_activation_lasts_only_as_long_as_its_shortest_token_authorization() {
        let with =
            |deposit: u64, fee: u64, fee_signed: bool| Authorization::ActivateWithAuthorization {
                deposit: ReceiveAuthorization {
                    validAfter: U256::ZERO,
                    validBefore: U256::from(deposit),
                    signature: Bytes::from(vec![2; 65]),
                },
                fee: ReceiveAuthorization {
                    validAfter: U256::ZERO,
                    validBefore: U256::from(fee),
                    signature: if fee_signed {
                        Bytes::from(vec![3; 65])
                    } else {
                        Bytes::new()
                    },
                },
            };
        assert_eq!(with(2_000, 1_500, true).deadline(), 1_500);
        assert_eq!(with(1_000, 1_500, true).deadline(), 1_000);
        assert_eq!(
            with(2_000, 1_500, false).deadline(),
            2_000,
            "no fee authorization"
        );
        assert!(!with(2_000, 0, false).has_fee_authorization());

        let permit = |deadline: u64, signed: bool| PermitSignature {
            deadline: U256::from(deadline),
            signature: if signed {
                Bytes::from(vec![4; 65])
            } else {
                Bytes::new()
            },
        };
        let package = |deposit, fee| Authorization::ActivateWithPermit {
            deadline: 3_000,
            signature: Bytes::from(vec![1; 65]),
            deposit,
            fee,
        };
        assert_eq!(
            package(permit(2_500, true), permit(2_000, true)).deadline(),
            2_000
        );
        assert_eq!(
            package(permit(2_500, true), permit(10, false)).deadline(),
            2_500
        );
        assert_eq!(
            package(permit(10, false), permit(10, false)).deadline(),
            3_000,
            "unsigned permits (an existing allowance) do not expire"
        );
    }
}
