# Sourced by the other scripts: puts the project-local toolchain first on PATH.
# shellcheck shell=bash
PACTUM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PACTUM_ROOT
for tool in anvil forge cast; do
  PATH="$PACTUM_ROOT/tools/node_modules/@foundry-rs/$tool-linux-amd64/bin:$PATH"
done
PATH="$PACTUM_ROOT/tools/bin:$PACTUM_ROOT/.venv/bin:$PATH"
export PATH
export PACTUM_ANVIL="$PACTUM_ROOT/tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
# forge's own update nag and telemetry would try the network.
export FOUNDRY_DISABLE_NIGHTLY_WARNING=1
log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# PostgreSQL for the indexer, the API and their tests (see script/postgres.sh).
export PACTUM_PG_URL="${PACTUM_PG_URL:-postgres://postgres@127.0.0.1:5432}"
