#!/usr/bin/env bash
# The lab's main job in one command: installs redis-server if it is missing (Debian), builds
# caplab, and runs `caplab demo` (lab up, a partition against CP and AP side by side, lab down).
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=scripts/deps.sh
. scripts/deps.sh
ensure_demo_deps

cargo build --release --locked --bin caplab
exec ./target/release/caplab demo "$@"
