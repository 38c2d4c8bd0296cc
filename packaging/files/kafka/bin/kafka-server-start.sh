#!/usr/bin/env bash
# Starts a Kafka broker and/or KRaft controller in the foreground.
#
#   bin/kafka-server-start.sh <server.properties> [--override key=value ...]
#
# KRaft mode needs its log dirs formatted once first (see kafka-storage.sh).
# Server logging defaults to config/log4j.properties (stdout + $LOG_DIR/server.log)
# and the heap to 1 GiB; override with KAFKA_LOG4J_OPTS / KAFKA_HEAP_OPTS.
set -euo pipefail

base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if (($# < 1)); then
    echo "usage: $0 <server.properties> [--override key=value ...]" >&2
    exit 2
fi

export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:${base_dir}/config/log4j.properties}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"

exec "${base_dir}/bin/kafka-run-class.sh" kafka.Kafka "$@"
