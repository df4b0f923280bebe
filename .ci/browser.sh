#!/usr/bin/env bash
# The debugging views in a real browser (issue 18): installs Debian's chromium and runs
# tests/views_browser.rs, which builds a store with a valid and an invalid run, serves it with
# `sluicegate serve` and checks what headless Chromium renders. Screenshots are left in
# target/tmp/views-browser/ (test artifacts, not in the repo).
set -euo pipefail

if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq chromium >/dev/null
    else
        echo "SKIPPED: no /usr/bin/chromium and no apt-get to install it"
        exit 0
    fi
fi
/usr/bin/chromium --version

cargo test --test views_browser -- --nocapture
ls -l target/tmp/views-browser/
