#!/usr/bin/env bash
# Soak benchmark: a long mixed load on both apps of a private local lab, their resident memory
# sampled every 5 s. Prints, per app, the RSS after warm-up, its minimum, maximum and last value
# and the scenario runner's own summary. Everything it starts is stopped (lab down by pid).
#
#   scripts/soak.sh                      # 10 minutes, 500 ops/s per app, target/release/caplab
#   SOAK_DURATION=2m SOAK_RATE=1000 CAPLAB_BIN=target/release/caplab scripts/soak.sh
#
# Loopback only. Results: $SOAK_OUT (default: a temporary directory), rss.csv and the run's
# reports in run/.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${CAPLAB_BIN:-target/release/caplab}"
duration="${SOAK_DURATION:-10m}"
rate="${SOAK_RATE:-500}"
out="${SOAK_OUT:-$(mktemp -d /tmp/caplab-soak.XXXXXX)}"
mkdir -p "$out"
[ -x "$bin" ] || { echo "no caplab binary at $bin (cargo build --release)"; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cp=$(free_port); ap=$(free_port); api=$(free_port)
lab="$out/lab"
"$bin" lab up --dir "$lab" --cp-port "$cp" --ap-port "$ap" --proxy-api-port "$api" \
  --redis-g1-port "$(free_port)" --redis-g2-port "$(free_port)" \
  --proxy-g1-port "$(free_port)" --proxy-g2-port "$(free_port)" \
  --cluster-g1-port "$(free_port)" --cluster-g2-port "$(free_port)" \
  --sentinels-port "$(free_port)" --s1-port "$(free_port)" --s2-port "$(free_port)" \
  --s3-port "$(free_port)" --console-addr off >"$out/lab-up.txt"
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  "$bin" lab down --dir "$lab" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cat >"$out/soak.toml" <<EOF
name = "soak"
description = "Soak: mixed reads and writes on CP and AP at once, with sessions, for a long time."
targets = ["cp", "ap"]

[workload]
rate = $rate
duration = "$duration"
read_ratio = 0.7
keys = 2000
clients = 32
session_clients = 4
value_size = 64
seed = 7
timeout = "2s"
final_reads = false

[[phase]]
name = "soak"
at = "0s"

[[threshold]]
target = "ap"
metric = "availability"
min = 0.0
lesson = "measurement only"
EOF

pid_of() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(p["pid"] for p in r["processes"] if p["name"]==sys.argv[2]))' "$lab/lab.json" "$1"
}
cp_pid=$(pid_of app_cp); ap_pid=$(pid_of app_ap)
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
(
  echo "seconds,app_cp_rss_kib,app_ap_rss_kib"
  start=$(date +%s)
  while true; do
    echo "$(( $(date +%s) - start )),$(rss "$cp_pid"),$(rss "$ap_pid")"
    sleep 5
  done
) >"$out/rss.csv" &
sampler=$!

"$bin" scenario run "$out/soak.toml" --cp "http://127.0.0.1:$cp" --ap "http://127.0.0.1:$ap" \
  --toxiproxy "127.0.0.1:$api" --out "$out/run" >"$out/run.txt" 2>&1 || true
kill "$sampler" 2>/dev/null || true
sampler=""

python3 - "$out/rss.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for app in ("app_cp", "app_ap"):
    vals = [(int(r["seconds"]), int(r[f"{app}_rss_kib"])) for r in rows if int(r[f"{app}_rss_kib"]) > 0]
    if not vals:
        print(f"{app}: no samples"); continue
    warm = [v for s, v in vals if s >= 30] or [v for _, v in vals]
    half = len(warm) // 2
    first, second = warm[:half] or warm, warm[half:] or warm
    mean = lambda xs: sum(xs) / len(xs)
    print(f"{app}: samples={len(vals)} start={vals[0][1]/1024:.1f}MiB after-warmup={warm[0]/1024:.1f}MiB "
          f"min={min(warm)/1024:.1f}MiB max={max(warm)/1024:.1f}MiB last={warm[-1]/1024:.1f}MiB "
          f"mean-first-half={mean(first)/1024:.1f}MiB mean-second-half={mean(second)/1024:.1f}MiB")
EOF
grep -E "^(cp|ap)|sent|achieved|dropped|late" "$out/run.txt" | head -20 || true
echo "results in $out"
