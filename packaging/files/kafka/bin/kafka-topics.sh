#!/usr/bin/env bash
# Topic administration: bin/kafka-topics.sh --bootstrap-server HOST:PORT --list|--create|--describe ...
set -euo pipefail
base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${base_dir}/bin/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
