//! Receipts. The [`issuer`] signs a receipt for each money movement the index holds in a final
//! block (the deposit and fee at activation, the seller's payout, the buyer's withdrawal) with the
//! service's receipt key, as EIP-712 typed data, and stores it (announcing it as
//! `receipt.issued`). [`document`] turns a receipt into the document the API serves and back;
//! [`verify`] checks a document against a chain node, trusting neither the API nor its database.

pub mod document;
pub mod issuer;
pub mod verify;

pub use issuer::Issuer;
pub use verify::{Finality, Trusted, Verdict, verify_on_index, verify_on_node};
