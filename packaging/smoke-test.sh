#!/usr/bin/env bash
# Starts each assembled service for real on 127.0.0.1 and checks it answers.
#
#   smoke-test.sh [zookeeper|kafka|cassandra|all]   (default: all)
#
# Tarballs come from service-tarball.sh (built if missing). Everything runs in
# a temporary directory on free loopback ports; every process started here is
# stopped by its PID on exit. Progress goes to stderr; one result line per
# check and a final "N passed, N failed" line go to stdout.
set -euo pipefail

PKG_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "${PKG_HOME}/lib.sh"

# Generous bounds: a cold JVM on a small CI machine is slow, and Cassandra
# waits ~30 s (its ring delay) before taking tokens on first boot.
START_TIMEOUT="${SMOKE_START_TIMEOUT:-180}"

what="${1:-all}"
case "$what" in
    zookeeper | kafka | cassandra | all) ;;
    *) echo "usage: $0 [zookeeper|kafka|cassandra|all]" >&2; exit 2 ;;
esac

TMP="$(mktemp -d "${TMPDIR:-/tmp}/pkg-smoke.XXXXXX")"
PIDS=()
PASSED=0
FAILED=0
USED_PORTS=" "

stop_pid() {
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "pid ${pid} ignored SIGTERM for 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [[ "${SMOKE_KEEP:-0}" == 1 ]]; then
        log "kept ${TMP}"
    else
        rm -rf -- "$TMP"
    fi
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Picks a port in the ephemeral range that nothing listens on and that this
# run has not handed out yet.
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 40000))
        [[ "$USED_PORTS" == *" ${port} "* ]] && continue
        port_open "$port" && continue
        USED_PORTS+="${port} "
        printf '%s\n' "$port"
        return 0
    done
    die "no free port found"
}

# Sends a ZooKeeper four-letter word and prints the reply.
four_letter() {
    local port="$1" word="$2"
    # shellcheck disable=SC2016  # expanded by the inner shell, on purpose
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s" "$2" >&3
        cat <&3' _ "$port" "$word" 2>/dev/null || true
}

# Waits until "$@" succeeds or the process $1 dies or the timeout passes.
wait_until() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    shift
    while ((SECONDS < deadline)); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

log_has() { grep -qF -- "$2" "$1" 2>/dev/null; }

rss_mib() { echo $(($(ps -o rss= -p "$1" | tr -d ' ') / 1024)); }

now_ms() { date +%s%3N; }

unpack() {
    local service="$1" tarball dest
    tarball="$("${PKG_HOME}/service-tarball.sh" "$service")"
    dest="${TMP}/${service}"
    mkdir -p "$dest"
    tar -xzf "$tarball" -C "$dest"
    # The archive holds exactly one top-level directory.
    find "$dest" -mindepth 1 -maxdepth 1 -type d
}

# --- ZooKeeper --------------------------------------------------------------

ZK_HOME="" ZK_PORT="" ZK_PID=""

start_zookeeper() {
    local dir="${TMP}/zk-run" t0
    ZK_PORT="$(free_port)"
    mkdir -p "${dir}/data" "${dir}/logs"
    cat >"${dir}/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=${dir}/data
clientPort=${ZK_PORT}
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
EOF
    t0="$(now_ms)"
    ZOO_LOG_DIR="${dir}/logs" ZK_SERVER_HEAP=256 \
        "${ZK_HOME}/bin/zkServer.sh" start-foreground "${dir}/zoo.cfg" >"${dir}/stdout.log" 2>&1 &
    ZK_PID=$!
    PIDS+=("$ZK_PID")
    # "imok" only means the socket is up; srvr reports a Mode once the
    # database is loaded and requests are actually served.
    zk_ok() {
        [[ "$(four_letter "$ZK_PORT" ruok)" == imok ]] &&
            [[ "$(four_letter "$ZK_PORT" srvr)" == *"Mode: "* ]]
    }
    if wait_until "$ZK_PID" zk_ok; then
        ZK_START_MS=$(($(now_ms) - t0))
        return 0
    fi
    sed -e 's/^/[zk] /' "${dir}/stdout.log" | tail -n 30 >&2
    return 1
}

test_zookeeper() {
    local srvr out="${TMP}/zk-run/stdout.log"
    ZK_HOME="$(unpack zookeeper)"
    if ! start_zookeeper; then
        fail "zookeeper: no 'imok' on port ${ZK_PORT}"
        return
    fi
    srvr="$(four_letter "$ZK_PORT" srvr)"
    if [[ "$srvr" != *"Mode: standalone"* ]]; then
        fail "zookeeper: srvr did not report standalone mode: ${srvr}"
        return
    fi
    if [[ ! -s "${TMP}/zk-run/logs/zookeeper.log" ]]; then
        fail "zookeeper: no zookeeper.log in ZOO_LOG_DIR"
        return
    fi
    if grep -q 'SLF4J' "$out"; then
        fail "zookeeper: SLF4J warning in output: $(grep -m1 SLF4J "$out")"
        return
    fi
    # The CLI must work too (it needs commons-cli, which is not transitive).
    if ! "${ZK_HOME}/bin/zkCli.sh" -server "127.0.0.1:${ZK_PORT}" create /smoke hello >/dev/null 2>"${TMP}/zkcli.err" ||
        ! "${ZK_HOME}/bin/zkCli.sh" -server "127.0.0.1:${ZK_PORT}" get /smoke 2>>"${TMP}/zkcli.err" | grep -qx hello; then
        sed -e 's/^/[zkCli] /' "${TMP}/zkcli.err" >&2
        fail "zookeeper: zkCli.sh create/get failed"
        return
    fi
    pass "zookeeper: imok + Mode: standalone + zkCli; serving after $((ZK_START_MS / 1000)).$(((ZK_START_MS % 1000) / 100)) s, RSS $(rss_mib "$ZK_PID") MiB"
}

# --- Kafka ------------------------------------------------------------------

# Starts kafka.Kafka with the given properties file; sets KAFKA_PID.
start_kafka() {
    local home="$1" props="$2" logdir="$3"
    mkdir -p "$logdir"
    LOG_DIR="$logdir" KAFKA_HEAP_OPTS="-Xmx512M -Xms512M" \
        "${home}/bin/kafka-server-start.sh" "$props" >"${logdir}/stdout.log" 2>&1 &
    KAFKA_PID=$!
    PIDS+=("$KAFKA_PID")
}

test_kafka_kraft() {
    local home="$1" dir="${TMP}/kafka-kraft" port cport cluster_id t0 ms topics
    port="$(free_port)"
    cport="$(free_port)"
    mkdir -p "$dir"
    cat >"${dir}/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${cport}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${dir}/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
EOF
    cluster_id="$("${home}/bin/kafka-storage.sh" random-uuid)"
    if [[ ! "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]]; then
        fail "kafka kraft: random-uuid printed '${cluster_id}'"
        return
    fi
    if ! "${home}/bin/kafka-storage.sh" format -t "$cluster_id" -c "${dir}/server.properties" >"${dir}/format.log" 2>&1; then
        sed -e 's/^/[format] /' "${dir}/format.log" >&2
        fail "kafka kraft: kafka-storage.sh format failed"
        return
    fi
    t0="$(now_ms)"
    start_kafka "$home" "${dir}/server.properties" "${dir}/logs"
    started() { port_open "$port" && log_has "${dir}/logs/stdout.log" "Kafka Server started"; }
    if ! wait_until "$KAFKA_PID" started; then
        tail -n 30 "${dir}/logs/stdout.log" | sed -e 's/^/[kafka] /' >&2
        fail "kafka kraft: broker did not start on port ${port}"
        return
    fi
    ms=$(($(now_ms) - t0))
    "${home}/bin/kafka-topics.sh" --bootstrap-server "127.0.0.1:${port}" --create --topic smoke \
        --partitions 1 --replication-factor 1 >/dev/null 2>"${dir}/topics.err" || true
    topics="$("${home}/bin/kafka-topics.sh" --bootstrap-server "127.0.0.1:${port}" --list 2>>"${dir}/topics.err" || true)"
    if [[ "$topics" != *smoke* ]]; then
        sed -e 's/^/[topics] /' "${dir}/topics.err" >&2
        fail "kafka kraft: topic create/list failed"
        return
    fi
    [[ -s "${dir}/logs/server.log" ]] || { fail "kafka kraft: no server.log written"; return; }
    pass "kafka kraft (combined): format + start in $((ms / 1000)).$(((ms % 1000) / 100)) s, topic create/list OK, RSS $(rss_mib "$KAFKA_PID") MiB"
    stop_pid "$KAFKA_PID"
}

test_kafka_zk() {
    local home="$1" dir="${TMP}/kafka-zk" port t0 ms
    if [[ -z "$ZK_PID" ]] || ! kill -0 "$ZK_PID" 2>/dev/null; then
        ZK_HOME="$(unpack zookeeper)"
        start_zookeeper || { fail "kafka zk-mode: could not start ZooKeeper"; return; }
    fi
    port="$(free_port)"
    mkdir -p "$dir"
    cat >"${dir}/server.properties" <<EOF
broker.id=0
listeners=PLAINTEXT://127.0.0.1:${port}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
zookeeper.connect=127.0.0.1:${ZK_PORT}/kafka-smoke
log.dirs=${dir}/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
EOF
    t0="$(now_ms)"
    start_kafka "$home" "${dir}/server.properties" "${dir}/logs"
    started() { port_open "$port" && log_has "${dir}/logs/stdout.log" "[KafkaServer id=0] started"; }
    if ! wait_until "$KAFKA_PID" started; then
        tail -n 30 "${dir}/logs/stdout.log" | sed -e 's/^/[kafka-zk] /' >&2
        fail "kafka zk-mode: broker did not start on port ${port}"
        return
    fi
    ms=$(($(now_ms) - t0))
    pass "kafka zookeeper-mode: started against ZooKeeper 127.0.0.1:${ZK_PORT}/kafka-smoke in $((ms / 1000)).$(((ms % 1000) / 100)) s, RSS $(rss_mib "$KAFKA_PID") MiB"
    stop_pid "$KAFKA_PID"
}

test_kafka() {
    local home
    home="$(unpack kafka)"
    test_kafka_kraft "$home"
    test_kafka_zk "$home"
}

# --- Cassandra --------------------------------------------------------------

test_cassandra() {
    local home dir="${TMP}/cassandra-run" sport nport jport pid t0 ms status root_flag=()
    home="$(unpack cassandra)"
    sport="$(free_port)"
    nport="$(free_port)"
    jport="$(free_port)"
    mkdir -p "$dir"
    cp -R "${home}/conf" "${dir}/conf"
    sed -i -e "s/127\.0\.0\.1:7000/127.0.0.1:${sport}/" \
        -e "s/^storage_port: .*/storage_port: ${sport}/" \
        -e "s/^native_transport_port: .*/native_transport_port: ${nport}/" \
        "${dir}/conf/cassandra.yaml"
    [[ "$(id -u)" != 0 ]] || root_flag=(-R)
    t0="$(now_ms)"
    CASSANDRA_CONF="${dir}/conf" CASSANDRA_LOG_DIR="${dir}/logs" CASSANDRA_STORAGE_DIR="${dir}/data" \
        MAX_HEAP_SIZE=512M JMX_PORT="$jport" \
        "${home}/bin/cassandra" -f "${root_flag[@]}" >"${dir}/stdout.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    started() { log_has "${dir}/stdout.log" "Starting listening for CQL clients" && port_open "$nport"; }
    if ! wait_until "$pid" started; then
        grep -E 'ERROR|Exception' "${dir}/stdout.log" | head -n 20 | sed -e 's/^/[cassandra] /' >&2 || true
        tail -n 20 "${dir}/stdout.log" | sed -e 's/^/[cassandra] /' >&2
        fail "cassandra: CQL port ${nport} did not open"
        return
    fi
    ms=$(($(now_ms) - t0))
    status="$(CASSANDRA_CONF="${dir}/conf" "${home}/bin/nodetool" -h 127.0.0.1 -p "$jport" status 2>"${dir}/nodetool.err" || true)"
    if ! grep -qE '^UN +127\.0\.0\.1' <<<"$status"; then
        sed -e 's/^/[nodetool] /' "${dir}/nodetool.err" >&2
        fail "cassandra: nodetool status did not show UN: ${status}"
        return
    fi
    if grep -qE 'InaccessibleObjectException|IllegalAccessError|illegal reflective' "${dir}/stdout.log"; then
        fail "cassandra: JDK module-access errors in the log"
        return
    fi
    pass "cassandra: CQL up in $((ms / 1000)).$(((ms % 1000) / 100)) s, nodetool status UN, RSS $(rss_mib "$pid") MiB (heap 512M)"
    stop_pid "$pid"
}

log "working in ${TMP}"
case "$what" in
    zookeeper) test_zookeeper ;;
    kafka) test_kafka ;;
    cassandra) test_cassandra ;;
    all)
        test_zookeeper
        test_kafka
        test_cassandra
        ;;
esac

printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
