#!/usr/bin/env bash
# A fresh crate that depends on sluicegate with default-features = false, as a user of the
# library alone would: it must build from at most 20 crates, with no build script work, and run
# the example of the README (and of src/lib.rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/core-dependent"
rm -rf "$dir"
mkdir -p "$dir/src"
cat >"$dir/Cargo.toml" <<TOML
[package]
name = "core-dependent"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
sluicegate = { path = "$root", default-features = false }
futures = "0.3"
tokio = { version = "1", features = ["rt", "macros"] }

[workspace]
TOML
# The README's example, taken from it so that the two cannot drift apart: the first rust block.
awk '/^```rust$/ { inside = 1; next } inside && /^```$/ { exit } inside { print }' "$root/README.md" >"$dir/src/main.rs"
[ -s "$dir/src/main.rs" ] || { echo "no rust example found in README.md"; exit 1; }
cd "$dir"
# The lock file of the project pins the shared crates to the versions CI already built.
cp "$root/Cargo.lock" Cargo.lock
cargo run --quiet
crates=$(cargo tree -e normal --prefix none -p sluicegate | sed 's/ (.*//; s/ v[0-9].*//' | sort -u | grep -c .)
echo "crates under sluicegate in a dependent project: $crates"
[ "$crates" -le 20 ]
