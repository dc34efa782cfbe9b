#!/usr/bin/env bash
# Makes sure PostgreSQL answers at $PACTUM_PG_URL (default postgres://postgres@127.0.0.1:5432).
# In order: already running -> nothing to do; a project-local cluster in .run/pg -> start it; a
# Debian cluster installed but stopped -> start it;
# otherwise (installing the server from Debian's packages if it is missing) initdb a project-local
# cluster in .run/pg (trust auth, owned by the postgres user, since the server refuses to run as
# root) and start it on 127.0.0.1:5432. The server binaries are installed even when a server
# already answers: a test runs a private server of its own.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"

ready() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2 >/dev/null 2>&1; }
server_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true; }

install_server() {
  log "installing PostgreSQL's server binaries from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  # The package's own cluster (created just now: there were no binaries before) asks for
  # passwords on TCP; stop it. A trust-auth cluster of the project's own is used instead.
  for cluster in /etc/postgresql/*/main; do
    [[ -d "$cluster" ]] && pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$cluster")")" main stop 2>/dev/null || true
  done
}
can_install() { [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; }

if ready; then
  # The server binaries are needed even when a server already answers: the end-to-end tests
  # start a private server of their own to stop and restart it (crates/cli/tests/db_outage.rs).
  if [[ -z "$(server_bin)" ]] && can_install; then
    install_server
  fi
  exit 0
fi

data="$PACTUM_ROOT/.run/pg"
# A project-local cluster made by an earlier run wins over the Debian one (which, when this script
# installed the package, asks for passwords on TCP).
if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]] && [[ ! -f "$data/PG_VERSION" ]]; then
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  log "starting PostgreSQL $version (Debian cluster 'main')"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 0.5; done
fi

if [[ -z "$(server_bin)" ]] && can_install; then
  install_server
fi
bin="$(server_bin)"
if [[ -z "$bin" ]]; then
  echo "error: PostgreSQL is not running on 127.0.0.1:5432 and its server binaries could not be installed" >&2
  echo "       (Debian: apt-get install postgresql)" >&2
  exit 1
fi
mkdir -p "$PACTUM_ROOT/.run"
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [[ ! -f "$data/PG_VERSION" ]]; then
  log "initialising a project-local PostgreSQL cluster in .run/pg"
  mkdir -p "$data"
  [[ "$(id -u)" == 0 ]] && chown postgres "$data"
  as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null
fi
log "starting the project-local PostgreSQL (.run/pg)"
as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -o "-h 127.0.0.1 -p 5432 -k /tmp" start >/dev/null
for _ in $(seq 1 30); do ready && exit 0; sleep 0.5; done
echo "error: PostgreSQL did not come up; see .run/pg/server.log" >&2
exit 1
