//! A local chain to develop and test against: finds the project-local Anvil, spawns it (through
//! alloy-node-bindings) or connects to a running one, deploys pactum's full contract set, and
//! drives agreements through their lifecycle.
//!
//! Used by the `pactum demo` command and by the end-to-end tests; never by production services.

mod anvil;
mod deploy;
mod error;
pub mod scenario;

pub use anvil::{
    DEV_PRIVATE_KEYS, anvil_binary, connect, dev_signer, free_port, spawn_anvil, spawn_anvil_at,
    spawn_anvil_with,
};
pub use deploy::{DeployedContract, Deployment, confirm, deploy, deploy_funded};
pub use error::{Error, Result};
