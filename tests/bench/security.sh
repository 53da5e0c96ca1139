#!/usr/bin/env bash
# What security costs, measured in one run on this machine (a benchmark: nothing is asserted).
#
#   tls:          AMQP and MQTT scenarios over plain TCP and over TLS, on Junction, RabbitMQ
#                 (its ssl listeners) and Mosquitto (a TLS listener), alternating; the
#                 TLS/plain ratio of each broker and Junction/peer over TLS.
#   permissions:  the same scenarios on Junction as a user with every right (no permission
#                 regexes) and as one whose configure/write/read and topic permissions are
#                 regular expressions; the ratio is the cost of the checks.
#
#   bash tests/bench/security.sh                 # both parts, ROUNDS=3
#   PARTS=permissions ROUNDS=5 bash tests/bench/security.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
PARTS=${PARTS:-tls permissions}
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${started_epmd:-}" ] && epmd -kill >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if want tls && { ! command -v rabbitmq-server >/dev/null || ! command -v mosquitto >/dev/null; }; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server mosquitto >/dev/null
fi
cargo build --release -q -p junction-gateway --bin junction
cargo build --release -q -p junction-tests --bin junction-bench --bin junction-test-certs
bench="$root/target/release/junction-bench"
junction="$root/target/release/junction"
"$root/target/release/junction-test-certs" "$work/pki" >/dev/null
pki="$work/pki"
# RabbitMQ and Mosquitto may run as other users: let them read the test PKI.
chmod 755 "$work" "$pki"; chmod 644 "$pki"/*

wait_port() {
  for _ in $(seq 1 600); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

# Junction: AMQP 5680 / AMQPS 5690, MQTT 1890 / MQTTS 1900, management 15680 (for ctl).
cat > "$work/junction.toml" <<TOML
data_dir = "$work/junction-data"
[tls]
cert_file = "$pki/server.pem"
key_file = "$pki/server.key"
[listeners.amqp]
address = "127.0.0.1"
port = 5680
[listeners.amqps]
address = "127.0.0.1"
port = 5690
[listeners.mqtt]
address = "127.0.0.1"
port = 1890
[listeners.mqtts]
address = "127.0.0.1"
port = 1900
[listeners.stomp]
enabled = false
[listeners.stomps]
enabled = false
[listeners.stomp_ws]
enabled = false
[listeners.mqtt_ws]
enabled = false
[listeners.stomp_wss]
enabled = false
[listeners.mqtt_wss]
enabled = false
[listeners.management]
address = "127.0.0.1"
port = 15680
[listeners.management_tls]
enabled = false
[listeners.prometheus]
enabled = false
[[users]]
name = "open"
password = "pw"
vhosts = ["/"]
TOML
"$junction" --config "$work/junction.toml" --log-level warn 2> "$work/junction.log" &
pids+=("$!")
for p in 5680 5690 1890 1900 15680; do wait_port "$p"; done

# The user with regular-expression permissions: every name the scenarios use starts with a
# lower-case letter or is one of amq.*, so nothing is refused, but every check runs a regex.
ctl() { "$junction" ctl --config "$work/junction.toml" -q "$@" >/dev/null; }
ctl add_user ruled pw
ctl set_permissions -p / ruled '^(amq\.|[a-z])' '^(amq\.|[a-z])' '^(amq\.|[a-z])'
ctl set_topic_permissions -p / ruled amq.topic '^[a-z0-9]' '^[a-z0-9]'

if want tls; then
  pgrep -x epmd >/dev/null || started_epmd=1
  mkdir -p "$work/rabbit"
  cat > "$work/rabbit/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:5681
listeners.ssl.default = 127.0.0.1:5691
mqtt.listeners.tcp.default = 127.0.0.1:1891
mqtt.listeners.ssl.default = 127.0.0.1:1901
ssl_options.cacertfile = $pki/ca.pem
ssl_options.certfile = $pki/server.pem
ssl_options.keyfile = $pki/server.key
ssl_options.verify = verify_none
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
loopback_users = none
CONF
  echo "[rabbitmq_mqtt]." > "$work/rabbit/enabled_plugins"
  rabbit_server=/usr/lib/rabbitmq/bin/rabbitmq-server
  [ -x "$rabbit_server" ] || rabbit_server=rabbitmq-server
  HOME="$work/rabbit" RABBITMQ_NODENAME=sec@localhost RABBITMQ_DIST_PORT=25698 \
    RABBITMQ_CONFIG_FILE="$work/rabbit/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$work/rabbit/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$work/rabbit/mnesia" RABBITMQ_LOG_BASE="$work/rabbit/log" \
    "$rabbit_server" > "$work/rabbit/out.log" 2>&1 &
  pids+=("$!")
  cat > "$work/mosquitto.conf" <<CONF
allow_anonymous true
max_queued_messages 100000
listener 1892 127.0.0.1
listener 1902 127.0.0.1
cafile $pki/ca.pem
certfile $pki/server.pem
keyfile $pki/server.key
CONF
  mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
  pids+=("$!")
  for p in 5681 5691 1891 1901 1892 1902; do wait_port "$p"; done
fi

TLS="--tls-ca $pki/ca.pem"
# who | label | arguments (the scenario's own follow)
targets=()
if want tls; then
  targets+=(
    "junction|plain|--amqp amqp://guest:guest@127.0.0.1:5680/%2f --mqtt 127.0.0.1:1890"
    "junction|tls|--amqp amqps://guest:guest@127.0.0.1:5690/%2f --mqtt 127.0.0.1:1900 $TLS"
    "rabbitmq|plain|--amqp amqp://guest:guest@127.0.0.1:5681/%2f --mqtt 127.0.0.1:1891"
    "rabbitmq|tls|--amqp amqps://guest:guest@127.0.0.1:5691/%2f --mqtt 127.0.0.1:1901 $TLS"
    "mosquitto|plain|--mqtt 127.0.0.1:1892"
    "mosquitto|tls|--mqtt 127.0.0.1:1902 $TLS"
  )
fi
if want permissions; then
  targets+=(
    "junction|all-rights|--amqp amqp://open:pw@127.0.0.1:5680/%2f --mqtt 127.0.0.1:1890 --mqtt-login open:pw"
    "junction|regex-rights|--amqp amqp://ruled:pw@127.0.0.1:5680/%2f --mqtt 127.0.0.1:1890 --mqtt-login ruled:pw"
  )
fi
scenarios=(
  "amqp-transient|--messages $((300000*SCALE)) --size 1024"
  "amqp-persistent|--messages $((100000*SCALE)) --size 1024"
  "mqtt-qos0-fanout|--messages $((3000*SCALE)) --size 256"
  "mqtt-qos1-pairs|--messages $((1000*SCALE)) --size 256"
)
results="$work/results.txt"
: > "$results"
for round in $(seq 1 "$ROUNDS"); do
  for s in "${scenarios[@]}"; do
    IFS='|' read -r name extra <<< "$s"
    for t in "${targets[@]}"; do
      IFS='|' read -r who label args <<< "$t"
      # Mosquitto speaks no AMQP.
      if [ "$who" = mosquitto ] && [[ $name == amqp-* ]]; then continue; fi
      line=$(timeout 600 "$bench" --scenario "$name" $extra $args 2>&1 | tail -1 || true)
      echo "round=$round who=$who label=$label $line" | tee -a "$results" >&2
    done
  done
done

python3 - "$results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "rate" not in kv or "scenario" not in kv:
        continue
    rows.setdefault((kv["scenario"], kv["who"], kv["label"]), []).append(float(kv["rate"]))
med = {k: statistics.median(v) for k, v in rows.items()}
scen = sorted({k[0] for k in med})
def cell(s, w, l):
    v = med.get((s, w, l))
    return f"{v:,.0f}" if v else "—"
def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "—"
if any(k[2] == "tls" for k in med):
    print("| scenario | broker | plain msg/s | TLS msg/s | TLS/plain | Junction/peer over TLS |")
    print("|---|---|---:|---:|---:|---:|")
    for s in scen:
        j = med.get((s, "junction", "tls"))
        for w in ("junction", "rabbitmq", "mosquitto"):
            if (s, w, "tls") not in med:
                continue
            p, t = med.get((s, w, "plain")), med.get((s, w, "tls"))
            vs = "" if w == "junction" else ratio(j, t)
            print(f"| {s} | {w} | {cell(s, w, 'plain')} | {cell(s, w, 'tls')} | {ratio(t, p)} | {vs} |")
if any(k[2] == "regex-rights" for k in med):
    print()
    print("| scenario | all rights msg/s | regex permissions msg/s | regex/all |")
    print("|---|---:|---:|---:|")
    for s in scen:
        a, r = med.get((s, "junction", "all-rights")), med.get((s, "junction", "regex-rights"))
        if a or r:
            print(f"| {s} | {cell(s, 'junction', 'all-rights')} | {cell(s, 'junction', 'regex-rights')} | {ratio(r, a)} |")
PY
