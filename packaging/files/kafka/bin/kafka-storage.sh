#!/usr/bin/env bash
# KRaft storage tool: `random-uuid`, `format -t <cluster-id> -c <server.properties>`, `info`.
set -euo pipefail
base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${base_dir}/bin/kafka-run-class.sh" kafka.tools.StorageTool "$@"
