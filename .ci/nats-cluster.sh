#!/usr/bin/env bash
# The JetStream cluster failover test: three nats-server -js clustered on loopback, the stream
# leader killed mid-load (tests/ingest_nats_cluster.rs, recipe in docs/jetstream-cluster.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nats-server >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nats-server >/dev/null
fi
nats-server --version
cargo test --release --test ingest_nats_cluster -- --nocapture
