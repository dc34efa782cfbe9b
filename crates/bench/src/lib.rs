//! Shared pieces of the benchmark binaries: a local chain with pactum deployed and a load driver
//! that produces genuine escrow events in bulk, percentiles, and peak memory.

use std::path::Path;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    node_bindings::AnvilInstance,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol,
    sol_types::{SolCall, SolValue},
};
use eyre::{WrapErr, eyre};
use pactum_bindings::LocalUSDC;
use pactum_devnet::{Deployment, dev_signer};

sol! {
    /// tests/forge/bench/LoadDriver.sol
    function run(uint256 count, uint256 firstSalt, uint256 settle, uint256 used) external;
}

/// A chain with pactum and the load driver deployed.
#[derive(Debug)]
pub struct LoadChain {
    /// Keeps anvil alive.
    pub anvil: AnvilInstance,
    /// Provider signing as the deployer.
    pub provider: DynProvider,
    /// The contracts.
    pub deployment: Deployment,
    /// The load driver (the buyer of every generated agreement).
    pub driver: Address,
    salt: u64,
}

impl LoadChain {
    /// Spawns anvil with `args`, deploys pactum and the driver (from forge's `out/`, built by
    /// `forge build`), and funds the driver.
    pub async fn start(args: &[&str]) -> eyre::Result<Self> {
        let anvil = pactum_devnet::spawn_anvil_with(args)?;
        let deployer = dev_signer(0);
        let provider =
            pactum_devnet::connect(anvil.endpoint_url(), EthereumWallet::new(deployer.clone()));
        let deployment = pactum_devnet::deploy(
            &provider,
            deployer.address(),
            deployer.address(),
            dev_signer(4).address(),
        )
        .await?;

        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let artifact = root.join("out/LoadDriver.sol/LoadDriver.json");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&artifact).wrap_err_with(|| {
                format!("{} missing: run `forge build` first", artifact.display())
            })?)?;
        let code: Bytes = json["bytecode"]["object"]
            .as_str()
            .ok_or_else(|| eyre!("no bytecode in {}", artifact.display()))?
            .parse()?;
        let args = (
            deployment.escrow,
            deployment.token,
            deployment.fee_collector,
        )
            .abi_encode_params();
        let mut init = code.to_vec();
        init.extend(args);
        let tx = TransactionRequest::default()
            .with_from(deployer.address())
            .with_deploy_code(init);
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        let driver = receipt
            .contract_address
            .ok_or_else(|| eyre!("driver deployment failed"))?;
        let token = LocalUSDC::new(deployment.token, &provider);
        pactum_devnet::confirm(
            token
                .mint(driver, U256::from(10u64).pow(U256::from(15)))
                .from(deployer.address()),
        )
        .await?;
        Ok(Self {
            anvil,
            provider,
            deployment,
            driver,
            salt: 0,
        })
    }

    /// Drives `count` lifecycles in one transaction (`settle` of them to the end): 6 events per
    /// settled agreement, 2 per one left active. Sent without waiting when `wait` is false.
    pub async fn drive(&mut self, count: u64, settle: u64, wait: bool) -> eyre::Result<()> {
        let data = runCall {
            count: U256::from(count),
            firstSalt: U256::from(self.salt),
            settle: U256::from(settle),
            used: U256::from(4_000_000u64),
        }
        .abi_encode();
        self.salt += count;
        let tx = TransactionRequest::default()
            .with_from(dev_signer(0).address())
            .with_to(self.driver)
            .with_input(data)
            .with_gas_limit(count * 400_000 + 100_000);
        let pending = self.provider.send_transaction(tx).await?;
        if wait {
            let receipt = pending.get_receipt().await?;
            eyre::ensure!(receipt.status(), "driver transaction reverted");
        }
        Ok(())
    }
}

/// The `q`-quantile (0..=1) of `values` (sorted in place).
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak-memory mark (Linux `clear_refs` 5), so that a phase is measured on its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Thousands separators.
pub fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
