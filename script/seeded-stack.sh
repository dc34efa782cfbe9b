#!/usr/bin/env bash
# Sourced by the scripts that test a running stack (script/schemathesis.sh, script/dashboard.sh):
# `start_seeded_stack <dir> <database>` builds pactum, starts an Anvil and `pactum serve` of their
# own on free ports over a fresh database, and seeds it with `pactum demo`: an owner (st-owner)
# with a buyer and a seller agent (st-buyer, st-seller), the buyer's policy (approval above $200),
# agreements settled, rejected and decided by approval, webhook endpoints with deliveries, and
# receipts. It sets `pactum`, `dir`, `db`, `rpc_url`, `api` and `owner_token`, and stops what it
# started when the calling script exits.

sql() { psql "$PACTUM_PG_URL/$db" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_seeded_stack() {
  dir="$1"
  db="$2"
  cargo build --locked --quiet --bin pactum
  pactum="$PACTUM_ROOT/target/debug/pactum"

  rm -rf "$dir"
  mkdir -p "$dir"
  chain_port="$(free_port)"
  api_port="$(free_port)"
  rpc_url="http://127.0.0.1:$chain_port"
  api="http://127.0.0.1:$api_port"
  pids=()
  # Stops what was started, the services first; what ignores SIGTERM for 5 s is killed.
  cleanup() {
    local pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      pid="${pids[i]}"
      kill "$pid" 2>/dev/null || continue
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    done
  }
  trap cleanup EXIT

  anvil --host 127.0.0.1 --port "$chain_port" >"$dir/anvil.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do cast chain-id --rpc-url "$rpc_url" >/dev/null 2>&1 && break; sleep 0.1; done

  PGOPTIONS="-c client_min_messages=warning" psql "$PACTUM_PG_URL/postgres" -qX -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null

  "$pactum" deploy --rpc-url "$rpc_url" --config-out "$dir/pactum.toml" \
    --database-url "$PACTUM_PG_URL/$db" --listen "127.0.0.1:$api_port" >"$dir/deploy.log"
  RUST_LOG=warn "$pactum" serve --config "$dir/pactum.toml" >"$dir/serve.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do curl -fsS "$api/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$api/health" >/dev/null || { echo "pactum serve did not start; see $dir/serve.log" >&2; exit 1; }

  admin() { "$pactum" admin --config "$dir/pactum.toml" "$@"; }
  admin create-owner --id st-owner --name "Stack owner" --email st@pactum.local >/dev/null
  owner_token="$(admin token --owner st-owner --ttl 3600)"
  log "seeding the stack with pactum demo (log: $dir/demo.log)"
  PACTUM_OWNER_TOKEN="$owner_token" "$pactum" demo --rpc-url "$rpc_url" --config "$dir/pactum.toml" \
    --api-url "$api" --owner st-owner --buyer-agent st-buyer --seller-agent st-seller \
    --receipts-out "$dir/receipts" >"$dir/demo.log" 2>&1 \
    || { tail -20 "$dir/demo.log" >&2; exit 1; }
}
