#!/usr/bin/env bash
# Installs everything pactum needs, project-locally and pinned, from the package registries only:
#   - anvil, forge, cast 1.7.1, solc-js 0.8.30, OpenZeppelin Contracts 5.7.0 (npm; tools/package-lock.json)
#   - slither, standardwebhooks, schemathesis and halmos (PyPI, into .venv; every package pinned in tools/requirements.txt)
# Nothing is installed outside the project folder. Idempotent: a second run only checks stamps.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required (part of the machine image)" >&2; exit 1; }; }
need npm
need python3
need cargo

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

node_hash=$(sha256sum tools/package-lock.json | cut -d' ' -f1)
if ! stamp_ok tools/node_modules/.pactum-stamp "$node_hash"; then
  log "installing node tools (foundry 1.7.1, solc-js, OpenZeppelin) into tools/node_modules"
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  echo "$node_hash" > tools/node_modules/.pactum-stamp
fi

py_hash=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
if ! stamp_ok .venv/.pactum-stamp "$py_hash"; then
  log "installing slither, standardwebhooks, schemathesis and halmos into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
  echo "$py_hash" > .venv/.pactum-stamp
fi

# Fail early, with the reason, if a binary does not run on this machine.
forge --version | grep -q '1.7.1' || { echo "setup: forge 1.7.1 expected, got: $(forge --version | head -1)" >&2; exit 1; }
solc --version | grep -q '0.8.30' || { echo "setup: the solc wrapper does not report 0.8.30" >&2; exit 1; }
echo "setup: toolchain ready (forge $(forge --version | head -1 | awk '{print $3}'), solc 0.8.30, slither $(slither --version))"
