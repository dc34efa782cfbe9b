use alloy::{
    contract::{CallBuilder, CallDecoder},
    primitives::{Address, TxHash},
    providers::Provider,
    rpc::types::TransactionReceipt,
};
use pactum_bindings::{
    AgreementEscrow, InfraFeeCollector, LocalSanctionsOracle, LocalUSDC, eip712,
    sign::ActivationContext,
};

use crate::{Error, Result};

/// One deployed contract, with the transaction that created it.
#[derive(Debug, Clone)]
pub struct DeployedContract {
    /// Contract name.
    pub name: &'static str,
    /// Where it lives.
    pub address: Address,
    /// The creating transaction.
    pub tx_hash: TxHash,
    /// Gas the creation used.
    pub gas_used: u64,
}

/// pactum's contract set on one chain.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The chain id.
    pub chain_id: u64,
    /// The USDC stand-in.
    pub token: Address,
    /// The sanctions-oracle stand-in.
    pub sanctions_oracle: Address,
    /// The infra-fee collector.
    pub fee_collector: Address,
    /// The escrow.
    pub escrow: Address,
    /// The block of the first deployment transaction (where an indexer starts).
    pub start_block: u64,
    /// Every contract created, in order.
    pub contracts: Vec<DeployedContract>,
}

impl Deployment {
    /// The environment that points a `pactum` process at this deployment on the node at
    /// `rpc_url` and at the database at `db_url`, with the local token trusted and used for
    /// new usage agreements (the process tests and benchmarks add their own tuning).
    pub fn process_env(&self, rpc_url: &str, db_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("PACTUM_DATABASE_URL", db_url.to_owned()),
            ("PACTUM_CHAIN_RPC_URL", rpc_url.to_owned()),
            ("PACTUM_CHAIN_ID", self.chain_id.to_string()),
            ("PACTUM_CHAIN_ESCROW", self.escrow.to_string()),
            ("PACTUM_CHAIN_FEE_COLLECTOR", self.fee_collector.to_string()),
            ("PACTUM_CHAIN_START_BLOCK", self.start_block.to_string()),
            ("PACTUM_CHAIN_TOKENS", self.token.to_string()),
            ("PACTUM_AGREEMENTS_TOKEN", self.token.to_string()),
        ]
    }

    /// What a buyer signs its activation package against (the local token has USDC's domain).
    pub fn activation_context(&self) -> ActivationContext {
        ActivationContext {
            chain_id: self.chain_id,
            escrow: self.escrow,
            fee_collector: self.fee_collector,
            token_domain_name: eip712::USDC_DOMAIN_NAME,
            token_domain_version: eip712::USDC_DOMAIN_VERSION,
        }
    }
}

/// The tests' usual deployment on a development chain: dev account 0 ([`crate::dev_signer`])
/// deploys and administers the fee collector, dev account 4 is the treasury, and each of
/// `funded` is minted its amount of the token. `provider` must sign for dev account 0.
pub async fn deploy_funded<P: Provider>(
    provider: &P,
    funded: &[(Address, alloy::primitives::U256)],
) -> Result<Deployment> {
    let deployer = crate::dev_signer(0).address();
    let d = deploy(provider, deployer, deployer, crate::dev_signer(4).address()).await?;
    for (to, amount) in funded {
        confirm(
            LocalUSDC::new(d.token, provider)
                .mint(*to, *amount)
                .from(deployer),
        )
        .await?;
    }
    Ok(d)
}

/// Deploys the local token and oracle stand-ins, the fee collector, and the escrow bound to it.
///
/// The fee collector must know the escrow's address and the escrow verifies, in its constructor,
/// that the collector is bound to it: the escrow's address is predicted from `deployer`'s nonce
/// (the collector is created at nonce `n`, the escrow at `n + 1`); should anything else send from
/// `deployer` in between, the escrow's constructor reverts with `FeeCollectorNotBound`. `deployer` owns the stand-ins
/// (it can mint and manage the block/sanctions lists); `fee_admin` owns the fee collector.
pub async fn deploy<P: Provider>(
    provider: &P,
    deployer: Address,
    fee_admin: Address,
    treasury: Address,
) -> Result<Deployment> {
    let chain_id = provider.get_chain_id().await?;
    let mut contracts = Vec::with_capacity(4);

    let token = created(
        "LocalUSDC",
        LocalUSDC::deploy_builder(provider, deployer).from(deployer),
    )
    .await?;
    let start_block = token.1;
    contracts.push(token.0);
    let oracle = created(
        "LocalSanctionsOracle",
        LocalSanctionsOracle::deploy_builder(provider, deployer).from(deployer),
    )
    .await?;
    contracts.push(oracle.0);

    let nonce = provider.get_transaction_count(deployer).await?;
    let predicted_escrow = deployer.create(nonce + 1);
    let collector = created(
        "InfraFeeCollector",
        InfraFeeCollector::deploy_builder(provider, predicted_escrow, fee_admin, treasury)
            .from(deployer),
    )
    .await?;
    contracts.push(collector.0);
    let escrow = created(
        "AgreementEscrow",
        AgreementEscrow::deploy_builder(provider, contracts[1].address, contracts[2].address)
            .from(deployer),
    )
    .await?;
    contracts.push(escrow.0);

    Ok(Deployment {
        chain_id,
        token: contracts[0].address,
        sanctions_oracle: contracts[1].address,
        fee_collector: contracts[2].address,
        escrow: contracts[3].address,
        start_block,
        contracts,
    })
}

/// Sends a creation transaction and returns the contract and the block it landed in.
async fn created<P: Provider, D: CallDecoder>(
    name: &'static str,
    builder: CallBuilder<P, D>,
) -> Result<(DeployedContract, u64)> {
    let receipt = confirm(builder).await?;
    let address = receipt
        .contract_address
        .ok_or(Error::NoContractAddress(name))?;
    tracing::debug!(contract = name, %address, tx = %receipt.transaction_hash, "deployed");
    Ok((
        DeployedContract {
            name,
            address,
            tx_hash: receipt.transaction_hash,
            gas_used: receipt.gas_used,
        },
        receipt.block_number.unwrap_or_default(),
    ))
}

/// How long to wait for a receipt before giving up (a local chain mines at once).
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends a transaction and waits (bounded) for a successful receipt.
pub async fn confirm<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
) -> Result<TransactionReceipt> {
    let receipt = call
        .send()
        .await?
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(Error::Reverted(receipt.transaction_hash));
    }
    Ok(receipt)
}
