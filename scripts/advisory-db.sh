#!/usr/bin/env bash
# The RustSec advisory database cargo-deny checks against (advisories/README.md).
#
#   . scripts/advisory-db.sh; advisory_db_dir   prints a directory holding a database: one
#                                               already on this machine, else the vendored snapshot
#                                               unpacked into ~/.cache/caplab/advisory-dbs
#   scripts/advisory-db.sh refresh              rewrites advisories/rustsec-advisory-db.tar.gz
#                                               from GitHub (needs GitHub)

advisory_db_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
advisory_db_url="https://github.com/rustsec/advisory-db"
# cargo-deny's directory name for that URL (under db-path).
advisory_db_name="advisory-db-3157b0e258782691"

advisory_db_dir() {
  local own="${CAPLAB_ADVISORY_DB:-${CARGO_HOME:-$HOME/.cargo}/advisory-dbs}"
  if compgen -G "$own/*/crates" >/dev/null; then
    echo "$own"
    return
  fi
  local archive="$advisory_db_root/advisories/rustsec-advisory-db.tar.gz"
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/caplab/advisory-dbs"
  local stamp
  stamp="$(sha256sum "$archive" | cut -c1-16)"
  if [ ! -f "$cache/$advisory_db_name/.caplab-$stamp" ]; then
    rm -rf "$cache/$advisory_db_name"
    mkdir -p "$cache/$advisory_db_name"
    tar xzf "$archive" -C "$cache/$advisory_db_name"
    # cargo-deny reads the database's date from its HEAD commit: one commit, dated as the
    # snapshot (advisories/README.md).
    local date
    date="$(sed -n 's/.*at commit `[0-9a-f]*` (\([0-9-]*\)).*/\1/p' "$advisory_db_root/advisories/README.md")"
    (
      cd "$cache/$advisory_db_name" &&
        git init -q &&
        git add -A &&
        GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
          git -c user.name=caplab -c user.email=caplab@localhost commit -q -m "RustSec advisory-db snapshot $date"
    ) >&2
    touch "$cache/$advisory_db_name/.caplab-$stamp"
  fi
  echo "$cache"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    refresh)
      tmp="$(mktemp -d)"
      trap 'rm -rf "$tmp"' EXIT
      git clone -q --depth 1 "$advisory_db_url" "$tmp/db"
      commit="$(git -C "$tmp/db" rev-parse HEAD)"
      git -C "$tmp/db" archive --format=tar HEAD | gzip -n -9 \
        >"$advisory_db_root/advisories/rustsec-advisory-db.tar.gz"
      echo "advisory-db $commit of $(git -C "$tmp/db" show -s --format=%cs HEAD): update advisories/README.md"
      ;;
    *)
      echo "usage: scripts/advisory-db.sh refresh   (or source it and call advisory_db_dir)" >&2
      exit 2
      ;;
  esac
fi
