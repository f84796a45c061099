#!/bin/sh
# Starts (or replaces) examples/handover/server.js with no connection lost:
# run it once to start, then again for each deploy. The new process takes
# over the port from the running one, which exits once its connections end.
#
#   sh examples/handover/replace.sh            # PORT=8000, control socket in /tmp
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export RUST_NET_HANDOVER="${RUST_NET_HANDOVER:-/tmp/rust-net-example-$(id -u).handover}"
export PORT="${PORT:-8000}"
log="${LOG:-/tmp/rust-net-example-$(id -u).log}"

node "$here/server.js" >>"$log" 2>&1 &
pid=$!
# Wait until the new process says it listens (or has failed).
for _ in $(seq 50); do
  if grep -q "^$pid: listening" "$log"; then
    echo "process $pid serves port $PORT (log: $log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "process $pid failed; see $log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "process $pid did not listen within 5 s; see $log" >&2
exit 1
