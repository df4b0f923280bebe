#!/usr/bin/env bash
# The ingest crash loop in a release build: one load of 200 000 records, the server killed with
# SIGKILL at 20 seeded random points and restarted on the same directory; every acked id must be
# stored exactly once and `verify` clean. Also the flipped-byte and torn-tail recovery tests.
# Three seeds, so that CI sees other kill points than the default test run (seed 17).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
cargo build --release --quiet --tests --bin sluicegate
for seed in 17 2026 90210; do
  echo "crash loop, seed $seed"
  SLUICEGATE_CRASH_LOOP_SEED="$seed" \
    timeout 600 cargo test --release --quiet --test ingest_recovery -- --nocapture --test-threads 1
done
