//! Signing an agent's registration: the wallet's proof that it acts for the agent, computed
//! here from the protocol's own `AgentRegistration` type (not taken from the server).

use alloy::{primitives::Address, signers::Signer};
use pactum_api_types::RegisterAgent;
use pactum_bindings::{
    eip712::{AgentRegistration, agents_domain},
    sign::sign_typed,
};

use crate::Result;

/// An agent registration to sign.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    /// The chain.
    pub chain_id: u64,
    /// The deployment's escrow (the agents domain's verifying contract).
    pub escrow: Address,
    /// The owner registering.
    pub owner_id: &'a str,
    /// The agent id.
    pub agent_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Until when the proof may be used (unix seconds, at most an hour ahead).
    pub deadline: u64,
}

/// Signs `registration` with `signer` (the agent's wallet, or a key its ERC-1271 wallet accepts:
/// the wallet is `signer.address()`): the body of `POST /agents`.
pub async fn sign_registration<S: Signer + Sync + ?Sized>(
    signer: &S,
    registration: &Registration<'_>,
) -> Result<RegisterAgent> {
    let r = registration;
    let wallet = signer.address();
    let message = AgentRegistration {
        owner: r.owner_id.to_owned(),
        agent: r.agent_id.to_owned(),
        wallet,
        deadline: alloy::primitives::U256::from(r.deadline),
    };
    let signature = sign_typed(signer, &message, &agents_domain(r.chain_id, r.escrow)).await?;
    Ok(RegisterAgent {
        agent_id: r.agent_id.to_owned(),
        name: r.name.to_owned(),
        wallet_address: wallet.to_string(),
        wallet_signature: signature.to_string(),
        deadline: r.deadline,
    })
}
