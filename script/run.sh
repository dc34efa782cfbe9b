#!/usr/bin/env bash
# Sets everything up and runs pactum locally: installs the toolchain, builds, starts Anvil on
# 127.0.0.1:8545 if nothing answers there, deploys the contracts and drives two demo agreements
# through their whole lifecycle (one with direct wallet calls, one through signed authorizations
# submitted by a gas-sponsoring relayer account). Anvil keeps running afterwards (see .run/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

"$PACTUM_ROOT/script/setup.sh"

log "building pactum"
cargo build --locked --bin pactum

rpc_url="${PACTUM_RPC_URL:-http://127.0.0.1:8545}"
mkdir -p .run
if cast chain-id --rpc-url "$rpc_url" >/dev/null 2>&1; then
  log "using the chain already answering at $rpc_url"
else
  log "starting anvil on $rpc_url (log: .run/anvil.log, pid: .run/anvil.pid)"
  port="${rpc_url##*:}"
  nohup anvil --host 127.0.0.1 --port "$port" >.run/anvil.log 2>&1 &
  echo $! >.run/anvil.pid
  for _ in $(seq 1 50); do
    cast chain-id --rpc-url "$rpc_url" >/dev/null 2>&1 && break
    sleep 0.1
  done
  cast chain-id --rpc-url "$rpc_url" >/dev/null 2>&1 || { echo "anvil did not start; see .run/anvil.log" >&2; exit 1; }
fi

log "pactum demo"
target/debug/pactum demo --rpc-url "$rpc_url"

echo
echo "Anvil is still running at $rpc_url (stop it with: kill \$(cat .run/anvil.pid))."
