//! A fresh chain with pactum deployed on it, per test.

use alloy::{
    network::EthereumWallet,
    node_bindings::AnvilInstance,
    primitives::{Address, U256, keccak256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use pactum_bindings::{Agreement, AgreementEscrow, LocalUSDC, PermitSignature, eip712, sign};
use pactum_devnet::{Deployment, dev_signer};

pub(crate) const USDC: u64 = 1_000_000;
pub(crate) const BUYER_FUNDS: u64 = 1_000 * USDC;

pub(crate) struct Chain {
    // Dropping the instance kills anvil: keep it alive as long as the chain is used.
    anvil: AnvilInstance,
    pub(crate) provider: DynProvider,
    pub(crate) deployment: Deployment,
    pub(crate) deployer: PrivateKeySigner,
    pub(crate) buyer: PrivateKeySigner,
    pub(crate) seller: PrivateKeySigner,
    pub(crate) relayer: PrivateKeySigner,
}

impl Chain {
    /// Spawns anvil, deploys, and funds the buyer with `BUYER_FUNDS`.
    pub(crate) async fn start() -> eyre::Result<Self> {
        let anvil = pactum_devnet::spawn_anvil()?;
        let (deployer, buyer, seller, relayer) =
            (dev_signer(0), dev_signer(1), dev_signer(2), dev_signer(3));
        let treasury = dev_signer(4).address();
        let mut wallet = EthereumWallet::new(deployer.clone());
        for signer in [&buyer, &seller, &relayer] {
            wallet.register_signer(signer.clone());
        }
        let provider = pactum_devnet::connect(anvil.endpoint_url(), wallet);
        let deployment =
            pactum_devnet::deploy(&provider, deployer.address(), deployer.address(), treasury)
                .await?;
        let chain = Self {
            anvil,
            provider,
            deployment,
            deployer,
            buyer,
            seller,
            relayer,
        };
        chain
            .mint(chain.buyer.address(), U256::from(BUYER_FUNDS))
            .await?;
        Ok(chain)
    }

    pub(crate) fn escrow(&self) -> AgreementEscrow::AgreementEscrowInstance<&DynProvider> {
        AgreementEscrow::new(self.deployment.escrow, &self.provider)
    }

    pub(crate) fn token(&self) -> LocalUSDC::LocalUSDCInstance<&DynProvider> {
        LocalUSDC::new(self.deployment.token, &self.provider)
    }

    pub(crate) async fn mint(&self, to: Address, amount: U256) -> eyre::Result<()> {
        pactum_devnet::confirm(self.token().mint(to, amount).from(self.deployer.address())).await?;
        Ok(())
    }

    pub(crate) async fn balance(&self, account: Address) -> eyre::Result<U256> {
        Ok(self.token().balanceOf(account).call().await?)
    }

    /// Terms between `buyer` and `seller`: 100 USDC, 1 USDC fee, one-hour close window.
    pub(crate) async fn agreement(
        &self,
        buyer: Address,
        seller: Address,
        salt: &str,
    ) -> eyre::Result<Agreement> {
        let now = pactum_devnet::scenario::latest_timestamp(&self.provider).await?;
        Ok(Agreement {
            buyer,
            seller,
            token: self.deployment.token,
            maxAmount: U256::from(100 * USDC),
            infraFee: U256::from(USDC),
            expiry: now + 86_400,
            closeWindow: 3_600,
            salt: keccak256(salt),
        })
    }

    /// The buyer's EIP-2612 permits for activating `terms` with permits: `maxAmount` to the
    /// escrow, then `infraFee` to the fee collector (consecutive token nonces), until `deadline`.
    pub(crate) async fn permits(
        &self,
        terms: &Agreement,
        deadline: U256,
    ) -> eyre::Result<[PermitSignature; 2]> {
        let d = &self.deployment;
        let token_domain = eip712::usdc_domain(d.chain_id, d.token);
        let nonce = self.token().nonces(terms.buyer).call().await?;
        let sign = |spender, value, offset: u64| {
            let permit = eip712::Permit {
                owner: terms.buyer,
                spender,
                value,
                nonce: nonce + U256::from(offset),
                deadline,
            };
            let token_domain = &token_domain;
            async move {
                Ok::<_, eyre::Report>(PermitSignature {
                    deadline,
                    signature: sign::sign_typed(&self.buyer, &permit, token_domain).await?,
                })
            }
        };
        Ok([
            sign(d.escrow, terms.maxAmount, 0).await?,
            sign(d.fee_collector, terms.infraFee, 1).await?,
        ])
    }

    /// Moves the chain's clock forward and mines a block.
    pub(crate) async fn advance_time(&self, seconds: u64) -> eyre::Result<()> {
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await?;
        let _: serde_json::Value = self.provider.raw_request("evm_mine".into(), ()).await?;
        Ok(())
    }
}

impl Chain {
    /// `evm_snapshot`: the id to revert to.
    pub(crate) async fn snapshot(&self) -> eyre::Result<alloy::primitives::U256> {
        Ok(self.provider.raw_request("evm_snapshot".into(), ()).await?)
    }

    /// `evm_revert` to a snapshot: the chain goes back to that block.
    pub(crate) async fn revert(&self, id: alloy::primitives::U256) -> eyre::Result<()> {
        let reverted: bool = self
            .provider
            .raw_request("evm_revert".into(), (id,))
            .await?;
        eyre::ensure!(reverted, "evm_revert({id}) refused");
        Ok(())
    }

    /// Mines `blocks` empty blocks.
    pub(crate) async fn mine(&self, blocks: u64) -> eyre::Result<()> {
        for _ in 0..blocks {
            let _: serde_json::Value = self.provider.raw_request("evm_mine".into(), ()).await?;
        }
        Ok(())
    }

    /// Anvil's own JSON-RPC URL.
    pub(crate) fn anvil_url(&self) -> String {
        self.anvil.endpoint()
    }

    /// Restarts the node where it was (same port), with its chain but without its transaction
    /// pool, as a node restart loses it: `anvil_dumpState`, kill, a new Anvil, `anvil_loadState`.
    pub(crate) async fn restart(&mut self) -> eyre::Result<()> {
        let state: serde_json::Value = self
            .provider
            .raw_request("anvil_dumpState".into(), ())
            .await?;
        let port = self.anvil.port();
        // The old node must be gone before the new one can bind its port.
        self.anvil.child_mut().kill()?;
        self.anvil.child_mut().wait()?;
        self.anvil = pactum_devnet::spawn_anvil_at(port, &[])?;
        // The first request may go out on a pooled connection to the old node and fail.
        let mut tries = 0;
        loop {
            match self
                .provider
                .raw_request::<_, bool>("anvil_loadState".into(), (&state,))
                .await
            {
                Ok(loaded) => {
                    eyre::ensure!(loaded, "anvil_loadState refused the dump");
                    return Ok(());
                }
                Err(err) if tries < 10 && err.is_transport_error() => tries += 1,
                Err(err) => return Err(err.into()),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The head block number.
    pub(crate) async fn head(&self) -> eyre::Result<u64> {
        Ok(self.provider.get_block_number().await?)
    }
}

impl Chain {
    /// Registers agent `agent_id` of `owner_id` in `db` acting from `signer`'s wallet, with the
    /// wallet's proof signed by `signer` (a key, or a key its ERC-1271 wallet accepts), through
    /// the service `POST /agents` uses.
    pub(crate) async fn register_agent<S: alloy::signers::Signer + Sync>(
        &self,
        db: &pactum_db::Db,
        owner_id: &str,
        agent_id: &str,
        signer: &S,
    ) -> eyre::Result<()> {
        use pactum_api::identity::{self, ContractWallets, Deployment, NewAgent};
        let deployment = Deployment {
            chain_id: self.deployment.chain_id,
            escrow: self.deployment.escrow,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let deadline = now + 600;
        let wallet = signer.address();
        let digest =
            identity::registration_digest(deployment, owner_id, agent_id, wallet, deadline);
        let signature = signer.sign_hash(&digest).await?;
        identity::register_agent(
            db,
            deployment,
            ContractWallets::Node(&self.provider),
            &NewAgent {
                owner_id,
                agent_id,
                name: agent_id,
                wallet,
                signature: &signature.as_bytes(),
                deadline,
            },
            now,
        )
        .await
        .map_err(|p| eyre::eyre!("registering {agent_id}: {p:?}"))
    }
}
