#!/usr/bin/env bash
# The Kafka framework on your machine in one command.
#
#   scripts/quickstart.sh          build, start the scheduler on the embedded
#                                  local cluster (3 agents), deploy 3 brokers
#   scripts/quickstart.sh status   is it running? where are the brokers?
#   scripts/quickstart.sh stop     stop the scheduler (and with it the brokers)
#
# Everything it starts runs on 127.0.0.0/8. Its files (state, logs, the
# local cluster's volumes) live in $QUICKSTART_DIR, by default
# ${TMPDIR:-/tmp}/kafka-mesos-quickstart. The API listens on 127.0.0.1:7000
# (QUICKSTART_API_PORT to change). Needs Rust (cargo), a JDK 17+ and Maven.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${QUICKSTART_DIR:-${TMPDIR:-/tmp}/kafka-mesos-quickstart}"
PORT="${QUICKSTART_API_PORT:-7000}"
API="http://127.0.0.1:${PORT}"
TARGET="${CARGO_TARGET_DIR:-${ROOT}/target}"
BIN="${TARGET}/release/kafka-mesos"
PID_FILE="${DIR}/scheduler.pid"
LOG="${DIR}/scheduler.log"
STARTED=$SECONDS

if [[ -t 1 ]]; then
    bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' plain=$'\e[0m'
else
    bold='' green='' red='' plain=''
fi
step() { printf '%s==> %s%s  (%ss)\n' "$bold" "$*" "$plain" "$((SECONDS - STARTED))"; }
ok() { printf '%s    ✓ %s%s\n' "$green" "$*" "$plain"; }
die() {
    printf '%serror: %s%s\n' "$red" "$*" "$plain" >&2
    exit 1
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

kafka_mesos() { KAFKA_MESOS_API="$API" "$BIN" "$@"; }

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "no quickstart scheduler is running (no live PID in ${PID_FILE})"
        return 0
    fi
    step "stopping the scheduler (PID ${pid}) and the local cluster with its brokers"
    kill -TERM "$pid"
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        die "the scheduler (PID ${pid}) is still running after 60s; see ${LOG}"
    fi
    rm -f "$PID_FILE"
    ok "stopped; its files stay in ${DIR} (delete them with: rm -rf '${DIR}')"
}

status() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "no quickstart scheduler is running"
        return 1
    fi
    echo "scheduler PID ${pid}, API ${API}, log ${LOG}"
    kafka_mesos broker list
}

check_tools() {
    step "checking tools"
    command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"
    command -v curl >/dev/null || die "curl not found: install it (e.g. apt-get install curl)"
    command -v java >/dev/null || die "java not found: install a JDK 17 or newer (e.g. apt-get install openjdk-17-jdk-headless)"
    local version major
    version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    major="${version%%.*}"
    [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$version")"
    [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] ||
        die "java ${version:-?} is too old: Kafka here needs a JDK 17 or newer"
    command -v mvn >/dev/null || die "mvn not found: install Maven 3.8+ (it fetches the Kafka jars from Maven Central)"
    ok "cargo, java ${version}, mvn, curl"
}

build() {
    step "building kafka-mesos and the executor (release; the first build takes several minutes)"
    (cd "$ROOT" && cargo build --release --quiet -p kafka-mesos)
    if grep -q '^\[profile\.executor\]' "${ROOT}/Cargo.toml"; then
        (cd "$ROOT" && cargo build --profile executor --quiet -p service-executor)
        EXECUTOR="${TARGET}/executor/service-executor"
    else
        (cd "$ROOT" && cargo build --release --quiet -p service-executor)
        EXECUTOR="${TARGET}/release/service-executor"
    fi
    [[ -x "$BIN" && -x "$EXECUTOR" ]] || die "the build did not produce ${BIN} and ${EXECUTOR}"
    ok "${BIN}"
    ok "${EXECUTOR}"

    step "building the Kafka tarball from the Apache jars on Maven Central (cached after the first time)"
    TARBALL="$("${ROOT}/packaging/service-tarball.sh" kafka)"
    ok "${TARBALL}"
}

start_scheduler() {
    if curl -fsS -o /dev/null "${API}/health" 2>/dev/null; then
        die "something already answers on ${API}; stop it or pick another port with QUICKSTART_API_PORT=7100"
    fi
    if [[ -d "$DIR" ]]; then
        echo "    removing the files of an earlier quickstart in ${DIR}"
        rm -rf -- "$DIR"
    fi
    mkdir -p "$DIR"
    step "starting the scheduler on the embedded local cluster (3 agents on 127.0.0.x)"
    # setsid: the scheduler outlives this script and ignores its terminal's ^C.
    setsid "$BIN" scheduler \
        --master local:3 \
        --storage "${DIR}/state.json" \
        --local-state-dir "${DIR}/cluster" \
        --api-bind "127.0.0.1:${PORT}" \
        --executor "$EXECUTOR" \
        --kafka-tarball "$TARBALL" \
        >"$LOG" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null "${API}/health" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            tail -n 20 "$LOG" >&2
            die "the scheduler exited; its log is ${LOG}"
        fi
        ((SECONDS < deadline)) || die "the scheduler (PID ${pid}) did not answer ${API}/health within 60s; see ${LOG}"
        sleep 0.2
    done
    ok "scheduler PID ${pid}, API ${API}, log ${LOG}"
}

deploy() {
    step "adding brokers 0..2, one per agent (hostname=unique), and following the deploy plan"
    kafka_mesos broker add 0..2 \
        --constraints hostname=unique \
        --cpus 1 --mem 1536 --heap 768 --disk 2000 \
        --option min.insync.replicas=2 \
        --timeout 15m ||
        die "the deploy did not finish; the scheduler keeps running: see 'kafka-mesos plan show', ${LOG}, and stop it with 'scripts/quickstart.sh stop'"
    ok "3 brokers running"
    kafka_mesos broker list
}

summary() {
    local bootstrap
    bootstrap="$(kafka_mesos --json endpoints | sed -n 's/.*"bootstrap_servers": *"\([^"]*\)".*/\1/p')"
    [[ -n "$bootstrap" ]] || die "the scheduler reports no bootstrap servers; see ${LOG}"
    mkdir -p "${DIR}/kafka"
    tar -xzf "$TARBALL" -C "${DIR}/kafka" --strip-components=1
    local tools="${DIR}/kafka/bin/kafka-run-class.sh"
    local pid
    pid="$(cat "$PID_FILE")"
    cat <<EOF

${bold}Kafka is up in $((SECONDS - STARTED))s.${plain}

  bootstrap servers:  ${bootstrap}
  scheduler:          PID ${pid}, API ${API}, log ${LOG}
  CLI:                export PATH="${TARGET}/release:\$PATH" KAFKA_MESOS_API=${API}

Next, try:

  # a topic with 3 replicas that survives one broker down
  kafka-mesos topic add orders --partitions 3 --replication-factor 3 --config min.insync.replicas=2
  kafka-mesos topic describe orders

  # produce (type lines, ^D to end) and consume, with the tools in the Kafka tarball
  ${tools} kafka.tools.ConsoleProducer --bootstrap-server ${bootstrap} --topic orders --producer-property acks=all
  ${tools} org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server ${bootstrap} --topic orders --from-beginning

  # a rolling restart: one broker at a time, each back in every ISR before the next
  kafka-mesos broker restart 0..2

  # a configuration change, rolled out the same way
  kafka-mesos broker update 0..2 --option log.retention.hours=24

  kafka-mesos broker list        kafka-mesos plan list        kafka-mesos broker log 1

Stop everything:  scripts/quickstart.sh stop     (or: kill ${pid})
EOF
}

case "${1:-start}" in
    start)
        if pid="$(running_pid)"; then
            echo "the quickstart scheduler is already running (PID ${pid}); 'scripts/quickstart.sh stop' first to start over"
            status || true
            exit 0
        fi
        check_tools
        build
        start_scheduler
        deploy
        summary
        ;;
    stop) stop ;;
    status) status ;;
    -h | --help | help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1': use start (the default), status or stop" ;;
esac
