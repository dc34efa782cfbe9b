//! The settlement paths: what is possible now and on which path, the unsigned calls of the direct
//! path, and the sponsored path's signed authorizations and relay jobs.

use alloy::primitives::B256;
use pactum_core::{
    ActionKind, AgreementStatus, AttemptKind, AttemptOutcome, JobFailure, JobState, Refusal,
    RefusalCode, SettlementAction, escrow::calls,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of the settlement-options endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OptionsParams {
    /// `initiate_close`, `seller_claim` or `buyer_withdraw`.
    #[param(pattern = "^(initiate_close|seller_claim|buyer_withdraw)$")]
    pub action: String,
    /// `initiate_close`: the signing party (default: the caller's wallet if a party, else the buyer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub party: Option<String>,
    /// Where the payout goes (default: the party itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: Option<String>,
    /// `seller_claim`: the voucher amount to sign for (default: the recorded entitlement on a
    /// retry, else the maximum as a placeholder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^[0-9]{1,77}$")]
    pub amount: Option<String>,
    /// The authorization's deadline, unix seconds (default: block time + 15 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

impl OptionsParams {
    /// The options of `action` with every default.
    pub fn of(action: SettlementAction) -> Self {
        Self {
            action: action.as_str().to_owned(),
            ..Self::default()
        }
    }
}

/// One execution path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PathOption {
    /// Usable now.
    pub open: bool,
    /// Why not, as a stable code.
    pub reason: Option<RefusalCode>,
    /// Details of `reason`.
    pub detail: Option<String>,
}

impl From<&Result<(), Refusal>> for PathOption {
    fn from(verdict: &Result<(), Refusal>) -> Self {
        match verdict {
            Ok(()) => Self {
                open: true,
                reason: None,
                detail: None,
            },
            Err(r) => Self {
                open: false,
                reason: Some(r.code),
                detail: Some(r.detail.clone()),
            },
        }
    }
}

/// The answer of the settlement-options endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionOptions {
    /// The agreement id.
    pub agreement_id: String,
    /// The action.
    pub action: SettlementAction,
    /// Possible now on at least one path.
    pub possible_now: bool,
    /// Why not (the agreement's state), if not.
    pub reason: Option<RefusalCode>,
    /// Details of `reason`.
    pub detail: Option<String>,
    /// When it becomes possible, if only time stands in the way (unix seconds).
    pub earliest_at: Option<u64>,
    /// Block time the answer was computed at.
    pub block_timestamp: u64,
    /// The on-chain status.
    pub onchain_status: AgreementStatus,
    /// Who must sign (or send) it.
    pub signer: String,
    /// Whether the operator vouches for the agreement's token (see `EscrowStatus`).
    pub token_trusted: bool,
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

impl ActionOptions {
    /// The digest to sign, parsed.
    pub fn digest(&self) -> Option<B256> {
        self.digest.as_deref().and_then(|d| d.parse().ok())
    }

    /// The deadline of the typed data to sign (unix seconds), parsed.
    pub fn deadline(&self) -> Option<u64> {
        self.typed_data.as_ref()?["message"]["deadline"]
            .as_str()?
            .parse()
            .ok()
    }
}

/// The direct path: the call a party sends from its own wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DirectCall {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow.
    pub to: String,
    /// ABI-encoded call.
    pub data: String,
    /// Always "0".
    pub value: String,
    /// The function, for display.
    pub function: String,
    /// Who may send it.
    pub from: Vec<String>,
}

impl From<calls::DirectCall> for DirectCall {
    fn from(call: calls::DirectCall) -> Self {
        Self {
            chain_id: call.chain_id,
            to: call.to.to_string(),
            data: call.data.to_string(),
            value: "0".to_owned(),
            function: call.function.to_owned(),
            from: call.from.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Query of the claim-instructions endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClaimParams {
    /// `seller_claim` or `buyer_withdraw` (default: by the caller's role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^(seller_claim|buyer_withdraw)$")]
    pub action: Option<String>,
    /// `seller_claim`: the voucher's cumulative amount (not needed to retry a deferred payout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^[0-9]{1,77}$")]
    pub amount: Option<String>,
    /// `seller_claim`: the buyer's voucher signature (not needed to retry a deferred payout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub voucher_signature: Option<String>,
    /// Where to pay (default: the party itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: Option<String>,
}

/// The EIP-712 domain the client signed under, if it says (checked against the escrow's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    /// Domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Domain version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Chain id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The verifying contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub verifying_contract: Option<String>,
}

/// A party's signed `InitiateClose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateCloseBody {
    /// The signing party (buyer or seller).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub party: String,
    /// The signed deadline (unix seconds).
    pub deadline: u64,
    /// The party's signature (65-byte ECDSA, or anything its ERC-1271 wallet accepts).
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub signature: String,
    /// The domain the client signed under (optional; a mismatch is refused as `wrong_domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainBody>,
}

/// The seller's signed `SellerClaim`, with the buyer's voucher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerClaimBody {
    /// The voucher's cumulative amount (token base units, decimal).
    #[schema(pattern = "^[0-9]{1,77}$")]
    pub amount: String,
    /// The buyer's voucher signature (ignored on chain when retrying a deferred payout).
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub voucher_signature: String,
    /// Where to pay.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: String,
    /// The signed deadline.
    pub deadline: u64,
    /// The seller's signature.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub signature: String,
    /// See [`InitiateCloseBody::domain`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainBody>,
}

/// The buyer's signed `BuyerWithdraw`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerWithdrawBody {
    /// Where to pay.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub recipient: String,
    /// The signed deadline.
    pub deadline: u64,
    /// The buyer's signature.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub signature: String,
    /// See [`InitiateCloseBody::domain`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainBody>,
}

/// One signed transaction of a relay job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    /// Its hash.
    pub tx_hash: String,
    /// `action`, `cancel` (a no-op replacing it) or `fill`.
    pub kind: AttemptKind,
    /// Nonce of the relayer key.
    pub nonce: u64,
    /// Fee cap (wei per gas).
    pub max_fee_per_gas: String,
    /// Tip (wei per gas).
    pub max_priority_fee_per_gas: String,
    /// Whether the node took it.
    pub broadcast: bool,
    /// `mined`, `replaced`, or none while pending.
    pub outcome: Option<AttemptOutcome>,
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FailureView {
    /// Stable code: a refusal's code, or how the mined action reverted (`out_of_gas`,
    /// `preempted`, `reverted`).
    pub code: JobFailure,
    /// Details.
    pub detail: String,
}

/// A sponsored action and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayView {
    /// The relay id.
    pub relay_id: String,
    /// The agreement.
    pub agreement_id: String,
    /// What it does.
    pub action: ActionKind,
    /// Where it is.
    pub status: JobState,
    /// The party whose signature it carries.
    pub signer: String,
    /// The authorization's deadline (unix seconds).
    pub deadline: u64,
    /// Why it failed (or is being cancelled).
    pub failure: Option<FailureView>,
    /// The relayer key submitting it.
    pub relayer: Option<String>,
    /// The key's nonce it holds.
    pub nonce: Option<u64>,
    /// The mined transaction.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block_number: Option<u64>,
    /// Gas it used.
    pub gas_used: Option<u64>,
    /// Every transaction attempted, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Milliseconds since the epoch: accepted, first submitted, finished.
    pub created_at_ms: i64,
    /// See `created_at_ms`.
    pub submitted_at_ms: Option<i64>,
    /// See `created_at_ms`.
    pub finished_at_ms: Option<i64>,
    /// Where to poll.
    pub status_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_closed_by_a_refusal_carries_its_code() {
        let open = PathOption::from(&Ok(()));
        assert!(open.open && open.reason.is_none());
        let closed = PathOption::from(&Err(Refusal::new(RefusalCode::SponsorPaused, "topped up")));
        assert_eq!(
            serde_json::to_value(&closed).unwrap(),
            serde_json::json!({ "open": false, "reason": "sponsor_paused", "detail": "topped up" })
        );
    }

    #[test]
    fn bodies_omit_what_is_not_given_and_refuse_unknown_fields() {
        let body = InitiateCloseBody {
            party: "0x01".into(),
            deadline: 5,
            signature: "0x".into(),
            domain: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert!(json.get("domain").is_none());
        assert_eq!(
            serde_json::from_value::<InitiateCloseBody>(json).unwrap(),
            body
        );
        let extra =
            serde_json::json!({ "party": "0x01", "deadline": 5, "signature": "0x", "x": 1 });
        assert!(serde_json::from_value::<InitiateCloseBody>(extra).is_err());
    }

    #[test]
    fn a_relay_view_round_trips_with_its_enums_spelled_as_stored() {
        let view = RelayView {
            relay_id: "rel_1".into(),
            agreement_id: B256::ZERO.to_string(),
            action: ActionKind::SellerClaim,
            status: JobState::Cancelling,
            signer: "0x02".into(),
            deadline: 9,
            failure: None,
            relayer: None,
            nonce: Some(3),
            tx_hash: None,
            block_number: None,
            gas_used: None,
            attempts: vec![AttemptView {
                tx_hash: B256::ZERO.to_string(),
                kind: AttemptKind::Cancel,
                nonce: 3,
                max_fee_per_gas: "1".into(),
                max_priority_fee_per_gas: "1".into(),
                broadcast: true,
                outcome: Some(AttemptOutcome::Replaced),
            }],
            created_at_ms: 1,
            submitted_at_ms: None,
            finished_at_ms: None,
            status_url: "/x".into(),
        };
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["action"], "seller_claim");
        assert_eq!(json["status"], "cancelling");
        assert_eq!(json["attempts"][0]["kind"], "cancel");
        assert_eq!(json["attempts"][0]["outcome"], "replaced");
        assert_eq!(serde_json::from_value::<RelayView>(json).unwrap(), view);
    }
}
