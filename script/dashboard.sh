#!/usr/bin/env bash
# The owner dashboard (/dashboard) in a real browser: Debian's Chromium and chromedriver
# (script/browser.sh installs them if absent), driven over WebDriver by tests/browser/dashboard.py
# against a stack of its own seeded by `pactum demo` (script/seeded-stack.sh). With
# --screenshot <file> it also saves a picture of the signed-in page (docs/dashboard.png).
# Part of script/test.sh (its e2e stage).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

screenshot=""
if [[ "${1:-}" == "--screenshot" ]]; then
  screenshot="$(realpath -m "${2:?--screenshot needs a file}")"
fi

bash script/browser.sh
source "$PACTUM_ROOT/script/seeded-stack.sh"
start_seeded_stack .run/dashboard pactum_dashboard
"$pactum" admin --config "$dir/pactum.toml" create-owner --id other-owner --name "Other owner" \
  --email other@pactum.local >/dev/null
other_token="$("$pactum" admin --config "$dir/pactum.toml" token --owner other-owner --ttl 3600)"
PACTUM_ADMIN_WALLET_KEY="0x$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
  "$pactum" admin --config "$dir/pactum.toml" create-agent --id other-agent --owner other-owner \
  --name "Other agent" >/dev/null

log "the dashboard in headless Chromium (tests/browser/dashboard.py)"
PACTUM_API="$api" PACTUM_OWNER_TOKEN="$owner_token" PACTUM_OTHER_TOKEN="$other_token" \
  PACTUM_SCREENSHOT="$screenshot" python3 tests/browser/dashboard.py
