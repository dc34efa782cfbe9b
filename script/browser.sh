#!/usr/bin/env bash
# Chromium and its WebDriver for the dashboard's browser test: Debian's packages (chromium,
# chromium-driver), installed if absent (as root, with apt-get), as script/postgres.sh does for
# PostgreSQL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: chromium and chromedriver are required (Debian: apt-get install chromium chromium-driver)" >&2
  exit 1
fi
log "installing chromium and chromium-driver (Debian packages)"
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
install || { apt-get update -q >/dev/null && install; }
