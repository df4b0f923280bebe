#!/usr/bin/env bash
# Gossip Glomers 4 and 5a-5c against our node, with the Fly.io command lines (maelstrom-kv-spec
# §5.1), in our harness: each must be valid (exit 0). Needs the harness's kv services and the
# g-counter / kafka workloads (issue 19, harness side). Then a sweep of challenge 4 with
# partitions on the virtual clock: every seed valid. The node's own tests (tests/node_counter.rs,
# tests/node_kafka.rs) run in the plain `cargo test` step.
set -euo pipefail
cargo build --release --bins
harness=target/release/sluicegate
node=target/release/sluicegate-node

echo "== challenge 4: g-counter, 3 nodes, partitions"
"$harness" test -w g-counter --bin "$node" --node-count 3 --rate 100 --time-limit 20 --nemesis partition
echo "== challenge 5a: kafka, 1 node"
"$harness" test -w kafka --bin "$node" --node-count 1 --concurrency 2n --time-limit 20 --rate 1000
echo "== challenge 5b/5c: kafka, 2 nodes"
"$harness" test -w kafka --bin "$node" --node-count 2 --concurrency 2n --time-limit 20 --rate 1000
echo "== challenge 4 on the virtual clock: 200 partition schedules"
"$harness" test -w g-counter --in-process --node-count 3 --rate 100 --time-limit 20 --nemesis partition --seeds 200
