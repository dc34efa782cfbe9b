//! Smart-contract wallets for the tests: the forge suite's ERC-1271 wallet
//! (`tests/forge/mocks/ERC1271Wallet.sol`), and a [`Signer`] that signs for such a wallet with
//! its owner's key, so every helper that signs for a party (activation packages, vouchers,
//! settlement authorizations) works for a wallet party unchanged.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, ChainId, Signature},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::{Signer, local::PrivateKeySigner},
    sol,
    sol_types::SolConstructor,
};

use crate::chain::Chain;

sol! {
    #[sol(rpc)]
    contract ERC1271Wallet {
        constructor(address owner_);
        function setMode(uint8 newMode) external;
    }
}

/// `ERC1271Wallet.Mode` values used by the tests.
pub(crate) const APPROVE: u8 = 0;
pub(crate) const REFUSE: u8 = 1;
pub(crate) const RETURN_DIRTY_MAGIC: u8 = 3;

/// Deploys an ERC-1271 wallet owned by `owner` (it approves its owner's ECDSA signatures).
pub(crate) async fn deploy_wallet(chain: &Chain, owner: Address) -> eyre::Result<Address> {
    let code = crate::artifacts::forge_bytecode("ERC1271Wallet.sol", "ERC1271Wallet", "bytecode")?;
    let args = ERC1271Wallet::constructorCall { owner_: owner }.abi_encode();
    let request = TransactionRequest::default()
        .from(chain.deployer.address())
        .with_deploy_code([code.as_ref(), &args].concat());
    let receipt = chain
        .provider
        .send_transaction(request)
        .await?
        .get_receipt()
        .await?;
    receipt
        .contract_address
        .ok_or_else(|| eyre::eyre!("the wallet was not deployed"))
}

/// Switches `wallet`'s answers to `mode` (in its own mined transaction).
pub(crate) async fn set_mode(chain: &Chain, wallet: Address, mode: u8) -> eyre::Result<()> {
    let contract = ERC1271Wallet::new(wallet, &chain.provider);
    pactum_devnet::confirm(contract.setMode(mode).from(chain.deployer.address())).await?;
    Ok(())
}

/// The unsent transaction switching `wallet` to `mode` (for ordering it around another).
pub(crate) fn set_mode_tx(chain: &Chain, wallet: Address, mode: u8) -> TransactionRequest {
    ERC1271Wallet::new(wallet, &chain.provider)
        .setMode(mode)
        .from(chain.deployer.address())
        .into_transaction_request()
}

/// Signs as `wallet` (its address) with its owner's key: the wallet approves the owner's
/// signature of the hash through ERC-1271.
#[derive(Debug, Clone)]
pub(crate) struct WalletSigner {
    pub(crate) wallet: Address,
    pub(crate) owner: PrivateKeySigner,
}

impl WalletSigner {
    /// A fresh owner key and its wallet, funded with `usdc` base units of the test token.
    pub(crate) async fn deploy_funded(chain: &Chain, usdc: u64) -> eyre::Result<Self> {
        let owner = PrivateKeySigner::random();
        let wallet = deploy_wallet(chain, owner.address()).await?;
        chain
            .mint(wallet, alloy::primitives::U256::from(usdc))
            .await?;
        Ok(Self { wallet, owner })
    }
}

#[async_trait::async_trait]
impl Signer for WalletSigner {
    async fn sign_hash(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        self.owner.sign_hash(hash).await
    }

    fn address(&self) -> Address {
        self.wallet
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.owner.chain_id()
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.owner.set_chain_id(chain_id);
    }
}
