#!/usr/bin/env bash
# The API fuzzed from its own OpenAPI document with schemathesis (pinned in
# tools/requirements.txt), against a scratch stack: its own Anvil, a fresh database and
# `pactum serve`, seeded by `pactum demo` (an owner, its agents with keys and policies, agreements
# settled, rejected and awaiting approval, webhook endpoints with deliveries, receipts).
# Schemathesis then runs twice over every operation: with an agent's API key and with the
# owner's JWT. Every check is on (no 5xx, answers and problem payloads as documented, required
# headers and credentials enforced, undocumented methods refused). Configuration:
# tools/schemathesis.toml; the seed is fixed there (override with PACTUM_ST_SEED=<n>), and a
# failure prints a curl command that replays it. Reports go to .run/schemathesis/.
# Part of script/test.sh (its e2e stage).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

st="$PACTUM_ROOT/.venv/bin/st"
[[ -x "$st" ]] || { echo "schemathesis is missing: run script/setup.sh" >&2; exit 1; }
source "$PACTUM_ROOT/script/seeded-stack.sh"
start_seeded_stack .run/schemathesis pactum_schemathesis

# Two keys of the buyer's agent: one the agent run uses, one the owner run may revoke.
new_key() {
  curl -fsS -X POST "$api/agents/st-buyer/api-keys" -H "Authorization: Bearer $owner_token" \
    -H "Idempotency-Key: st-key-$1" -H "Content-Type: application/json" -d "{\"label\":\"$1\"}"
}
agent_key="$(new_key schemathesis | python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')"
export ST_SPARE_KEY_ID
ST_SPARE_KEY_ID="$(new_key spare | python3 -c 'import json, sys; print(json.load(sys.stdin)["key_id"])')"

# Real ids for the path parameters, so that the operations reach past their 404s.
export ST_AGENT_ID=st-buyer
export ST_AGREEMENT_ID ST_ONCHAIN_ID ST_RELAY_ID ST_WEBHOOK_ID ST_DELIVERY_ID ST_RECEIPT_ID ST_REQUEST_ID
ST_AGREEMENT_ID="$(sql "SELECT id FROM usage_agreements WHERE buyer_agent_id = 'st-buyer' AND onchain_id IS NOT NULL ORDER BY seq LIMIT 1")"
ST_ONCHAIN_ID="0x$(sql "SELECT encode(onchain_id, 'hex') FROM usage_agreements WHERE id = '$ST_AGREEMENT_ID'")"
ST_RELAY_ID="$(sql "SELECT id FROM relay_jobs ORDER BY created_at LIMIT 1")"
ST_WEBHOOK_ID="$(sql "SELECT id FROM webhook_endpoints WHERE agent_id = 'st-buyer' ORDER BY seq LIMIT 1")"
ST_DELIVERY_ID="$(sql "SELECT id FROM webhook_deliveries WHERE agent_id = 'st-buyer' ORDER BY seq LIMIT 1")"
ST_RECEIPT_ID="$(sql "SELECT id FROM receipts ORDER BY seq LIMIT 1")"
ST_REQUEST_ID="$(sql "SELECT id FROM approval_requests ORDER BY seq LIMIT 1")"
for v in ST_AGREEMENT_ID ST_ONCHAIN_ID ST_RELAY_ID ST_WEBHOOK_ID ST_DELIVERY_ID ST_RECEIPT_ID ST_REQUEST_ID; do
  [[ -n "${!v}" && "${!v}" != "0x" ]] || { echo "the demo left no row for $v" >&2; exit 1; }
done

export ST_BASE_URL="$api"
seed=()
[[ -n "${PACTUM_ST_SEED:-}" ]] && seed=(--seed "$PACTUM_ST_SEED")
status=0
# The agent first: the owner's run may revoke keys and delete endpoints.
for who in agent owner; do
  if [[ "$who" == agent ]]; then export ST_TOKEN="$agent_key"; else export ST_TOKEN="$owner_token"; fi
  log "schemathesis with the $who's credentials (report: $dir/$who)"
  ST_REPORT_DIR="$dir/$who" "$st" --config-file tools/schemathesis.toml run "$api/openapi.json" \
    "${seed[@]}" || status=1
done
exit "$status"
