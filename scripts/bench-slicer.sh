#!/usr/bin/env bash
# Benchmark of the `slicer` toxic's per-slice timing in `caplab proxy`: 2,000 bytes sent by an
# upstream that then closes, through a slicer with average_size 10, size_variation 0 and
# delay 2000 us (256 slices of 7-8 bytes, so 512 ms of delays before the close). Prints the
# time from connect to EOF, median over the runs, for this tree's release build and, with
# BASELINE=<git revision>, for that revision's build, alternating in the same run.
#
#   scripts/bench-slicer.sh                        # this tree only
#   BASELINE=main RUNS=15 scripts/bench-slicer.sh  # before/after, same run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-11}
ROUNDS=${ROUNDS:-3}

command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$WORK/baseline-tree" ]; then git worktree remove --force "$WORK/baseline-tree" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

BINS=()
if [ -n "${BASELINE:-}" ]; then
  echo "== building $BASELINE (release) as the baseline" >&2
  git worktree add --quiet --detach "$WORK/baseline-tree" "$BASELINE"
  # The same target directory: dependencies built once serve both builds.
  (cd "$WORK/baseline-tree" && CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet)
  cp target/release/caplab "$WORK/caplab-baseline"
  BINS+=("baseline:$WORK/caplab-baseline")
fi
echo "== building this tree (release)" >&2
cargo build --release --quiet
cp target/release/caplab "$WORK/caplab-current"
BINS+=("current:$WORK/caplab-current")

free_port() {
  local p
  while :; do
    p=$(( (RANDOM << 1 | RANDOM & 1) % 20000 + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

# Start every build's proxy API once.
declare -A API
for entry in "${BINS[@]}"; do
  name=${entry%%:*}; bin=${entry#*:}
  port=$(free_port)
  LOG_LEVEL=warn "$bin" proxy --port "$port" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  API[$name]="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
    || { echo "error: $name's proxy API does not answer:" >&2; cat "$WORK/$name.err" >&2; exit 2; }
done

# One measurement series against one proxy API: prints the median and the range in ms.
measure() { # api runs
  python3 - "$1" "$2" <<'PY'
import json, socket, statistics, sys, threading, time, urllib.request
api, runs = sys.argv[1], int(sys.argv[2])
payload = bytes(i % 251 for i in range(2000))
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
def serve():
    while True:
        c, _ = srv.accept(); c.sendall(payload); c.close()
threading.Thread(target=serve, daemon=True).start()
def call(method, path, body=None):
    req = urllib.request.Request(f"http://{api}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        return urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        if e.code != 404: raise
call("DELETE", "/proxies/slicer")
p = json.loads(call("POST", "/proxies", {"name": "slicer", "listen": "127.0.0.1:0",
                    "upstream": "127.0.0.1:%d" % srv.getsockname()[1]}))
host, port = p["listen"].rsplit(":", 1)
call("POST", "/proxies/slicer/toxics", {"type": "slicer", "attributes":
     {"average_size": 10, "size_variation": 0, "delay": 2000}})
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    s = socket.create_connection((host, int(port)))
    got = b""
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
    times.append((time.perf_counter() - t0) * 1000)
    s.close()
    assert got == payload, len(got)
print("%.0f %.0f %.0f" % (statistics.median(times), min(times), max(times)))
PY
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  for entry in "${BINS[@]}"; do
    name=${entry%%:*}
    r=$(measure "${API[$name]}" "$RUNS")
    echo "$name $round $r" | tee -a "$WORK/results" >&2
  done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo
echo "| build | median of $RUNS runs, per round (ms) | fastest | slowest | vs the 512 ms of delays |"
echo "|---|---|---|---|---|"
for entry in "${BINS[@]}"; do
  name=${entry%%:*}
  awk -v n="$name" '$1==n {med=med sep $3; sep=", "; if (min==""||$4<min) min=$4; if ($5>max) max=$5; s+=$3; k++}
    END {printf "| %s | %s | %d | %d | %+.0f ms a run (%.2f ms a slice) |\n", n, med, min, max, s/k-512, (s/k-512)/256}' "$WORK/results"
done
