use std::path::PathBuf;

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    signers::local::PrivateKeySigner,
};

use crate::{Error, Result};

/// The private keys of Anvil's default development accounts (from its public test mnemonic
/// "test test test test test test test test test test test junk"). Development chains only.
pub const DEV_PRIVATE_KEYS: [&str; 6] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
];

/// The signer of Anvil development account `index` (0..6).
///
/// # Panics
/// If `index` is out of range: the keys are constants, so that is a programming error.
pub fn dev_signer(index: usize) -> PrivateKeySigner {
    #[allow(clippy::expect_used)]
    DEV_PRIVATE_KEYS[index]
        .parse()
        .expect("development keys are valid constants")
}

/// The project-local anvil binary: `$PACTUM_ANVIL` if set, else the one `script/setup.sh`
/// installs under `tools/node_modules`.
pub fn anvil_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PACTUM_ANVIL") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// A loopback TCP port free at the time of asking (for a process the caller is about to start).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Spawns a throw-away Anvil on a free port; it is killed when the instance is dropped.
pub fn spawn_anvil() -> Result<AnvilInstance> {
    spawn_anvil_with(&[])
}

/// [`spawn_anvil`] with extra command-line arguments (e.g. `--block-time`, `--gas-limit`).
pub fn spawn_anvil_with(args: &[&str]) -> Result<AnvilInstance> {
    spawn(None, args)
}

/// [`spawn_anvil_with`] on a given port: a node brought back where its clients expect it.
pub fn spawn_anvil_at(port: u16, args: &[&str]) -> Result<AnvilInstance> {
    spawn(Some(port), args)
}

fn spawn(port: Option<u16>, args: &[&str]) -> Result<AnvilInstance> {
    let binary = anvil_binary();
    if !binary.exists() {
        return Err(Error::AnvilNotFound(binary));
    }
    let mut anvil = Anvil::new().path(binary).args(args.iter().copied());
    if let Some(port) = port {
        anvil = anvil.port(port);
    }
    Ok(anvil.try_spawn()?)
}

/// An HTTP provider signing with `wallet`, for development chains and tests.
///
/// Nonces are read from the node for every transaction (not cached): a call that fails gas
/// estimation must not consume a nonce, or the next transaction would wait forever behind the
/// gap. (The relayer keeps its nonces in PostgreSQL instead; this is for local use only.)
pub fn connect(
    url: alloy::transports::http::reqwest::Url,
    wallet: alloy::network::EthereumWallet,
) -> alloy::providers::DynProvider {
    use alloy::providers::{Provider, ProviderBuilder};
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(wallet)
        .connect_http(url)
        .erased()
}
