#!/usr/bin/env bash
# Prints the executor's idle RSS, its idle CPU use and its launch overhead
# (LAUNCH → TASK_RUNNING less the service's own start time, artifact cached)
# against the targets (8 MB, no CPU, 100 ms). Runs the executor binary as it
# ships (the `executor` profile) with a real service process, against an
# in-process fake agent on loopback.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --profile executor -p service-executor --bin service-executor
cargo build --release -p service-executor --example executor_bench
EXECUTOR_BIN="$target/executor/service-executor" "$target/release/examples/executor_bench"
