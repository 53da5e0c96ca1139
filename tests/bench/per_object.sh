#!/usr/bin/env bash
# How long one Prometheus scrape of /metrics/per-object takes on a node holding QUEUES idle
# queues, Junction and RabbitMQ (rabbitmq_prometheus, Debian's package) side by side in one
# run; each scrape has at most CURL_MAX seconds. A benchmark, not a test: nothing is asserted.
#
#   bash tests/bench/per_object.sh            # QUEUES=100000
#   QUEUES=20000 bash tests/bench/per_object.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
QUEUES=${QUEUES:-100000}
CURL_MAX=${CURL_MAX:-300}
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

if ! command -v rabbitmq-server >/dev/null; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null
fi
python3 -c 'import pika' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pika
if [ -z "${JUNCTION:-}" ]; then
  cargo build --release -q -p junction-gateway --bin junction
  JUNCTION="$root/target/release/junction"
fi

wait_port() {
  for _ in $(seq 1 1200); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

declare_queues() {
  python3 - "$1" "$QUEUES" <<'PY'
import sys, time, pika
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", int(sys.argv[1])))
ch = c.channel()
start = time.monotonic()
for i in range(int(sys.argv[2])):
    ch.queue_declare(f"idle-{i:06d}")
print(f"declared {sys.argv[2]} queues in {time.monotonic() - start:.1f} s", file=sys.stderr)
c.close()
PY
}

# scrape NAME PORT: three timed scrapes of /metrics/per-object; "timeout" when one took too long.
scrape() {
  for _ in 1 2 3; do
    if t=$(curl -s -o "$work/$1.out" --max-time "$CURL_MAX" -w '%{time_total}' \
        "http://127.0.0.1:$2/metrics/per-object"); then
      echo "$t" >> "$work/$1.times"
    else
      echo "timeout" >> "$work/$1.times"
      break
    fi
  done
  echo "$1: $(tr '\n' ' ' < "$work/$1.times")s, $(stat -c %s "$work/$1.out" 2>/dev/null || echo 0) bytes" >&2
}

# Junction: 5697 AMQP, 15697 Prometheus.
cat > "$work/junction.toml" <<TOML
data_dir = "$work/junction-data"
[listeners.amqp]
address = "127.0.0.1"
port = 5697
[listeners.stomp]
enabled = false
[listeners.mqtt]
enabled = false
[listeners.stomp_ws]
enabled = false
[listeners.mqtt_ws]
enabled = false
[listeners.management]
enabled = false
[listeners.prometheus]
address = "127.0.0.1"
port = 15697
TOML
"$JUNCTION" --config "$work/junction.toml" --log-level warn 2> "$work/junction.log" &
junction=$!
pids+=("$junction")
wait_port 5697
declare_queues 5697
scrape junction 15697
kill -TERM "$junction"; wait "$junction" 2>/dev/null || true

# RabbitMQ: 5698 AMQP, 15698 Prometheus, its own node name and directories.
pgrep -x epmd >/dev/null || started_epmd=1
mkdir -p "$work/rabbit"
cat > "$work/rabbit/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:5698
prometheus.tcp.port = 15698
prometheus.tcp.ip = 127.0.0.1
loopback_users = none
CONF
echo "[rabbitmq_prometheus]." > "$work/rabbit/enabled_plugins"
rabbit_server=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$rabbit_server" ] || rabbit_server=rabbitmq-server
HOME="$work/rabbit" RABBITMQ_NODENAME=perobject@localhost RABBITMQ_DIST_PORT=25697 \
  RABBITMQ_CONFIG_FILE="$work/rabbit/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$work/rabbit/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$work/rabbit/mnesia" RABBITMQ_LOG_BASE="$work/rabbit/log" \
  "$rabbit_server" > "$work/rabbit/out.log" 2>&1 &
pids+=("$!")
wait_port 5698; wait_port 15698
declare_queues 5698
scrape rabbitmq 15698

median() { grep -v timeout | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "-"}'; }
echo
echo "GET /metrics/per-object with $QUEUES idle queues (median of the scrapes that finished; at most $CURL_MAX s each):"
echo
echo "| broker | seconds | bytes | scrapes |"
echo "|---|---:|---:|---|"
for b in junction rabbitmq; do
  printf '| %s | %s | %s | %s |\n' "$b" "$(median < "$work/$b.times")" \
    "$(stat -c %s "$work/$b.out" 2>/dev/null || echo 0)" "$(tr '\n' ' ' < "$work/$b.times")"
done
