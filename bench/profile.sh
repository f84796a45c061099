#!/usr/bin/env bash
# Where does each implementation spend per accepted connection?
#
#   bash bench/profile.sh strace    [impls]   syscalls per connection, per thread (strace -f)
#   bash bench/profile.sh callgrind [impls]   user-space instructions per connection, per thread
#   bash bench/profile.sh perf      [impls]   perf record of the server while it serves; report paths
#   bash bench/profile.sh cpu       [impls]   user and system CPU of the server per connection (/proc/PID/stat)
#   bash bench/profile.sh gc        [impls]   V8 scavenges and heap growth per connection (node --trace-gc)
#   bash bench/profile.sh stat      [impls]   perf stat software events per connection, ROUNDS alternating rounds
#
# impls: a comma-separated list of net, rust, exp, bun, deno (default net,rust).
# exp is rust-net from $RUST_NET_EXP_DIR (a scratch copy with an experiment);
# bun and deno run the same server on their own node:net (strace only), with
# the binaries bench/run.js uses (scripts/node-binaries.js peerFor; BENCH_BUN,
# BENCH_DENO override).
# PLACEMENT=runtime|event-loop|auto: rust-net's accept placement, passed to the
# server as RUST_NET_ACCEPT_PLACEMENT (unset by default: the automatic choice).
# NODE=<major|path>: run the servers on that Node (a major is fetched as
# test:matrix fetches it, scripts/node-binaries.js); default: node on PATH.
# PIN=1: the no-spare-core regime of bench/run.js — the server under
# `taskset -c ${SERVER_CPU:-0}`, the load generator under `taskset -c ${LOAD_CPU:-1}`.
# Every load is bounded (--max connections, --duration seconds) and every
# server is stopped at the end. Output goes to bench/out/profile/.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-strace}
IFS=, read -r -a impls <<< "${2:-net,rust}"
L=bench/loadgen/target/release/loadgen
OUT=bench/out/profile
PORT=17440
mkdir -p "$OUT"
[ -x "$L" ] || (cd bench/loadgen && cargo build --release --quiet)

if [ -n "${PLACEMENT:-}" ]; then export RUST_NET_ACCEPT_PLACEMENT=$PLACEMENT; else unset RUST_NET_ACCEPT_PLACEMENT; fi
SRV_PIN=() LG_PIN=()
if [ "${PIN:-0}" = 1 ]; then
  SRV_PIN=(taskset -c "${SERVER_CPU:-0}") LG_PIN=(taskset -c "${LOAD_CPU:-1}")
fi
NODE_BIN=node
case "${NODE:-}" in
  '') ;;
  *[!0-9]*) NODE_BIN=$NODE ;;
  *) NODE_BIN=$(node -e "console.log(require('./scripts/node-binaries').nodeFor($NODE))" | tail -n 1) ;;
esac
echo "profile: servers on $("$NODE_BIN" --version) ($NODE_BIN)"
lg() { "${LG_PIN[@]}" "$L" "$@"; }   # the load generator, pinned when PIN=1
completed() { grep -o '"completed":[0-9]*' "$1" | cut -d: -f2; }   # connections a load generator run served

need() { command -v "$1" >/dev/null || { echo "profile: $1 is not installed: apt-get install ${2:-$1}"; exit 1; }; }

start_server() { # impl mode -> sets SP
  BENCH_SERVER_SECONDS=${SECS:-60} "${SRV_PIN[@]}" "$@" &
  SP=$!
  for _ in $(seq 100); do
    if lg churn --port $PORT --concurrency 1 --max 1 --duration 1 2>/dev/null | grep -q '"completed":1'; then return; fi
    sleep 0.2
  done
  echo "profile: server did not start"; kill $SP; exit 1
}

trap '[ -n "${SP:-}" ] && kill "$SP" 2>/dev/null || true' EXIT

stop_server() { kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; }

# The server command of `impl` for bench/server.js in `mode`: sets SRV.
server_cmd() {
  case "$1" in
  bun|deno)
    local var="BENCH_${1^^}" bin
    bin=${!var:-$(node -e "const r = require('./scripts/node-binaries').peerFor('$1'); if (r.why) { console.error(r.why); process.exit(1) } console.log(r.bin)")}
    if [ "$1" = bun ]; then SRV=("$bin" bench/server.js net "$2" $PORT)
    else SRV=("$bin" run -A --no-lock --unstable-detect-cjs bench/server.js net "$2" $PORT); fi ;;
  *) SRV=("$NODE_BIN" bench/server.js "$1" "$2" $PORT) ;;
  esac
}

N=${N:-3000}
CONC=${CONC:-32}

case "$what" in
strace)
  need strace
  for impl in "${impls[@]}"; do
    rm -f "$OUT/strace.$impl".*
    server_cmd "$impl" serve
    start_server "${SRV[@]}"
    lg churn --port $PORT --concurrency 32 --duration 0.5 >/dev/null
    pids=$(ls /proc/$SP/task | sed 's/^/-p /' | tr '\n' ' ')
    # shellcheck disable=SC2086
    strace -qq -ff -o "$OUT/strace.$impl" $pids 2>/dev/null & ST=$!
    sleep 1
    lg churn --port $PORT --concurrency "$CONC" --max "$N" --duration 60 > "$OUT/strace.$impl.load.json"
    sleep 0.5; kill $ST; wait $ST 2>/dev/null || true
    stop_server
    done_n=$(completed "$OUT/strace.$impl.load.json")
    echo "== $impl: syscalls per accepted connection ($done_n connections, concurrency $CONC), by thread"
    for f in "$OUT/strace.$impl".[0-9]*; do
      tid=${f##*.}
      lines=$(wc -l < "$f")
      [ "$lines" -lt 50 ] && continue
      comm=$(cat /proc/$tid/comm 2>/dev/null || echo "thread $tid")
      echo "-- ${comm} (tid $tid)"
      sed -E 's/^([a-z0-9_]+)\(.*/\1/; /resumed>/d; /^\+\+\+|^---/d' "$f" | sort | uniq -c | sort -rn |
        awk -v n="$done_n" '{ printf "   %-16s %6.2f\n", $2, $1 / n; t += $1 } END { printf "   %-16s %6.2f\n", "total", t / n }'
    done
  done
  ;;
callgrind)
  need valgrind
  for impl in "${impls[@]}"; do
    rm -f "$OUT/callgrind.$impl".*
    SECS=600 start_server valgrind -q --tool=callgrind --separate-threads=yes --instr-atstart=no \
      --callgrind-out-file="$OUT/callgrind.$impl.%p" "$NODE_BIN" bench/server.js "$impl" serve $PORT
    lg churn --port $PORT --concurrency 8 --max 300 --duration 120 >/dev/null
    callgrind_control -i on $SP >/dev/null 2>&1
    lg churn --port $PORT --concurrency "${CONC_CG:-8}" --max "${N:-1000}" --duration 120 > "$OUT/callgrind.$impl.load.json"
    callgrind_control -d $SP >/dev/null 2>&1
    stop_server
    done_n=$(completed "$OUT/callgrind.$impl.load.json")
    echo "== $impl: user-space instructions per accepted connection ($done_n connections), by thread"
    for f in "$OUT/callgrind.$impl".*-[0-9]*; do
      ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
      [ -z "$ir" ] && ir=$(grep -m1 '^totals:' "$f" | awk '{print $2}')
      [ -z "$ir" ] || [ "$ir" -lt 1000000 ] && continue
      echo "   $(basename "$f"): $(awk -v i="$ir" -v n="$done_n" 'BEGIN { printf "%.0f", i / n }') Ir/conn"
    done
  done
  ;;
perf)
  need perf linux-perf
  for impl in "${impls[@]}"; do
    start_server "$NODE_BIN" --perf-basic-prof --logfile="$OUT/v8.log" --no-logfile-per-isolate bench/server.js "$impl" serve $PORT
    lg churn --port $PORT --concurrency 32 --duration 1 >/dev/null
    perf record -q -e cpu-clock -F 4000 -g -p "$SP" -o "$OUT/perf.$impl.data" -- sleep 2.6 2>/dev/null & PP=$!
    sleep 0.3
    lg churn --port $PORT --concurrency "$CONC" --duration 2 > "$OUT/perf.$impl.load.json"
    wait $PP || true
    stop_server
    echo "== $impl: $(grep -o '"completed":[0-9]*' "$OUT/perf.$impl.load.json"); perf report -i $OUT/perf.$impl.data --children --sort sym"
    perf report -i "$OUT/perf.$impl.data" --sort comm,dso -g none -q 2>/dev/null | grep -v '^$' | head -8
  done
  ;;
cpu)
  # utime and stime (fields 14, 15, in 10 ms ticks) over N connections.
  N=${CONNS:-30000}
  for impl in "${impls[@]}"; do
    server_cmd "$impl" serve
    start_server "${SRV[@]}"
    lg churn --port $PORT --concurrency 32 --duration 1 >/dev/null
    read -r u0 s0 < <(awk '{ print $14, $15 }' /proc/$SP/stat)
    lg churn --port $PORT --concurrency "$CONC" --max "$N" --duration 60 > "$OUT/cpu.$impl.load.json"
    read -r u1 s1 < <(awk '{ print $14, $15 }' /proc/$SP/stat)
    stop_server
    done_n=$(completed "$OUT/cpu.$impl.load.json")
    rate=$(grep -o '"rate":[0-9.]*' "$OUT/cpu.$impl.load.json" | cut -d: -f2)
    awk -v i="$impl" -v n="$done_n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v r="$rate" \
      'BEGIN { printf "== %s: %d connections at concurrency %s, %.0f conn/s: user %.1f µs, system %.1f µs per connection\n", i, n, '"$CONC"', r, u * 1e4 / n, s * 1e4 / n }'
  done
  ;;
gc)
  N=${CONNS:-30000}
  for impl in "${impls[@]}"; do
    SECS=120 start_server "$NODE_BIN" --trace-gc bench/server.js "$impl" serve $PORT > "$OUT/gc.$impl.log"
    lg churn --port $PORT --concurrency 32 --duration 1 >/dev/null
    before=$(grep -cE 'Scavenge|Mark-Compact' "$OUT/gc.$impl.log" || true)
    lg churn --port $PORT --concurrency "$CONC" --max "$N" --duration 60 > "$OUT/gc.$impl.load.json"
    sleep 0.2
    after=$(grep -cE 'Scavenge|Mark-Compact' "$OUT/gc.$impl.log" || true)
    stop_server
    # Bytes allocated between collections: each one's heap size before minus
    # the previous one's after (the heap only grows by allocation between).
    freed=$(grep -E 'Scavenge|Mark-Compact' "$OUT/gc.$impl.log" |
      sed -E 's/.* ([0-9.]+) \(([0-9.]+)\) -> ([0-9.]+) \(([0-9.]+)\) MB.*/\1 \3/' |
      tail -n +"$((before))" | awk 'NR > 1 { t += $1 - prev } { prev = $2 } END { print t + 0 }')
    done_n=$(completed "$OUT/gc.$impl.load.json")
    awk -v i="$impl" -v n="$done_n" -v c=$((after - before)) -v f="$freed" \
      'BEGIN { printf "== %s: %d connections: %d collections (%.2f per 1,000 connections), %.0f bytes allocated per connection\n", i, n, c, c * 1000 / n, f * 1048576 / n }'
  done
  ;;
stat)
  # task-clock and context switches of every server thread over a 3 s load,
  # the implementations alternating for ROUNDS rounds: the spread of one
  # implementation between rounds is the noise any single ratio carries.
  need perf linux-perf
  for round in $(seq "${ROUNDS:-4}"); do
    for impl in "${impls[@]}"; do
      server_cmd "$impl" serve
      start_server "${SRV[@]}"
      lg churn --port $PORT --concurrency "$CONC" --duration 1 >/dev/null
      perf stat --per-thread -e task-clock,context-switches -p "$SP" -o "$OUT/stat.$impl.$round.txt" & PP=$!
      sleep 0.3
      lg churn --port $PORT --concurrency "$CONC" --duration 3 > "$OUT/stat.$impl.load.json"
      kill -INT $PP; wait $PP || true
      stop_server
      done_n=$(completed "$OUT/stat.$impl.load.json")
      awk -v i="$impl" -v r="$round" -v n="$done_n" '
        { gsub(",", "", $2) }
        /task-clock/ { v = $2 + 0; all += v; if (v > main) main = v }
        /context-switches/ { cs += $2 }
        END { printf "== %s round %d: %d connections, %.1f µs CPU and %.2f context switches per connection; busiest thread %.0f ms, the others %.0f ms\n", i, r, n, all * 1000 / n, cs / n, main, all - main }' \
        "$OUT/stat.$impl.$round.txt"
    done
  done
  ;;
*)
  echo "usage: bash bench/profile.sh strace|callgrind|perf|cpu|gc|stat [net,rust,exp,bun,deno]"; exit 2 ;;
esac
