#!/usr/bin/env bash
# Runs `cargo test --all-targets --locked` over every target (no fail-fast), then runs each test
# that failed once more, alone. The suite drives real redis-server, Sentinel, proxy and browser
# processes on a shared two-core machine, where a few timings belong to the environment rather
# than to caplab (a sentinel that misses one reply within its 1 s down-after fails over a
# second time; a child process another test thread is spawning holds a copy of a socket for a
# moment). A test that fails both times fails the run; a test that fails once and then passes is
# listed as FLAKY at the end, with its first failure above in the log, and the run passes.
# Sourced by test.sh; uses only bash, grep and awk.

run_tests() {
  local log
  log="$(mktemp)"
  if cargo test --all-targets --locked --no-fail-fast 2>&1 | tee "$log"; then
    rm -f "$log"
    return 0
  fi
  # Which targets failed, as cargo names them at the end (`--test lab_up`, `--lib`, ...).
  local targets
  targets="$(grep -oE '`--(lib|bins|bin [A-Za-z0-9_-]+|test [A-Za-z0-9_-]+|bench [A-Za-z0-9_-]+|example [A-Za-z0-9_-]+)`' "$log" | tr -d '`' | sort -u || true)"
  if [ -z "$targets" ]; then
    echo "cargo test failed before any test target ran (see above)" >&2
    rm -f "$log"
    return 1
  fi
  # Which tests failed in each target: "target<TAB>test name", from the "Running" line that
  # opens each target's output and its "test NAME ... FAILED" lines.
  local failed
  failed="$(awk '
    /^     Running / {
      path = $2 == "unittests" ? $3 : $2
      if (path == "src/lib.rs") { target = "--lib"; next }
      if (path == "src/main.rs") { target = "--bin caplab"; next }
      split(path, parts, "/"); name = parts[2]; sub(/\.rs$/, "", name)
      kind = parts[1] == "tests" ? "--test" : (parts[1] == "benches" ? "--bench" : "--example")
      target = kind " " name; next
    }
    /^test .* \.\.\. FAILED$/ { line = $0; sub(/^test /, "", line); sub(/ \.\.\. FAILED$/, "", line); print target "\t" line }
  ' "$log")"
  rm -f "$log"

  local flaky=() target names status=0
  while IFS= read -r target; do
    [ -n "$target" ] || continue
    # The names failed in this target; none found (a custom harness, a crash) means all of it.
    names="$(printf '%s\n' "$failed" | awk -F '\t' -v t="$target" '$1 == t { print $2 }')"
    echo
    echo "== once more, alone: $target ${names:+(}$(printf '%s' "$names" | tr '\n' ' ')${names:+)}"
    local args=()
    # shellcheck disable=SC2206 # the target is two words by design (`--test lab_up`)
    local target_args=($target)
    if [ -n "$names" ]; then
      args=(-- --exact)
      while IFS= read -r name; do args+=("$name"); done <<<"$names"
    fi
    if cargo test --locked "${target_args[@]}" "${args[@]}"; then
      if [ -n "$names" ]; then
        while IFS= read -r name; do flaky+=("$target $name"); done <<<"$names"
      else
        flaky+=("$target (whole target)")
      fi
    else
      echo "FAILED twice: $target $names" >&2
      status=1
    fi
  done <<<"$targets"

  if [ "${#flaky[@]}" -gt 0 ]; then
    echo
    echo "FLAKY (failed once, passed when run again alone; the first failure is above):"
    printf '  %s\n' "${flaky[@]}"
  fi
  return "$status"
}
