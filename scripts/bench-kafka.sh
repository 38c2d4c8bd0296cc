#!/usr/bin/env bash
# How much time kafka-mesos adds to deploying three Kafka brokers and to a
# rolling restart of them.
#
#   scripts/bench-kafka.sh
#
# In one run it deploys three KRaft brokers through kafka-mesos on the
# embedded local cluster (`broker add 0..2`) and restarts them
# (`broker restart 0..2`), then starts the same brokers by hand (same
# tarball, same rendered configuration, same command, same addresses) and
# restarts them one at a time with the framework's own readiness and ISR
# checks. It does so KAFKA_BENCH_ROUNDS times (default 3, about two and a
# half minutes each) and prints every round's times and ratios, and the
# median ratios against the targets: deploy at most 1.15, rolling restart at
# most 1.10.
#
# Needs what the tests need: Rust, a JDK 17+ and Maven (for the Kafka
# tarball). Builds in release mode; everything runs on 127.0.0.0/8.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-${ROOT}/target}"
cd "$ROOT"

echo "==> the Kafka tarball" >&2
KAFKA_BENCH_TARBALL="$(bash packaging/service-tarball.sh kafka)"
echo "==> the executor, as shipped to agents (profile executor)" >&2
cargo build --quiet --profile executor -p service-executor
KAFKA_BENCH_EXECUTOR="${TARGET}/executor/service-executor"
[[ -x "$KAFKA_BENCH_EXECUTOR" ]] || {
    echo "error: the build did not produce ${KAFKA_BENCH_EXECUTOR}" >&2
    exit 1
}
export KAFKA_BENCH_TARBALL KAFKA_BENCH_EXECUTOR
echo "==> kafka-mesos (release) and the benchmark" >&2
exec cargo bench --quiet -p kafka-mesos --bench deploy_restart
