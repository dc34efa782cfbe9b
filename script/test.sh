#!/usr/bin/env bash
# Runs the tests. This is the README's test command; .ci/run calls it with no argument.
#
#   script/test.sh            everything: contracts, Rust lints and unit tests, end-to-end tests
#   script/test.sh contracts  slither, forge fmt, forge unit/fuzz/invariant tests, gas snapshot
#   script/test.sh rust       cargo fmt, clippy, the .sqlx/ check, unit tests beside the code
#   script/test.sh e2e        the end-to-end tests on Anvil and PostgreSQL, then schemathesis
#                             over the API's OpenAPI document (script/schemathesis.sh) and the
#                             owner dashboard in headless Chromium (script/dashboard.sh)
#   script/test.sh <filter>   the Rust tests (unit and end-to-end) whose name contains <filter>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

stage="${1:-all}"

contracts() {
  log "slither (accepted findings are annotated in place; see docs/slither-triage.md)"
  # Runs first: it cleans and rebuilds forge's out/ without the tests. --disallow-partial: a
  # function slither cannot lift to its IR fails the run instead of going unanalysed.
  slither . --config-file slither.config.json --disallow-partial

  log "forge fmt --check"
  forge fmt --check contracts tests/forge tests/halmos

  log "forge build"
  forge build

  # FOUNDRY_PROFILE=ci (set by .ci/run) fuzzes at CI depth: 10,000 runs per property and
  # 512 x 128 invariant calls, about two minutes on two cores; the default is 512 and 128 x 64.
  log "forge test (unit, fuzz, invariant; profile ${FOUNDRY_PROFILE:-default})"
  local started=$SECONDS
  forge test --no-match-contract GasBenchmark
  echo "forge test took $((SECONDS - started)) s (profile ${FOUNDRY_PROFILE:-default})"

  # Symbolic checks (tests/halmos): proven for every input within the stated bounds
  # (docs/design.md, "What is proven"); built on their own profile and output.
  log "halmos (symbolic checks of the contracts)"
  FOUNDRY_PROFILE=halmos halmos --root . --forge-build-out out-halmos --function check_ \
    --loop 2 --solver-threads 1

  log "gas benchmark (isolated transactions) against snapshots/escrow.json"
  # Each measured call runs as its own transaction; any change in gas fails the check. After an
  # intended change, refresh with: forge test --match-contract GasBenchmark --isolate
  forge test --match-contract GasBenchmark --isolate --gas-snapshot-check=true
}

postgres() {
  log "PostgreSQL (started if absent)"
  bash script/postgres.sh
}

rust() {
  postgres
  log "the committed .sqlx/ query metadata"
  bash script/sqlx-prepare.sh --check

  log "cargo fmt --check, clippy"
  cargo fmt --all --check
  cargo clippy --workspace --all-targets --locked -- -D warnings

  log "cargo test: unit tests (and doc tests)"
  cargo test --workspace --locked --lib --bins
  cargo test --workspace --locked --doc
}

e2e() {
  postgres
  # Some tests deploy forge's own artifacts (to prove the bindings deploy the same bytecode).
  log "forge build (artifacts the end-to-end tests deploy)"
  forge build
  log "cargo test: end-to-end tests on Anvil and PostgreSQL"
  cargo test --workspace --locked --test '*'
  log "schemathesis: the API fuzzed from its OpenAPI document, with an agent key and an owner JWT"
  bash script/schemathesis.sh
  log "the owner dashboard in headless Chromium"
  bash script/dashboard.sh
}

"$PACTUM_ROOT/script/setup.sh"
case "$stage" in
  all)
    contracts
    rust
    e2e
    ;;
  contracts) contracts ;;
  rust) rust ;;
  e2e) e2e ;;
  -*)
    echo "usage: script/test.sh [all|contracts|rust|e2e|<test name filter>]" >&2
    exit 2
    ;;
  *)
    postgres
    forge build
    log "cargo test: tests matching '$stage'"
    cargo test --workspace --locked -- "$stage"
    ;;
esac

log "tests passed ($stage)"
