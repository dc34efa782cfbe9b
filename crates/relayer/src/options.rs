//! Whether an action is possible now, on which path, and what the party must sign: the rules the
//! escrow applies, read against its on-chain state, shared by [`crate::Relayer::accept`] and the
//! settlement-options endpoint.

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_bindings::{Agreement, AgreementState, AgreementStatus};
use pactum_db::relay::ActionKind;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    Refusal, SettlementAction,
    chain::{self, SignerKind},
    typed_data,
};

/// The escrow's rules for `action` in `state` at block time `now`.
pub(crate) fn eligibility(
    action: ActionKind,
    terms: &Agreement,
    state: &AgreementState,
    now: u64,
) -> Result<(), Refusal> {
    use AgreementStatus as S;
    let status = AgreementStatus::try_from(state.status).unwrap_or(S::None);
    let deadline = u64::try_from(state.closeDeadline).unwrap_or(u64::MAX);
    let taken = |what: &str| {
        Refusal::conflict(
            "action_already_taken",
            "Already done",
            format!("{what} already happened on chain"),
        )
    };
    let not_active = || {
        Refusal::conflict(
            "agreement_not_active",
            "Agreement not active",
            "the agreement was never activated on chain",
        )
    };
    let not_closing = || {
        Refusal::conflict(
            "close_not_initiated",
            "Close not initiated",
            "the agreement is active: a party must initiate the close first",
        )
    };
    match action {
        ActionKind::Activate => match status {
            S::None if now >= terms.expiry => Err(Refusal::invalid(
                "agreement_expired",
                "Agreement expired",
                format!("the terms expired at {}", terms.expiry),
            )),
            S::None => Ok(()),
            _ => Err(taken("the activation")),
        },
        ActionKind::InitiateClose => match status {
            S::None => Err(not_active()),
            S::Active => Ok(()),
            _ => Err(taken("the close")),
        },
        ActionKind::SellerClaim => match status {
            S::None => Err(not_active()),
            S::Active => Err(not_closing()),
            S::Closing if now < deadline => Ok(()),
            S::Closing => Err(Refusal::conflict(
                "close_window_elapsed",
                "Close window elapsed",
                format!("the seller could claim until {deadline}"),
            )),
            S::SellerClaimed if !state.sellerPaid => Ok(()),
            S::Settled if state.settledAmount == 0 => Err(Refusal::conflict(
                "close_window_elapsed",
                "Close window elapsed",
                "the seller did not claim in time and the buyer withdrew everything",
            )),
            _ => Err(taken("the seller's payout")),
        },
        ActionKind::BuyerWithdraw => match status {
            S::None => Err(not_active()),
            S::Active => Err(not_closing()),
            _ if state.buyerWithdrawn => Err(taken("the buyer's withdrawal")),
            S::Closing if now < deadline => Err(Refusal::conflict(
                "close_window_open",
                "Close window still open",
                format!("the buyer can withdraw once the seller claimed or at {deadline}"),
            )
            .at(deadline)),
            _ => Ok(()),
        },
    }
}

/// What the caller wants to sign (query parameters of the options endpoint).
#[derive(Debug, Clone, Default)]
pub struct OptionsQuery {
    /// For `initiate_close`: which party signs (default: the buyer).
    pub party: Option<Address>,
    /// Where to pay (default: the party itself).
    pub recipient: Option<Address>,
    /// For `seller_claim`: the voucher amount (default: the recorded entitlement on a retry,
    /// else the agreement's maximum as a placeholder to replace).
    pub amount: Option<U256>,
    /// The authorization's deadline (default: block time + 15 minutes).
    pub deadline: Option<u64>,
}

/// One execution path.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PathOption {
    /// Usable now.
    pub open: bool,
    /// Why not, as a stable code.
    pub reason: Option<&'static str>,
    /// Details of `reason`.
    pub detail: Option<String>,
}

impl PathOption {
    fn open() -> Self {
        Self {
            open: true,
            reason: None,
            detail: None,
        }
    }

    fn closed(r: &Refusal) -> Self {
        Self {
            open: false,
            reason: Some(r.code),
            detail: Some(r.detail.clone()),
        }
    }
}

/// The answer of the settlement-options endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionOptions {
    /// The agreement id.
    pub agreement_id: String,
    /// The action.
    pub action: &'static str,
    /// Possible now on at least one path.
    pub possible_now: bool,
    /// Why not (the agreement's state), if not.
    pub reason: Option<&'static str>,
    /// Details of `reason`.
    pub detail: Option<String>,
    /// When it becomes possible, if only time stands in the way (unix seconds).
    pub earliest_at: Option<u64>,
    /// Block time the answer was computed at.
    pub block_timestamp: u64,
    /// The on-chain status.
    pub onchain_status: &'static str,
    /// Who must sign (or send) it.
    pub signer: String,
    /// The party sends `direct.function` itself (see the calldata endpoints).
    pub direct: PathOption,
    /// The relayer submits the party's signed authorization and pays the gas.
    pub sponsored: PathOption,
    /// What to sign for the sponsored path: EIP-712 typed data (`eth_signTypedData_v4`).
    #[schema(value_type = Object)]
    pub typed_data: Option<serde_json::Value>,
    /// Its digest.
    pub digest: Option<String>,
}

/// Names a status for the API.
pub(crate) fn status_name(state: &AgreementState) -> &'static str {
    match AgreementStatus::try_from(state.status) {
        Ok(AgreementStatus::None) | Err(_) => "none",
        Ok(AgreementStatus::Active) => "active",
        Ok(AgreementStatus::Closing) => "closing",
        Ok(AgreementStatus::SellerClaimed) => "seller_claimed",
        Ok(AgreementStatus::Settled) => "settled",
    }
}

impl crate::Relayer {
    /// The options for `action` on the agreement with `terms` (id `id`).
    pub async fn options(
        &self,
        terms: &Agreement,
        id: B256,
        action: SettlementAction,
        query: &OptionsQuery,
    ) -> Result<ActionOptions, crate::Error> {
        let provider = self.provider();
        let head = chain::head(provider).await?;
        let state = chain::agreement_state(provider, self.settings().escrow, id).await?;
        let domain = self.escrow_domain();
        let deadline = query.deadline.unwrap_or(head.timestamp + 900);
        let (signer, (typed, digest)) = match action {
            SettlementAction::InitiateClose => {
                let party = query.party.unwrap_or(terms.buyer);
                (
                    party,
                    typed_data::initiate_close(&domain, id, party, deadline),
                )
            }
            SettlementAction::SellerClaim => {
                let amount = query.amount.unwrap_or(if state.settledAmount > 0 {
                    U256::from(state.settledAmount)
                } else {
                    terms.maxAmount
                });
                let recipient = query.recipient.unwrap_or(terms.seller);
                (
                    terms.seller,
                    typed_data::seller_claim(&domain, id, amount, recipient, deadline),
                )
            }
            SettlementAction::BuyerWithdraw => {
                let recipient = query.recipient.unwrap_or(terms.buyer);
                (
                    terms.buyer,
                    typed_data::buyer_withdraw(&domain, id, recipient, deadline),
                )
            }
        };
        let possible = eligibility(action.kind(), terms, &state, head.timestamp);
        let not_party = (signer != terms.buyer && signer != terms.seller).then(|| {
            Refusal::invalid(
                "not_a_party",
                "Not a party",
                format!("{signer} is neither the buyer nor the seller"),
            )
        });
        let direct = match (&possible, &not_party) {
            (Err(r), _) | (_, Some(r)) => PathOption::closed(r),
            _ => PathOption::open(),
        };
        let sponsored = if !direct.open {
            direct.clone()
        } else if let Some(r) = self.sponsor_unavailable().await? {
            PathOption::closed(&r)
        } else if chain::signer_kind(provider, signer).await? == SignerKind::Unsupported {
            PathOption::closed(&Refusal::invalid(
                "signer_unsupported",
                "Signer unsupported",
                format!(
                    "{signer} is a contract without ERC-1271: it can only send the call itself"
                ),
            ))
        } else {
            PathOption::open()
        };
        let (reason, detail, earliest_at) = match &possible {
            Ok(()) => (None, None, None),
            Err(r) => (Some(r.code), Some(r.detail.clone()), r.earliest_at),
        };
        Ok(ActionOptions {
            agreement_id: id.to_string(),
            action: action.as_str(),
            possible_now: direct.open,
            reason,
            detail,
            earliest_at,
            block_timestamp: head.timestamp,
            onchain_status: status_name(&state),
            signer: signer.to_string(),
            sponsored,
            direct,
            typed_data: Some(typed),
            digest: Some(digest.to_string()),
        })
    }
}

/// The direct path: the call a party sends from its own wallet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectCall {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub to: String,
    /// ABI-encoded call.
    pub data: String,
    /// Always "0".
    pub value: &'static str,
    /// The function, for display.
    pub function: &'static str,
    /// Who may send it.
    pub from: Vec<String>,
}

impl DirectCall {
    pub(crate) fn new(
        chain_id: u64,
        to: Address,
        data: Bytes,
        function: &'static str,
        from: Vec<Address>,
    ) -> Self {
        Self {
            chain_id,
            to: to.to_string(),
            data: data.to_string(),
            value: "0",
            function,
            from: from.iter().map(ToString::to_string).collect(),
        }
    }
}

/// `initiateClose(agreement)`, sendable by the buyer or the seller.
pub fn initiate_close_call(chain_id: u64, escrow: Address, terms: &Agreement) -> DirectCall {
    use alloy::sol_types::SolCall;
    let data = pactum_bindings::AgreementEscrow::initiateCloseCall {
        agreement: terms.clone(),
    }
    .abi_encode();
    DirectCall::new(
        chain_id,
        escrow,
        data.into(),
        "initiateClose(Agreement)",
        vec![terms.buyer, terms.seller],
    )
}

/// `sellerClaim(agreement, amount, voucherSignature, recipient)`, sendable by the seller.
pub fn seller_claim_call(
    chain_id: u64,
    escrow: Address,
    terms: &Agreement,
    amount: U256,
    voucher_signature: Bytes,
    recipient: Address,
) -> DirectCall {
    use alloy::sol_types::SolCall;
    let data = pactum_bindings::AgreementEscrow::sellerClaimCall {
        agreement: terms.clone(),
        amount,
        voucherSignature: voucher_signature,
        recipient,
    }
    .abi_encode();
    DirectCall::new(
        chain_id,
        escrow,
        data.into(),
        "sellerClaim(Agreement,uint256,bytes,address)",
        vec![terms.seller],
    )
}

/// `buyerWithdraw(agreement, recipient)`, sendable by the buyer.
pub fn buyer_withdraw_call(
    chain_id: u64,
    escrow: Address,
    terms: &Agreement,
    recipient: Address,
) -> DirectCall {
    use alloy::sol_types::SolCall;
    let data = pactum_bindings::AgreementEscrow::buyerWithdrawCall {
        agreement: terms.clone(),
        recipient,
    }
    .abi_encode();
    DirectCall::new(
        chain_id,
        escrow,
        data.into(),
        "buyerWithdraw(Agreement,address)",
        vec![terms.buyer],
    )
}
