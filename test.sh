#!/usr/bin/env bash
# Runs every test of caplab, as CI does: installs what the tests need when it is missing
# (Debian packages), checks formatting and lints, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
ensure_test_deps

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --all-targets --locked
