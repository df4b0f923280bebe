#!/usr/bin/env bash
# The libFuzzer targets of fuzz/ (node input, ingest request validation, store frames and
# recovery, the harness's reading of node output), each for FUZZ_SECONDS (default 30) from its
# checked-in seed corpus. A crash fails the script; the input is left in fuzz/artifacts/<target>/.
# cargo-fuzz needs a nightly toolchain: without one the script says SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED fuzzing: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build
for target in $targets; do
  echo "==> fuzz $target for ${seconds}s"
  # A scratch corpus seeded from the checked-in one, so a run does not add files to the repo.
  work="$(mktemp -d)"
  cp "fuzz/corpus/$target"/seed-* "$work/"
  cargo +nightly fuzz run "$target" "$work" -- -max_total_time="$seconds" -max_len=4096
  rm -rf "$work"
done
