//! The endpoints, one module per concern.

pub mod agents;
pub mod agreements;
pub mod approvals;
pub mod health;
pub mod keys;
pub mod owners;
pub mod receipts;
pub mod settlement;
pub mod status;
pub mod webhooks;
