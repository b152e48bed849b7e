#!/usr/bin/env bash
# Benchmark of the embedded proxy's data path: redis-benchmark GET/SET at 32 connections
# straight against a redis-server, through `caplab proxy` with no toxic (byte counters on, the
# default), and through a second `caplab proxy --proxy-metrics=false`, in the same run,
# alternating. Prints throughput ratio and added p50/p99 per test, then what the byte
# counters cost (proxy with counters against proxy without).
#
#   scripts/bench-proxy.sh                 # defaults: 200000 requests, 32 clients, 3 rounds
#   REQUESTS=500000 ROUNDS=5 scripts/bench-proxy.sh
#
# Targets (BENCHMARKS.md): added p50 < 100 us, throughput >= 60% of direct. A GET row at one
# connection is added: the proxy's own per-hop latency, free of queueing.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-32}
ROUNDS=${ROUNDS:-3}
PAYLOAD=${PAYLOAD:-64}

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found; sudo apt-get install -y redis-server redis-tools" >&2; exit 2; }
done

echo "== building the release binary" >&2
cargo build --release --quiet
CAPLAB=target/release/caplab

# A free loopback port: nothing answers on it.
free_port() {
  local p
  while :; do
    p=$(( (RANDOM << 1 | RANDOM & 1) % 20000 + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_ping() {
  for _ in $(seq 1 100); do
    if redis-cli -p "$1" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "error: nothing answers PING on port $1" >&2; exit 2
}

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$WORK" --logfile "$WORK/redis.log" &
PIDS+=($!)
wait_ping "$REDIS_PORT"

declare -A PORT PID
start_proxy() { # name extra-flags...; sets PORT[name] (its proxy's listen port) and PID[name]
  local name=$1; shift
  local api
  PORT[$name]=$(free_port); api=$(free_port)
  cat >"$WORK/$name.json" <<JSON
[{"name": "bench", "listen": "127.0.0.1:${PORT[$name]}", "upstream": "127.0.0.1:$REDIS_PORT"}]
JSON
  LOG_LEVEL=warn "$CAPLAB" proxy --port "$api" --config "$WORK/$name.json" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PID[$name]=$!
  PIDS+=($!)
}
start_proxy proxy
start_proxy bare --proxy-metrics=false
PORT[direct]=$REDIS_PORT
wait_ping "${PORT[proxy]}"
wait_ping "${PORT[bare]}"

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))

# One redis-benchmark run; per test a line: mode round test req/s p50 p99 cpu-us-per-request
# (the proxy's CPU over the whole run, both tests, divided by their requests; 0 for direct).
run() { # mode round clients requests tests
  local mode=$1 before=0 after=0 cpu=0 tests
  tests=$(tr ',' '\n' <<<"$5" | wc -l)
  [ "$mode" != direct ] && before=$(cpu_ticks "${PID[$mode]}")
  redis-benchmark -p "${PORT[$mode]}" -t "$5" -n "$4" -c "$3" -d "$PAYLOAD" --csv 2>/dev/null \
    | tail -n +2 | tr -d '"' >"$WORK/run.csv"
  if [ "$mode" != direct ]; then
    after=$(cpu_ticks "${PID[$mode]}")
    cpu=$(awk -v t="$((after - before))" -v us="$TICK_US" -v n="$(( $4 * tests ))" 'BEGIN {printf "%.2f", t*us/n}')
  fi
  awk -F, -v mode="$mode" -v round="$2" -v c="$3" -v cpu="$cpu" '{print mode, round, $1 "@" c, $2, $5, $7, cpu}' "$WORK/run.csv"
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
echo "== redis-benchmark -t set,get -n $REQUESTS -c $CLIENTS -d $PAYLOAD, $ROUNDS rounds, direct, through the proxy and through the proxy without counters, alternately" >&2
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  # The two proxies swap places each round, so neither always runs right after the other.
  if (( round % 2 )); then order="proxy bare"; else order="bare proxy"; fi
  run direct "$round" "$CLIENTS" "$REQUESTS" set,get | tee -a "$WORK/results" >&2
  for m in $order; do
    run "$m" "$round" "$CLIENTS" "$REQUESTS" set,get | tee -a "$WORK/results" >&2
  done
  # One connection: the latency the proxy adds per hop, without queueing behind other clients.
  run direct "$round" 1 20000 get | tee -a "$WORK/results" >&2
  for m in $order; do
    run "$m" "$round" 1 20000 get | tee -a "$WORK/results" >&2
  done
done

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# Median of each figure per mode and test, then the comparison.
echo
echo "| test | direct req/s | proxy req/s | proxy/direct | direct p50 | proxy p50 | added p50 | direct p99 | proxy p99 | added p99 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in "SET@$CLIENTS" "GET@$CLIENTS" GET@1; do
  med() { # mode column
    awk -v m="$1" -v t="$t" -v c="$2" '$1==m && $3==t {print $c}' "$WORK/results" | sort -g \
      | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
  }
  d_rps=$(med direct 4); p_rps=$(med proxy 4)
  d_50=$(med direct 5); p_50=$(med proxy 5)
  d_99=$(med direct 6); p_99=$(med proxy 6)
  awk -v t="$t" -v dr="$d_rps" -v pr="$p_rps" -v d5="$d_50" -v p5="$p_50" -v d9="$d_99" -v p9="$p_99" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.0f%% | %.0f us | %.0f us | %+.0f us | %.0f us | %.0f us | %+.0f us |\n",
      t, dr, pr, 100*pr/dr, d5*1000, p5*1000, (p5-d5)*1000, d9*1000, p9*1000, (p9-d9)*1000 }'
done

# What the byte counters cost: the proxy with them against the one without, same run.
echo
echo "| test | proxy without counters req/s | with counters req/s | with/without | p50 without | p50 with | p99 without | p99 with | proxy CPU per request without | with |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for t in "SET@$CLIENTS" "GET@$CLIENTS" GET@1; do
  med() { # mode column
    awk -v m="$1" -v t="$t" -v c="$2" '$1==m && $3==t {print $c}' "$WORK/results" | sort -g \
      | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
  }
  awk -v t="$t" -v br="$(med bare 4)" -v pr="$(med proxy 4)" -v b5="$(med bare 5)" -v p5="$(med proxy 5)" \
    -v b9="$(med bare 6)" -v p9="$(med proxy 6)" -v bc="$(med bare 7)" -v pc="$(med proxy 7)" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.1f%% | %.0f us | %.0f us | %.0f us | %.0f us | %.2f us | %.2f us |\n",
      t, br, pr, 100*pr/br, b5*1000, p5*1000, b9*1000, p9*1000, bc, pc }'
done
