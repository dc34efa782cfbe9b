#!/usr/bin/env bash
# Regenerates `.sqlx/`, the offline metadata of every checked query (sqlx `query!` macros), by
# compiling the crates that hold queries against a scratch database migrated from
# crates/db/migrations. With --check, fails if the committed `.sqlx/` differs (CI runs this).
# Needs only PostgreSQL (script/postgres.sh) and cargo: it uses the macros' own SQLX_OFFLINE_DIR
# output instead of sqlx-cli.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

mode="${1:-write}"
db="pactum_sqlx_prepare"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

export PGOPTIONS="-c client_min_messages=warning"
psql "$PACTUM_PG_URL/postgres" -qX -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
for migration in crates/db/migrations/*.sql; do
  psql "$PACTUM_PG_URL/$db" -qX -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done

# Touch the query crates so their macros expand again, online, writing into $out.
touch crates/db/src/lib.rs
SQLX_OFFLINE=false DATABASE_URL="$PACTUM_PG_URL/$db" SQLX_OFFLINE_DIR="$out" \
  cargo check --quiet -p pactum-db --all-targets --all-features
touch crates/db/src/lib.rs
psql "$PACTUM_PG_URL/postgres" -qX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null

if [[ "$mode" == "--check" ]]; then
  if ! diff -r "$out" .sqlx >/dev/null 2>&1; then
    diff -r "$out" .sqlx || true
    echo "error: .sqlx/ is out of date; run script/sqlx-prepare.sh and commit the result" >&2
    exit 1
  fi
  echo ".sqlx/ is up to date ($(ls "$out" | wc -l) queries)"
else
  rm -rf .sqlx && mkdir .sqlx && cp "$out"/*.json .sqlx/ 2>/dev/null || true
  echo "wrote .sqlx/ ($(ls .sqlx | wc -l) queries)"
fi
