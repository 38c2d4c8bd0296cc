#!/usr/bin/env bash
# Runs a Java main class with every jar in libs/ on the classpath.
#
#   bin/kafka-run-class.sh <main-class> [args ...]
#
# The process is exec'd in the foreground (no daemon mode) so a supervisor
# owns it directly and can stop it with SIGTERM.
#
# Environment (same names and meaning as the Apache scripts use):
#   JAVA_HOME                   JDK to use (default: java on PATH)
#   KAFKA_HEAP_OPTS             heap flags (default: -Xmx256M)
#   KAFKA_JVM_PERFORMANCE_OPTS  GC / JIT flags (default: G1, short pauses)
#   KAFKA_OPTS                  any other JVM flags (e.g. -Djava.security.auth.login.config=...)
#   KAFKA_LOG4J_OPTS            log4j flags (default: config/tools-log4j.properties)
#   KAFKA_JMX_OPTS              JMX flags used when JMX_PORT is set
#   JMX_PORT                    enable JMX on this port (unset: JMX off)
#   LOG_DIR                     directory for server.log etc. (default: logs/)
#   CLASSPATH                   appended after libs/*
set -euo pipefail

base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if (($# < 1)); then
    echo "usage: $0 <main-class> [args ...]" >&2
    exit 2
fi

if [[ -n "${JAVA_HOME:-}" ]]; then
    JAVA="${JAVA_HOME}/bin/java"
else
    JAVA="$(command -v java || true)"
fi
[[ -n "$JAVA" && -x "$JAVA" ]] || { echo "kafka-run-class.sh: java not found; set JAVA_HOME" >&2; exit 1; }

LOG_DIR="${LOG_DIR:-${base_dir}/logs}"
mkdir -p "$LOG_DIR"

heap_opts="${KAFKA_HEAP_OPTS:--Xmx256M}"
perf_opts="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
log4j_opts="${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:${base_dir}/config/tools-log4j.properties}"

jmx_opts=""
if [[ -n "${JMX_PORT:-}" ]]; then
    jmx_opts="${KAFKA_JMX_OPTS:--Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false}"
    jmx_opts+=" -Dcom.sun.management.jmxremote.port=${JMX_PORT} -Dcom.sun.management.jmxremote.rmi.port=${JMX_PORT}"
fi

classpath="${base_dir}/libs/*"
[[ -z "${CLASSPATH:-}" ]] || classpath+=":${CLASSPATH}"

# The *_OPTS variables are whitespace-separated flag lists: split them.
# shellcheck disable=SC2206
jvm_args=($heap_opts $perf_opts $jmx_opts $log4j_opts ${KAFKA_OPTS:-})

exec "$JAVA" "${jvm_args[@]}" "-Dkafka.logs.dir=${LOG_DIR}" -cp "$classpath" "$@"
