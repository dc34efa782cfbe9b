#!/usr/bin/env bash
# Runs the benchmark binaries (optimised build) and prints their tables: the indexer (backfill of
# 100,000+ events, write path, head lag), the status API under load from a second process, and the
# relayer (throughput next to a plain send loop, accept latency, gas per sponsored action), and
# webhook delivery (throughput, event-committed-to-delivered latency), and several `pactum serve`
# processes over one PostgreSQL (lifecycle throughput with one and three, index writer failover).
# Not part of script/test.sh: benchmarks measure, tests assert.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$PACTUM_ROOT"
"$PACTUM_ROOT/script/setup.sh"
bash script/postgres.sh
log "forge build (the benchmark's load driver)"
forge build
log "building the benchmarks and pactum (release)"
cargo build --locked --release -p pactum-bench -p pactum
log "indexer benchmark"
target/release/bench-indexer
log "status API benchmark"
target/release/bench-api
log "relayer benchmark"
target/release/bench-relayer
log "webhook delivery benchmark"
target/release/bench-webhooks
log "replicas benchmark (one and three pactum serve processes over one PostgreSQL; index writer failover)"
target/release/bench-replicas
