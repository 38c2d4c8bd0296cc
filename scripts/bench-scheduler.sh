#!/usr/bin/env bash
# Prints two figures of the shared scheduler against their targets:
#   - resident memory of a scheduler managing 300 nodes (target: at most 20 MB);
#   - a scheduler killed with SIGKILL and started again: time until it is
#     subscribed and the master has answered for every task (target: 2 s).
# Runs the test service (tests/test-scheduler) on a local cluster started as
# its own process (mesos-local), with release binaries and the real executor.
#
#   scripts/bench-scheduler.sh [NODES]      (default 300)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
nodes=${1:-300}
agents=10
target=${CARGO_TARGET_DIR:-$repo/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-scheduler.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> building release binaries" >&2
cargo build --release --locked -p test-scheduler -p mesos-local -p test-service >&2
cargo build --profile executor --locked -p service-executor --bin service-executor >&2
cp "$target/executor/service-executor" "$work/service-executor"

# The test service's tarball: the binary at its root, as the scheduler expects.
mkdir -p "$work/tarball"
cp "$target/release/test-service" "$work/tarball/"
tar -czf "$work/test-service.tar.gz" -C "$work/tarball" test-service

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }

echo "==> starting a local cluster with $agents agents" >&2
"$target/release/mesos-local" --agents "$agents" --port 0 --state-dir "$work/cluster" \
  --first-agent-ip 127.0.200.2 \
  --resources "cpus:64;mem:65536;disk:100000;ports:[31000-32000]" \
  >"$work/cluster.out" 2>"$work/cluster.log" &
pids+=($!)
master=""
for _ in $(seq 300); do
  master=$(sed -n 's/^MASTER=//p' "$work/cluster.out" | head -1)
  [ -n "$master" ] && break
  sleep 0.1
done
[ -n "$master" ] || { echo "mesos-local did not start: see $work/cluster.log" >&2; exit 1; }

port=$(free_port)
api="http://127.0.0.1:$port"
start_scheduler() {
  PATH="$work:$PATH" "$target/release/test-scheduler" scheduler --master "$master" \
    --storage "$work/state.json" --api-bind "127.0.0.1:$port" \
    --executor "$work/service-executor" --service-tarball "$work/test-service.tar.gz" \
    >>"$work/scheduler.log" 2>&1 &
  scheduler=$!
  pids+=("$scheduler")
}
# awk reads the whole page (an early exit would fail curl with a broken pipe).
metric() { curl -sf "$api/metrics" | awk -v m="$1" 'index($0, m) == 1 && v == "" { v = $NF } END { print v }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

start_scheduler
for _ in $(seq 300); do curl -sf "$api/health" >/dev/null && break; sleep 0.1; done
echo "==> adding $nodes nodes" >&2
curl -sf -X POST "$api/api/v1/nodes" -H 'content-type: application/json' \
  -d "{\"ids\": \"0..$((nodes - 1))\", \"config\": {}}" >/dev/null
deployed_at=$SECONDS
while :; do
  running=$(metric 'scheduler_nodes{framework="testsvc",stage="running"}')
  [ "${running:-0}" -ge "$nodes" ] && break
  if [ $((SECONDS - deployed_at)) -gt 900 ]; then
    echo "only ${running:-0} of $nodes nodes running after 15 minutes; see $work/scheduler.log" >&2
    exit 1
  fi
  sleep 1
done
echo "    $nodes nodes running after $((SECONDS - deployed_at)) s" >&2

# Let the scheduler settle (health reports, allocator cycles), then sample its RSS.
sleep 10
peak=0
for _ in $(seq 10); do
  kb=$(rss_kb "$scheduler")
  [ "$kb" -gt "$peak" ] && peak=$kb
  sleep 1
done
file_kb=$(awk '/^RssFile:/ { print $2 }' "/proc/$scheduler/status")

echo "==> killing the scheduler (SIGKILL) and starting it again" >&2
kill -KILL "$scheduler"
wait "$scheduler" 2>/dev/null || true
t0=$(date +%s%N)
start_scheduler
until [ -n "$(metric 'scheduler_last_reconciliation_seconds{framework="testsvc"}' 2>/dev/null)" ]; do
  if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 60 ]; then
    echo "the restarted scheduler did not reconcile within 60 s; see $work/scheduler.log" >&2
    exit 1
  fi
  sleep 0.02
done
t1=$(date +%s%N)
from_subscribed=$(metric 'scheduler_last_reconciliation_seconds{framework="testsvc"}')

printf '\n%-58s %10s %10s\n' "figure" "measured" "target"
awk -v n="$nodes" -v kb="$peak" -v file="$file_kb" -v t0="$t0" -v t1="$t1" -v answered="$from_subscribed" 'BEGIN {
  printf "%-58s %7.1f MB %7s MB\n", "scheduler RSS with " n " running nodes (peak of 10 samples)", kb / 1024, 20
  printf "%-58s %7.1f MB\n", "  of which the binary and its libraries (file pages)", file / 1024
  printf "%-58s %8.3f s %8s s\n", "restart -> subscribed and reconciled (from process start)", (t1 - t0) / 1e9, 2
  printf "%-58s %8.3f s\n", "  of which SUBSCRIBED -> every task answered", answered
}'
