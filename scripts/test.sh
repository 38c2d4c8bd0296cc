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
# Incremental data is only reused by edits in the same checkout; every CI run
# is a clean clone, and the cached target grew by gigabytes per run.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi

# A clean clone rebuilds the workspace's own crates under new hashes, and a
# kept target directory piled up the old builds (it reached tens of
# gigabytes). Once the suite is built, older files of our own crates go;
# dependencies are left as they are.
prune_superseded() {
  local built=$1 started=$2 deps stems
  deps=$(grep '"package_id":"path+file://' "$built" | grep -o '"filenames":\[[^]]*\]' |
    grep -o '"/[^"]*/deps/[^"]*"' | sed -n '1{s/"//g;s#/[^/]*$##;p}' || true)
  [ -n "$deps" ] || return 0
  stems=$(grep '"package_id":"path+file://' "$built" | grep -o '"filenames":\[[^]]*\]' |
    grep -o '/deps/[^"/]*"' | sed -E 's#^/deps/##; s#"$##; s#-[0-9a-f]{16}([.].*)?$##' | sort -u || true)
  # Only a crate rebuilt by this run loses its older files.
  (
    cd "$deps"
    find . -maxdepth 1 -type f -newer "$started" -printf 'new %f\n'
    find . -maxdepth 1 -type f ! -newer "$started" -printf 'old %f\n'
  ) | awk -v stems="$stems" '
      BEGIN {
        n = split(stems, s, "\n"); for (i = 1; i <= n; i++) ours[s[i]] = 1
        # No {16}: Debian'"'"'s default awk (mawk) has no interval expressions.
        hash = "-"; for (i = 0; i < 16; i++) hash = hash "[0-9a-f]"
        hash = hash "([.].*)?$"
      }
      { stem = $2; sub(hash, "", stem) }
      !(stem in ours) || stem == $2 { next }
      $1 == "new" { fresh[stem] = 1; next }
      { old[$2] = stem }
      END { for (file in old) if (old[file] in fresh) print file }' |
    while IFS= read -r file; do rm -f -- "$deps/$file"; done
}

# Everything built from here on is newer than this file.
run_started=$(mktemp "${TMPDIR:-/tmp}/test-run.XXXXXX")

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# The Cassandra ring scenario is the longest test and spends most of its time
# waiting for JVMs to start; it runs in a lane of its own beside the rest of
# the suite, which halves its cost on two cores. Everything is built first, so
# the lanes only run tests.
built=$(mktemp "${TMPDIR:-/tmp}/test-build.XXXXXX")
cargo test --workspace --locked --no-run --message-format=json-render-diagnostics >"$built"
if [ "${CI:-}" = "true" ]; then
  prune_superseded "$built" "$run_started"
fi
lane_test=two_nodes_ring_restart_and_replace
lane_bin=$(grep '"kind":\["test"\]' "$built" | grep '"name":"ring_local_cluster"' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
rm -f "$built" "$run_started"
if [ -z "$lane_bin" ]; then
  echo "could not find the Cassandra ring test's binary" >&2
  exit 1
fi
lane_log=$(mktemp "${TMPDIR:-/tmp}/cassandra-lane.XXXXXX")
(cd frameworks/cassandra && exec "$lane_bin" --exact "$lane_test") >"$lane_log" 2>&1 &
lane_pid=$!
status=0
cargo test --workspace --locked --no-fail-fast -- --skip "$lane_test" || status=$?
lane_status=0
wait "$lane_pid" || lane_status=$?
step "cassandra-mesos ring_local_cluster (run beside the suite)"
cat "$lane_log"
rm -f "$lane_log"
if [ "$lane_status" -ne 0 ]; then
  echo "the Cassandra ring test failed (exit $lane_status)" >&2
  status=1
fi
exit "$status"
