#!/usr/bin/env bash
# The lab console's cost: CPU of the console process (and of the two apps) with no page open,
# with 10 pages open (10 SSE clients reading /events), and with none again, in one run against
# one lab; plus how many /metrics requests app_cp answered in each phase (one poll per tick,
# whatever the number of pages). The built-in traffic (client loops inside the console
# process) runs throughout unless TRAFFIC=off, so the charts move.
#
#   PHASE_S=20 scripts/bench-console.sh              (release build of caplab)
#   TRAFFIC=off PHASE_S=20 scripts/bench-console.sh  (the console's own loops off: polling only)
#   BIN=/path/to/caplab scripts/bench-console.sh      (that binary, not built here: to compare
#                                                      two builds in one session, alternating)
#
# CPU is utime+stime from /proc/<pid>/stat over the phase, as a percentage of one core.
set -euo pipefail
cd "$(dirname "$0")/.."
PHASE_S=${PHASE_S:-20}
CLIENTS=${CLIENTS:-10}
TRAFFIC=${TRAFFIC:-on}
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release --locked --bin caplab >/dev/null
  bin=target/release/caplab
fi
out=$(mktemp -d)
lab="$out/lab"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=()
for flag in --redis-g1-port --redis-g2-port --s1-port --s2-port --s3-port --proxy-g1-port \
  --proxy-g2-port --cluster-g1-port --cluster-g2-port --sentinels-port --cp-port --ap-port \
  --proxy-api-port; do
  ports+=("$flag" "$(free_port)")
done
console_port=$(free_port)
url="http://127.0.0.1:$console_port"
"$bin" lab up --dir "$lab" --console-addr "127.0.0.1:$console_port" "${ports[@]}" >"$out/up.txt"
clients=()
cleanup() {
  for c in "${clients[@]}"; do kill "$c" 2>/dev/null || true; done
  "$bin" lab down --dir "$lab" >/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

pid_of() { python3 -c "import json,sys; print(next(p['pid'] for p in json.load(open('$lab/lab.json'))['processes'] if p['name']=='$1'))"; }
console=$(pid_of console); cp=$(pid_of app_cp); ap=$(pid_of app_ap)
cp_url="http://127.0.0.1:$(python3 -c "import json; print(json.load(open('$lab/lab.json'))['ports']['app_cp'])")"
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
metrics_polls() {
  curl -s "$cp_url/metrics" | awk '/^app_requests_total\{/ && /operation="metrics"/ {s+=$NF} END {print s+0}'
}
if [ "$TRAFFIC" = on ]; then
  curl -s -X POST -H 'Content-Type: application/json' -d '{"on": true}' "$url/api/traffic" >/dev/null
fi
sleep 3

phase() {
  local name=$1
  local c0 a0 b0 m0 c1 a1 b1 m1
  c0=$(ticks "$console"); a0=$(ticks "$cp"); b0=$(ticks "$ap"); m0=$(metrics_polls)
  sleep "$PHASE_S"
  c1=$(ticks "$console"); a1=$(ticks "$cp"); b1=$(ticks "$ap"); m1=$(metrics_polls)
  python3 - "$name" "$c0" "$c1" "$a0" "$a1" "$b0" "$b1" "$m0" "$m1" "$hz" "$PHASE_S" <<'EOF'
import sys
name, c0, c1, a0, a1, b0, b1, m0, m1, hz, s = sys.argv[1:]
hz, s = float(hz), float(s)
pct = lambda a, b: (float(b) - float(a)) / hz / s * 100
polls = (float(m1) - float(m0) - 1) / s
print(f"| {name} | {pct(c0, c1):.2f} % | {pct(a0, a1):.2f} % | {pct(b0, b1):.2f} % | {polls:.2f} |")
EOF
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); ${PHASE_S} s per phase; traffic $TRAFFIC"
echo "| phase | console CPU | app_cp CPU | app_ap CPU | app_cp /metrics requests/s |"
echo "|---|---|---|---|---|"
phase "no page open"
for _ in $(seq "$CLIENTS"); do
  curl -sN "$url/events" >/dev/null &
  clients+=($!)
done
sleep 2
phase "$CLIENTS pages open"
for c in "${clients[@]}"; do kill "$c" 2>/dev/null || true; done
clients=()
sleep 2
phase "no page open (again)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
