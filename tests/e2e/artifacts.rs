//! The bytecode the bindings deploy is the bytecode forge tested and benchmarked.

use std::path::PathBuf;

use alloy::primitives::Bytes;
use pactum_bindings::{AgreementEscrow, InfraFeeCollector};

/// `kind` (`bytecode` or `deployedBytecode`) of `contract` from the artifact `forge build` wrote
/// for source `file` (e.g. test mocks the Rust bindings do not cover).
pub(crate) fn forge_bytecode(file: &str, contract: &str, kind: &str) -> eyre::Result<Bytes> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../out")
        .join(file)
        .join(format!("{contract}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        eyre::eyre!(
            "cannot read {} ({e}); run `forge build` first (script/test.sh does)",
            path.display()
        )
    })?;
    let artifact: serde_json::Value = serde_json::from_str(&text)?;
    let object = artifact[kind]["object"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("{} has no {kind}", path.display()))?;
    Ok(object.parse()?)
}

fn forge_deployed_bytecode(file: &str, contract: &str) -> eyre::Result<Bytes> {
    forge_bytecode(file, contract, "deployedBytecode")
}

#[test]
fn bindings_deploy_the_bytecode_forge_tested() -> eyre::Result<()> {
    assert_eq!(
        forge_deployed_bytecode("AgreementEscrow.sol", "AgreementEscrow")?,
        AgreementEscrow::DEPLOYED_BYTECODE,
        "foundry.toml and crates/bindings/build.rs compile the escrow differently"
    );
    assert_eq!(
        forge_deployed_bytecode("InfraFeeCollector.sol", "InfraFeeCollector")?,
        InfraFeeCollector::DEPLOYED_BYTECODE,
        "foundry.toml and crates/bindings/build.rs compile the fee collector differently"
    );
    Ok(())
}
