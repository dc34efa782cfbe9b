//! End-to-end tests: a real Anvil (spawned through alloy-node-bindings), the contracts deployed
//! from the generated bindings, and every signature produced in Rust.

mod agents;
mod agreements;
mod api;
mod artifacts;
mod chain;
mod indexing;
mod lifecycle;
mod owner_tokens;
mod policies;
mod receipts;
mod relayer;
mod signatures;
mod wallet;
mod webhooks;
