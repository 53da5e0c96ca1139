#!/usr/bin/env bash
# What the management API (or, with ENDPOINT=prometheus, the Prometheus exporter) costs the
# brokering: the publish rate with the listener off, against the rate with it on and a client
# polling it every second (/api/queues, or /metrics/per-object), on a node holding QUEUES idle
# queues (so every poll lists them all), alternating A B A B for ROUNDS rounds; then how long
# one answer takes (whole list and one sorted page; /metrics and /metrics/per-object).
# A benchmark, not a test: nothing here is asserted.
#
#   bash tests/bench/management.sh           # ROUNDS=3 QUEUES=10000
#   ENDPOINT=prometheus QUEUES=100000 bash tests/bench/management.sh
#   ENDPOINT=prometheus POLL_PATH=/metrics bash tests/bench/management.sh   # what is polled
#   JUNCTION=path/to/junction ROUNDS=5 bash tests/bench/management.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
QUEUES=${QUEUES:-10000}
SCALE=${SCALE:-1}
ENDPOINT=${ENDPOINT:-management}
case "$ENDPOINT" in
  management) poll_port=15690 poll_url="http://127.0.0.1:15690/api/queues" ;;
  prometheus) poll_port=15689 poll_url="http://127.0.0.1:15689${POLL_PATH:-/metrics/per-object}" ;;
  *) echo "ENDPOINT must be management or prometheus" >&2; exit 64 ;;
esac
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -q -p junction-tests --bin junction-bench
bench="$root/target/release/junction-bench"
if [ -z "${JUNCTION:-}" ]; then
  cargo build --release -q -p junction-gateway --bin junction
  JUNCTION="$root/target/release/junction"
fi
python3 -c 'import pika' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pika

wait_port() {
  for _ in $(seq 1 600); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

# start NAME ON(true|false): a fresh Junction on 5690 (AMQP), 1895 (MQTT), with the listener
# under test (management on 15690, or Prometheus on 15689) on or off.
start() {
  rm -rf "$work/data-$1"
  cat > "$work/$1.toml" <<TOML
data_dir = "$work/data-$1"
[listeners.amqp]
address = "127.0.0.1"
port = 5690
[listeners.mqtt]
address = "127.0.0.1"
port = 1895
[listeners.stomp]
enabled = false
[listeners.stomp_ws]
enabled = false
[listeners.mqtt_ws]
enabled = false
[listeners.management]
enabled = $([ "$ENDPOINT" = management ] && echo "$2" || echo false)
address = "127.0.0.1"
port = 15690
[listeners.prometheus]
enabled = $([ "$ENDPOINT" = prometheus ] && echo "$2" || echo false)
address = "127.0.0.1"
port = 15689
TOML
  "$JUNCTION" --config "$work/$1.toml" --log-level warn 2> "$work/$1.log" &
  broker=$!
  pids+=("$broker")
  wait_port 5690
  python3 - "$QUEUES" <<'PY'
import sys, pika
c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5690))
ch = c.channel()
for i in range(int(sys.argv[1])):
    ch.queue_declare(f"idle-{i:06d}")
c.close()
PY
}

stop() {
  kill -TERM "$broker"
  wait "$broker" 2>/dev/null || true
}

# The poller: one GET of the listener under test a second (bounded: an hour at most).
poll() {
  for _ in $(seq 1 3600); do
    curl -s -o /dev/null -u guest:guest "$poll_url" || true
    sleep 1
  done
}

field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

scenarios=(
  "amqp-transient|--messages $((3000000 * SCALE)) --size 16"
  "mqtt-qos1-pairs|--messages $((10000 * SCALE)) --size 16"
)
for r in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    if [ "$mode" = on ]; then start on true; else start off false; fi
    poller=""
    if [ "$mode" = on ]; then
      wait_port "$poll_port"
      poll &
      poller=$!
    fi
    for s in "${scenarios[@]}"; do
      name=${s%%|*}
      # shellcheck disable=SC2086
      line=$("$bench" --scenario "$name" --amqp amqp://guest:guest@127.0.0.1:5690/%2f \
        --mqtt 127.0.0.1:1895 ${s#*|})
      echo "$line" | field rate >> "$work/$name.$mode"
      echo "round $r $mode: $line" >&2
    done
    [ -n "$poller" ] && { kill "$poller"; wait "$poller" 2>/dev/null || true; }
    if [ "$mode" = on ] && [ "$r" = "$ROUNDS" ]; then
      # The answer timings, on the last round's node with its QUEUES queues.
      for _ in 1 2 3 4 5; do
        if [ "$ENDPOINT" = management ]; then
          curl -s -o "$work/all.out" -w '%{time_total}\n' -u guest:guest \
            http://127.0.0.1:15690/api/queues >> "$work/list.all"
          curl -s -o /dev/null -w '%{time_total}\n' -u guest:guest \
            'http://127.0.0.1:15690/api/queues?page=1&page_size=100&sort=messages&sort_reverse=true' \
            >> "$work/list.page"
        else
          curl -s -o "$work/all.out" -w '%{time_total}\n' \
            http://127.0.0.1:15689/metrics/per-object >> "$work/list.all"
          curl -s -o /dev/null -w '%{time_total}\n' \
            http://127.0.0.1:15689/metrics >> "$work/list.page"
        fi
      done
      if [ "$ENDPOINT" = management ]; then
        listed=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$work/all.out")
      else
        listed=$(grep -c '^rabbitmq_queue_messages_ready{' "$work/all.out" || true)
      fi
      bytes=$(stat -c %s "$work/all.out")
    fi
    stop
  done
done

echo
echo "Junction $("$JUNCTION" --version 2>/dev/null || echo build), $QUEUES idle queues, $ROUNDS rounds (medians, messages/s):"
echo
echo "| scenario | $ENDPOINT off | on, ${poll_url#http://127.0.0.1:*/} polled every 1 s | on / off |"
echo "|---|---:|---:|---:|"
for s in "${scenarios[@]}"; do
  name=${s%%|*}
  off=$(median < "$work/$name.off")
  on=$(median < "$work/$name.on")
  printf '| %s | %.0f | %.0f | %.3f |\n' "$name" "$off" "$on" "$(echo "$on / $off" | bc -l)"
done
echo
if [ "$ENDPOINT" = management ]; then
  printf 'GET /api/queues (all %s queues, %s bytes): median %.3f s\n' "$listed" "$bytes" "$(median < "$work/list.all")"
  printf 'GET /api/queues?page=1&page_size=100&sort=messages: median %.3f s\n' "$(median < "$work/list.page")"
else
  printf 'GET /metrics/per-object (%s queues, %s bytes): median %.3f s\n' "$listed" "$bytes" "$(median < "$work/list.all")"
  printf 'GET /metrics: median %.3f s\n' "$(median < "$work/list.page")"
fi
