#!/usr/bin/env bash
# Issue 16 (ingest security): the tests that need more than `cargo test`'s defaults.
# - tests/ingest_process.rs uses `prlimit` (util-linux) for descriptor exhaustion.
# - tests/ingest_python.rs runs the grpcio client over TLS with a token; it takes the venv from
#   SLUICEGATE_INGEST_PYTHON (set by .ci/run) or creates one itself.
set -euo pipefail

if ! command -v prlimit >/dev/null; then
    apt-get update -qq && apt-get install -y -qq util-linux
fi
cargo test --test ingest_tls --test ingest_process --test ingest_python --test ingest_server \
    --test ingest_flood
