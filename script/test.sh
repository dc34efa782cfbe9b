#!/usr/bin/env bash
# Runs every test: contracts (forge: unit, fuzz, invariant), the gas benchmark against its committed
# snapshot, slither, and the Rust workspace (format, lints, unit and end-to-end tests on Anvil).
# This is the README's test command; .ci/run calls it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

"$PACTUM_ROOT/script/setup.sh"

log "slither (accepted findings are annotated in place; see docs/slither-triage.md)"
# Runs first: it cleans and rebuilds forge's out/ without the tests.
slither . --config-file slither.config.json

log "forge fmt --check"
forge fmt --check contracts tests/forge

log "forge build"
forge build

log "forge test (unit, fuzz, invariant)"
forge test --no-match-contract GasBenchmark

log "gas benchmark (isolated transactions) against snapshots/escrow.json"
# Each measured call runs as its own transaction; any change in gas fails the check. After an
# intended change, refresh with: forge test --match-contract GasBenchmark --isolate
forge test --match-contract GasBenchmark --isolate --gas-snapshot-check=true

log "PostgreSQL (started if absent) and the committed .sqlx/ query metadata"
bash script/postgres.sh
bash script/sqlx-prepare.sh --check

log "cargo fmt --check, clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (unit, and end-to-end on Anvil and PostgreSQL)"
cargo test --workspace --locked

log "all tests passed"
