#!/usr/bin/env bash
# Sets everything up and runs pactum locally:
#   1. installs the toolchain and builds;
#   2. starts PostgreSQL and Anvil (127.0.0.1:8545) if nothing answers there;
#   3. deploys the contracts and writes .run/pactum.toml;
#   4. starts the indexer, the relayer, a webhook worker, the receipt issuer and the API in one
#      process (`pactum serve`, http://127.0.0.1:8080);
#   5. registers a demo owner, its buyer and seller agents and their API keys;
#   6. drives agreements through the API's lifecycle endpoints only: each is proposed by the
#      buyer, accepted by the seller, activated with the buyer's signed package (the relayer
#      submits it), used (three usage records with the buyer's vouchers) and settled, one by the
#      parties' own wallet calls and one through the sponsored endpoints (the relayer submits and
#      pays); a third is rejected by the seller. Each step prints its HTTP call and status;
#   7. prints the webhook deliveries the demo's receiver got (signatures checked) and the
#      receipts of the buyer's agreements (verified by the API), then verifies each receipt
#      against the node with `pactum receipts verify`.
# Anvil, PostgreSQL and `pactum serve` keep running afterwards (logs and pids in .run/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

"$PACTUM_ROOT/script/setup.sh"

log "building pactum"
cargo build --locked --bin pactum
pactum="$PACTUM_ROOT/target/debug/pactum"

bash script/postgres.sh
db="pactum_local"
log "fresh database $db"
PGOPTIONS="-c client_min_messages=warning" psql "$PACTUM_PG_URL/postgres" -qX -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null

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

log "deploying the contracts"
"$pactum" deploy --rpc-url "$rpc_url" --config-out .run/pactum.toml \
  --database-url "$PACTUM_PG_URL/$db" --listen 127.0.0.1:8080

if [[ -f .run/serve.pid ]] && kill -0 "$(cat .run/serve.pid)" 2>/dev/null; then
  log "stopping the previous pactum serve"
  kill "$(cat .run/serve.pid)" && sleep 0.5
fi
log "starting the indexer, the relayer and the API (pactum serve; log: .run/serve.log, pid: .run/serve.pid)"
RUST_LOG="${RUST_LOG:-info}" nohup "$pactum" serve --config .run/pactum.toml >.run/serve.log 2>&1 &
echo $! >.run/serve.pid
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS http://127.0.0.1:8080/health >/dev/null || { echo "pactum serve did not start; see .run/serve.log" >&2; exit 1; }

log "the demo owner (local stack: made with pactum admin, signed in with an HS256 JWT)"
admin() { "$pactum" admin --config .run/pactum.toml "$@"; }
admin create-owner --id demo-owner --name "Demo owner" --email demo@pactum.local
owner_token="$(admin token --owner demo-owner --ttl 3600)"

log "pactum demo"
# The owner registers its agents through the API (each wallet signs its registration), issues
# their keys and sets the buyer's policy; the agreements then run through the lifecycle.
rm -rf .run/receipts
PACTUM_OWNER_TOKEN="$owner_token" "$pactum" demo --rpc-url "$rpc_url" --config .run/pactum.toml \
  --api-url http://127.0.0.1:8080 --buyer-agent demo-buyer --seller-agent demo-seller \
  --receipts-out .run/receipts

log "the receipts, verified against the node by the CLI (trusting neither the API nor its database)"
# The signer's address as the operator publishes it (here: read once from the API).
# The signer's address and the deployment's escrow, as the operator publishes them (here: read
# once from the API).
published="$(curl -fsS -H "Authorization: Bearer $owner_token" http://127.0.0.1:8080/receipts/signer)"
signer="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["address"])' "$published")"
escrow="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["verifying_contract"])' "$published")"
for receipt in .run/receipts/*.json; do
  "$pactum" receipts verify "$receipt" --rpc-url "$rpc_url" --signer "$signer" --escrow "$escrow" \
    --confirmations 1
done

echo
echo "Still running: Anvil at $rpc_url, the pactum API at http://127.0.0.1:8080 (try /openapi.json, /metrics)."
echo "The owner dashboard: http://127.0.0.1:8080/dashboard, signed in with the demo owner's token:"
echo "  target/debug/pactum admin --config .run/pactum.toml token --owner demo-owner --ttl 3600"
echo "Stop them with: kill \$(cat .run/serve.pid) \$(cat .run/anvil.pid)"
