//! Whether an action is possible now, on which path, and what the party must sign: the escrow's
//! rules ([`pactum_core::escrow::rules`]) read against its on-chain state, and whether the
//! sponsor can take it.

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_bindings::Agreement;
use pactum_core::{
    Refusal, RefusalCode, SettlementAction,
    escrow::{calls, rules, typed_data},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::chain::{self, SignerKind};

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
            reason: Some(r.code.as_str()),
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
        let possible = rules::eligibility(action.kind(), terms, &state, head.timestamp);
        let not_party = rules::check_party(terms, signer).err();
        let direct = match (&possible, &not_party) {
            (Err(r), _) | (_, Some(r)) => PathOption::closed(r),
            _ => PathOption::open(),
        };
        let sponsored = if !direct.open {
            direct.clone()
        } else if let Some(r) = self.sponsor_unavailable().await? {
            PathOption::closed(&r)
        } else if chain::signer_kind(provider, signer).await? == SignerKind::Unsupported {
            PathOption::closed(&Refusal::new(
                RefusalCode::SignerUnsupported,
                format!(
                    "{signer} is a contract without ERC-1271: it can only send the call itself"
                ),
            ))
        } else {
            PathOption::open()
        };
        let (reason, detail, earliest_at) = match &possible {
            Ok(()) => (None, None, None),
            Err(r) => (Some(r.code.as_str()), Some(r.detail.clone()), r.earliest_at),
        };
        Ok(ActionOptions {
            agreement_id: id.to_string(),
            action: action.as_str(),
            possible_now: direct.open,
            reason,
            detail,
            earliest_at,
            block_timestamp: head.timestamp,
            onchain_status: rules::status(&state).as_str(),
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

impl From<calls::DirectCall> for DirectCall {
    fn from(call: calls::DirectCall) -> Self {
        Self {
            chain_id: call.chain_id,
            to: call.to.to_string(),
            data: call.data.to_string(),
            value: "0",
            function: call.function,
            from: call.from.iter().map(ToString::to_string).collect(),
        }
    }
}

/// `initiateClose(agreement)`, sendable by the buyer or the seller.
pub fn initiate_close_call(chain_id: u64, escrow: Address, terms: &Agreement) -> DirectCall {
    calls::initiate_close(chain_id, escrow, terms).into()
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
    calls::seller_claim(
        chain_id,
        escrow,
        terms,
        amount,
        voucher_signature,
        recipient,
    )
    .into()
}

/// `buyerWithdraw(agreement, recipient)`, sendable by the buyer.
pub fn buyer_withdraw_call(
    chain_id: u64,
    escrow: Address,
    terms: &Agreement,
    recipient: Address,
) -> DirectCall {
    calls::buyer_withdraw(chain_id, escrow, terms, recipient).into()
}
