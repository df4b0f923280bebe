#!/usr/bin/env bash
# The g-counter and kafka workloads against the Python fixture nodes (tests/harness_kv.rs):
# the #[ignore]d long fixtures. The runs mostly wait on the nodes, so many
# run at once. A debug build is enough: the Python nodes set the pace. Needs only python3
# (stdlib), which CI has.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 0; }
# The services' unit tests, the checker vectors and the quick fixtures run in `cargo test`; these
# are the #[ignore]d long ones.
echo "==> fixture nodes G1-G5, V1-V4, K1-K10, KV1-KV5: the long ones"
cargo test --test harness_kv -- --ignored --test-threads=12
