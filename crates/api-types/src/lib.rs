//! The pactum API's wire types: every request body, query and response, with the serde and
//! OpenAPI schema the server (`pactum-api`) serves and the client (`pactum-client`) reads. A
//! type here is a public contract: fields are added, never renamed.
//!
//! Amounts are token base units as decimal strings (they are `uint256` on chain); addresses and
//! hashes are `0x` hex strings; times are unix seconds unless a field says milliseconds.

pub mod agreements;
pub mod approvals;
pub mod escrow;
pub mod identity;
pub mod keys;
pub mod operations;
pub mod problem;
pub mod receipts;
pub mod settlement;
pub mod webhooks;

pub use agreements::{
    ActivateEscrow, ActivationPackage, AgreementEventView, AgreementPage, InfraFeeBlock,
    ListAgreements, OnChainTermsView, PackageParams, PaymentMethod, PermitPackage,
    PermitSignatures, ProposeAgreement, RecordUsage, RejectAgreement, TypedMessage,
    UsageAgreementView, UsageView, UsageVoucher, VoucherParams,
};
pub use approvals::{ApprovalPage, ApprovalView, ListApprovals, RejectApproval};
pub use escrow::{EscrowStatus, IndexedHead, TransitionView, Transitions};
pub use identity::{
    AgentPage, AgentView, ApiKeyList, ApiKeyView, CreateApiKey, ListAgents, NewApiKey, OwnerView,
    PolicyView, RegisterAgent, RegistrationMessage, RegistrationParams,
};
pub use keys::{RevocationView, RevokeRequest};
pub use operations::{Health, Ready};
pub use pactum_core::agreement::{EventKind, LifecycleStatus, Role};
pub use pactum_core::approval::{ApprovalCode, ApprovalStatus, Decision};
pub use pactum_core::policy::Policy;
pub use pactum_core::receipt::ReceiptKind;
pub use pactum_core::webhook::{DeliveryStatus, EndpointStatus, EventType, WebhookCode};
/// The states and codes the wire types carry, spelled as on the wire.
pub use pactum_core::{
    ActionKind, ActivationStatus, AgreementStatus, AttemptKind, AttemptOutcome, DeferralReason,
    EscrowPhase, JobFailure, JobState, RefusalCode, RevertKind, SettlementAction,
};
pub use problem::Problem;
pub use receipts::{ListReceipts, ReceiptPage, ReceiptSigner, ReceiptVerification, ReceiptView};
pub use settlement::{
    ActionOptions, AttemptView, BuyerWithdrawBody, ClaimParams, DirectCall, DomainBody,
    FailureView, InitiateCloseBody, OptionsParams, PathOption, RelayView, SellerClaimBody,
};
pub use webhooks::{
    AgreementEventData, AgreementEventPayload, AttemptLog, CreateWebhook, DeliveryPage,
    DeliveryView, ListDeliveries, ReceiptIssuedData, ReceiptIssuedPayload, RotateSecret,
    SponsoredActionData, SponsoredActionPayload, UpdateWebhook, WebhookList, WebhookView,
    WebhookWithSecret,
};
