#!/usr/bin/env bash
# Runs a ZooKeeper server (standalone or ensemble member) in the foreground.
#
#   bin/zkServer.sh start-foreground [zoo.cfg]   run the server (exec's java)
#   bin/zkServer.sh print-cmd [zoo.cfg]          print the java command line
#
# A bare config name is looked up in $ZOOCFGDIR; a path is used as given.
# There is deliberately no daemon mode: the process is meant to be owned by a
# supervisor (Mesos executor, systemd), which stops it with SIGTERM.
#
# Environment:
#   JAVA_HOME        JDK to use (default: java on PATH)
#   ZOOCFGDIR        config dir holding zoo.cfg and logback.xml (default: conf/)
#   ZOO_LOG_DIR      directory for zookeeper.log (default: logs/)
#   ZK_SERVER_HEAP   max heap in MB (default: 512)
#   SERVER_JVMFLAGS  extra JVM flags for the server
#   JVMFLAGS         extra JVM flags (server and client)
#   JMXPORT          if set, enable unauthenticated JMX on JMXHOST:JMXPORT
#   JMXHOST          JMX bind address (default: 127.0.0.1)
set -euo pipefail

ZK_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZOOCFGDIR="${ZOOCFGDIR:-${ZK_HOME}/conf}"
ZOO_LOG_DIR="${ZOO_LOG_DIR:-${ZK_HOME}/logs}"

if [[ -n "${JAVA_HOME:-}" ]]; then
    JAVA="${JAVA_HOME}/bin/java"
else
    JAVA="$(command -v java || true)"
fi
[[ -n "$JAVA" && -x "$JAVA" ]] || { echo "zkServer.sh: java not found; set JAVA_HOME" >&2; exit 1; }

usage() {
    echo "usage: $0 {start-foreground|print-cmd} [zoo.cfg]" >&2
    exit 2
}

(($# >= 1 && $# <= 2)) || usage
action="$1"
cfg="${2:-zoo.cfg}"
# Same lookup rule as the upstream script: a bare name lives in ZOOCFGDIR.
[[ "$cfg" == */* ]] || cfg="${ZOOCFGDIR}/${cfg}"
[[ -f "$cfg" ]] || { echo "zkServer.sh: config file not found: $cfg" >&2; exit 1; }

mkdir -p "$ZOO_LOG_DIR"

cmd=("$JAVA"
    "-Xmx${ZK_SERVER_HEAP:-512}m"
    # Fail fast instead of limping on after an OOM; the supervisor restarts us.
    -XX:+ExitOnOutOfMemoryError
    "-Dzookeeper.log.dir=${ZOO_LOG_DIR}"
    "-Dlogback.configurationFile=${ZOOCFGDIR}/logback.xml"
    # The Jetty admin server is not bundled (it would also grab port 8080).
    # After adding Jetty jars, SERVER_JVMFLAGS=-Dzookeeper.admin.enableServer=true
    # turns it back on (a later -D wins).
    -Dzookeeper.admin.enableServer=false
)
if [[ -n "${JMXPORT:-}" ]]; then
    cmd+=("-Dcom.sun.management.jmxremote.port=${JMXPORT}"
        "-Dcom.sun.management.jmxremote.rmi.port=${JMXPORT}"
        "-Dcom.sun.management.jmxremote.host=${JMXHOST:-127.0.0.1}"
        -Dcom.sun.management.jmxremote.authenticate=false
        -Dcom.sun.management.jmxremote.ssl=false)
fi
# Word splitting of the *FLAGS variables is intended (lists of flags).
# shellcheck disable=SC2206
cmd+=(${JVMFLAGS:-} ${SERVER_JVMFLAGS:-})
cmd+=(-cp "${ZOOCFGDIR}:${ZK_HOME}/lib/*" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg")

case "$action" in
    start-foreground) exec "${cmd[@]}" ;;
    print-cmd) printf '%q ' "${cmd[@]}"; echo ;;
    *) usage ;;
esac
