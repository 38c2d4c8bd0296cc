#!/usr/bin/env bash
# Prints the executor's costs against their targets:
#   - idle RSS while its service runs quietly (target: at most 8 MB), and the
#     CPU it uses meanwhile (target: none);
#   - launch overhead with the artifact cached: LAUNCH to TASK_RUNNING less the
#     service's own start time (target: at most 100 ms).
# The executor binary as it ships (the `executor` profile) is fetched and
# started by a real agent: the embedded local cluster, then real Mesos 1.11
# when its rig is present beside the clone.
#
#   scripts/bench-executor.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}

echo "==> building the executor (executor profile) and the benchmark" >&2
cargo build --locked --profile executor -p service-executor --bin service-executor >&2
cargo build --locked --release -p service-executor --example executor_bench >&2
ls -l "$target/executor/service-executor" | awk '{printf "executor binary: %.1f MB\n", $5 / 1048576}'
EXECUTOR_BIN="$target/executor/service-executor" "$target/release/examples/executor_bench"
