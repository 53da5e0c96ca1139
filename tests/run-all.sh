#!/usr/bin/env bash
# Runs every check and test Junction has: formatting, lints, the Rust test suite (unit,
# end-to-end with lapin, the binary as a process), then interop runs with the clients users run
# (pika, kombu, stomp.py, paho-mqtt, mosquitto_pub/sub, Node's amqplib, and @stomp/stompjs and
# mqtt.js over WebSocket) and the web console in headless chromium against a real `junction`
# process. Installs the Python and Node
# clients it needs if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "interop clients"
# mosquitto_pub/sub, and Debian's chromium for the console's browser tests (playwright-core
# drives it; nothing downloads a browser).
missing=()
command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null || missing+=(mosquitto-clients)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
export JUNCTION_CHROMIUM="${JUNCTION_CHROMIUM:-$(command -v chromium)}"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/interop/requirements.txt
(cd tests/interop/node && npm ci --no-audit --no-fund --silent)
# rabbitmqadmin v2, RabbitMQ's CLI for the HTTP API: built once (about 3 minutes on 2 cores)
# into a cache outside the checkout, then reused.
tools="${JUNCTION_TOOLS_DIR:-$HOME/.cache/junction-tools}"
if [ ! -x "$tools/bin/rabbitmqadmin" ]; then
  cargo install --quiet --locked rabbitmqadmin --version 2.35.0 --root "$tools"
fi
export RABBITMQADMIN="$tools/bin/rabbitmqadmin"

step "interop: starting junction"
# `cargo test` above built target/debug/junction for the binary tests; use that build.
test -x target/debug/junction
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
amqp_port=$(port); stomp_port=$(port); mqtt_port=$(port); stomp_ws_port=$(port); mqtt_ws_port=$(port)
management_port=$(port)
prometheus_port=$(port)
amqps_port=$(port); stomps_port=$(port); mqtts_port=$(port); stomp_wss_port=$(port)
mqtt_wss_port=$(port); https_port=$(port)
# A test PKI (rcgen): CA, server certificate for localhost, client certificates.
test -x target/debug/junction-test-certs
target/debug/junction-test-certs "$work/pki" >/dev/null
cat > "$work/junction.toml" <<TOML
data_dir = "$work/data"
[tls]
cert_file = "$work/pki/server.pem"
key_file = "$work/pki/server.key"
ca_file = "$work/pki/ca.pem"
verify = "peer"
cert_login = true
[listeners.amqps]
address = "127.0.0.1"
port = $amqps_port
[listeners.stomps]
address = "127.0.0.1"
port = $stomps_port
[listeners.mqtts]
address = "127.0.0.1"
port = $mqtts_port
[listeners.stomp_wss]
address = "127.0.0.1"
port = $stomp_wss_port
[listeners.mqtt_wss]
address = "127.0.0.1"
port = $mqtt_wss_port
[listeners.management_tls]
address = "127.0.0.1"
port = $https_port
[listeners.amqp]
address = "127.0.0.1"
port = $amqp_port
[listeners.stomp]
address = "127.0.0.1"
port = $stomp_port
[listeners.mqtt]
address = "127.0.0.1"
port = $mqtt_port
[listeners.stomp_ws]
address = "127.0.0.1"
port = $stomp_ws_port
[listeners.mqtt_ws]
address = "127.0.0.1"
port = $mqtt_ws_port
[listeners.management]
address = "127.0.0.1"
port = $management_port
[listeners.prometheus]
address = "127.0.0.1"
port = $prometheus_port
TOML
"$root/target/debug/junction" --config "$work/junction.toml" --log-level warn 2> "$work/junction.log" &
junction_pid=$!
cleanup() {
  kill -TERM "$junction_pid" 2>/dev/null || true
  wait "$junction_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$amqp_port),0.2)" 2>/dev/null; then break; fi
  sleep 0.05
done
export JUNCTION_AMQP_PORT=$amqp_port JUNCTION_STOMP_PORT=$stomp_port JUNCTION_MQTT_PORT=$mqtt_port
export JUNCTION_STOMP_WS_PORT=$stomp_ws_port JUNCTION_MQTT_WS_PORT=$mqtt_ws_port
export JUNCTION_MANAGEMENT_PORT=$management_port
export JUNCTION_PROMETHEUS_PORT=$prometheus_port
export JUNCTION_AMQPS_PORT=$amqps_port JUNCTION_STOMPS_PORT=$stomps_port JUNCTION_MQTTS_PORT=$mqtts_port
export JUNCTION_HTTPS_PORT=$https_port JUNCTION_TLS_DIR="$work/pki" JUNCTION_PID=$junction_pid
export JUNCTION_CERTS_BIN="$root/target/debug/junction-test-certs"
# `junction ctl` for the ctl tests: the binary, and the config that leads it to the node.
export JUNCTION_BIN="$root/target/debug/junction" JUNCTION_CONFIG="$work/junction.toml"

step "interop: Node (amqplib, @stomp/stompjs and mqtt.js over WebSocket; the console in chromium)"
(cd tests/interop/node && node --test)

step "interop: Python (pika, kombu, stomp.py, paho-mqtt, amqpstorm), mosquitto_pub/sub and rabbitmqadmin v2"
python3 -m pytest -q -p no:cacheprovider tests/interop/python

step "interop: junction exits cleanly on SIGTERM"
kill -TERM "$junction_pid"
wait "$junction_pid"
echo "junction exited with status 0"
