#!/usr/bin/env bash
# Interactive / one-shot ZooKeeper client.
#
#   bin/zkCli.sh -server 127.0.0.1:2181 [command ...]
#
# Environment: JAVA_HOME, ZOOCFGDIR (default conf/), CLIENT_JVMFLAGS, JVMFLAGS.
# Client logging goes to stderr at WARN (conf/logback-cli.xml) so that command
# output on stdout stays clean for scripts.
set -euo pipefail

ZK_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZOOCFGDIR="${ZOOCFGDIR:-${ZK_HOME}/conf}"

if [[ -n "${JAVA_HOME:-}" ]]; then
    JAVA="${JAVA_HOME}/bin/java"
else
    JAVA="$(command -v java || true)"
fi
[[ -n "$JAVA" && -x "$JAVA" ]] || { echo "zkCli.sh: java not found; set JAVA_HOME" >&2; exit 1; }

# shellcheck disable=SC2206  # flag lists are split on purpose
extra=(${JVMFLAGS:-} ${CLIENT_JVMFLAGS:-})
exec "$JAVA" -Xmx256m \
    "-Dlogback.configurationFile=${ZOOCFGDIR}/logback-cli.xml" \
    "${extra[@]}" \
    -cp "${ZOOCFGDIR}:${ZK_HOME}/lib/*" org.apache.zookeeper.ZooKeeperMain "$@"
