#!/usr/bin/env bash
# Junction side by side with RabbitMQ (STOMP + MQTT plugins) and Mosquitto from Debian's
# packages, on this machine, in one run: every scenario of junction-bench against Junction and
# its peer alternately (A B A B ...), ROUNDS rounds, then the medians and Junction/peer ratios
# as a Markdown table. A benchmark, not a test: nothing here is asserted.
#
#   bash tests/bench/compare.sh            # ROUNDS=3 by default
#   ROUNDS=5 SCALE=2 LATENCY_REPEAT=3 bash tests/bench/compare.sh
#   PARTS="ceiling" CEILING_SECS=30 bash tests/bench/compare.sh   # only some parts
#   PARTS=throughput ONLY='topic|cross' ROUNDS=1 bash tests/bench/compare.sh   # some scenarios
#
# PARTS: throughput (the scenario table), memory (idle connections, queue depth, restart),
# ceiling (memory under a 1 GiB high watermark on Junction and RabbitMQ: a consumer that acks
# slowly, and an MQTT QoS 0 subscriber that stops reading), topic (worst-case topic patterns;
# last, because RabbitMQ's matching of them does not finish and keeps a scheduler busy).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-1}
LATENCY_REPEAT=${LATENCY_REPEAT:-3}
PARTS=${PARTS:-throughput memory ceiling topic}
CEILING_SECS=${CEILING_SECS:-30}
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # RabbitMQ's start launched Erlang's port mapper daemon; stop it too.
  [ -n "${started_epmd:-}" ] && epmd -kill >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if ! command -v rabbitmq-server >/dev/null || ! command -v mosquitto >/dev/null; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server mosquitto >/dev/null
fi
cargo build --release -q -p junction-gateway --bin junction
cargo build --release -q -p junction-tests --bin junction-bench
bench="$root/target/release/junction-bench"

wait_port() {
  for _ in $(seq 1 600); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

# Junction: 5680 AMQP, 61620 STOMP, 1890 MQTT.
cat > "$work/junction.toml" <<TOML
data_dir = "$work/junction-data"
[listeners.amqp]
address = "127.0.0.1"
port = 5680
[listeners.stomp]
address = "127.0.0.1"
port = 61620
[listeners.mqtt]
address = "127.0.0.1"
port = 1890
[listeners.stomp_ws]
enabled = false
[listeners.mqtt_ws]
enabled = false
[listeners.management]
enabled = false
[listeners.prometheus]
enabled = false
TOML
"$root/target/release/junction" --config "$work/junction.toml" --log-level info 2> "$work/junction.log" &
junction_pid=$!; pids+=("$junction_pid")

pgrep -x epmd >/dev/null || started_epmd=1
# RabbitMQ: 5681 AMQP, 61621 STOMP, 1891 MQTT; its own node name and directories.
mkdir -p "$work/rabbit"
cat > "$work/rabbit/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:5681
stomp.listeners.tcp.1 = 127.0.0.1:61621
mqtt.listeners.tcp.default = 127.0.0.1:1891
loopback_users = none
CONF
echo "[rabbitmq_stomp,rabbitmq_mqtt]." > "$work/rabbit/enabled_plugins"
# Debian's /usr/sbin/rabbitmq-server re-runs itself through `su rabbitmq` when started as root,
# which cannot write this script's private directory; the server script it wraps runs as is.
rabbit_server=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$rabbit_server" ] || rabbit_server=rabbitmq-server
HOME="$work/rabbit" RABBITMQ_NODENAME=bench@localhost RABBITMQ_DIST_PORT=25699 \
  RABBITMQ_CONFIG_FILE="$work/rabbit/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$work/rabbit/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$work/rabbit/mnesia" RABBITMQ_LOG_BASE="$work/rabbit/log" \
  "$rabbit_server" > "$work/rabbit/out.log" 2>&1 &
rabbit_pid=$!; pids+=("$rabbit_pid")

# Mosquitto: 1892 (persistence off, its default).
cat > "$work/mosquitto.conf" <<CONF
listener 1892 127.0.0.1
allow_anonymous true
max_queued_messages 100000
CONF
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
mosquitto_pid=$!; pids+=("$mosquitto_pid")

for p in 5680 61620 1890 5681 61621 1891 1892; do wait_port "$p"; done

J="--amqp amqp://guest:guest@127.0.0.1:5680/%2f --stomp 127.0.0.1:61620 --mqtt 127.0.0.1:1890"
R="--amqp amqp://guest:guest@127.0.0.1:5681/%2f --stomp 127.0.0.1:61621 --mqtt 127.0.0.1:1891"
M="--mqtt 127.0.0.1:1892"

# scenario | extra arguments | peer (R = RabbitMQ, M = Mosquitto)
scenarios=(
  "amqp-transient|--messages $((500000*SCALE)) --size 16|R"
  "amqp-transient|--messages $((300000*SCALE)) --size 1024|R"
  "amqp-persistent|--messages $((200000*SCALE)) --size 16|R"
  "amqp-fanout|--messages $((100000*SCALE)) --size 16|R"
  "amqp-latency|--messages $((25000*SCALE)) --rate 5000 --size 16|R"
  "mqtt-latency|--messages $((25000*SCALE)) --rate 5000 --size 16|M"
  "mqtt-qos0-fanout|--messages $((5000*SCALE)) --size 16|M"
  "mqtt-qos1-pairs|--messages $((1000*SCALE)) --size 16|M"
  "mqtt-qos2-pairs|--messages $((300*SCALE)) --size 16|R"
  "stomp-queue|--messages $((300000*SCALE)) --size 16|R"
  "stomp-topic|--messages $((50000*SCALE)) --size 16|R"
  "cross|--messages $((300000*SCALE)) --size 16|R"
)
results="$work/results.txt"
: > "$results"
want throughput || ROUNDS=0
for round in $(seq 1 "$ROUNDS"); do
  for s in "${scenarios[@]}"; do
    IFS='|' read -r name extra peer <<< "$s"
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then continue; fi
    peer_args=$R; [ "$peer" = M ] && peer_args=$M
    # The fixed-rate rows are short, and their p99 is at the mercy of millisecond stalls of the
    # machine (kernel threads): each round runs them LATENCY_REPEAT times, still alternating.
    reps=1
    case "$extra" in *--rate*) reps=$LATENCY_REPEAT ;; esac
    for _ in $(seq 1 "$reps"); do
      for who in junction peer; do
        args=$J; [ "$who" = peer ] && args=$peer_args
        line=$(timeout 600 "$bench" --scenario "$name" $extra $args 2>&1 | tail -1 || true)
        echo "round=$round who=$who peer=$peer $line" | tee -a "$results" >&2
      done
    done
  done
done
# Memory figures need a fresh Junction: one that already served the load reuses the memory it
# freed, and its resident size would not grow at all.
fresh_junction() {
  kill -TERM "$junction_pid"; wait "$junction_pid" || true
  [ "${1:-}" = keep ] || rm -rf "$work/junction-data"
  "$root/target/release/junction" --config "$work/${config:-junction.toml}" --log-level info 2> "$work/junction-fresh.log" &
  junction_pid=$!; pids+=("$junction_pid")
  wait_port 5680; wait_port 1890
}
fresh_junction
# Written at shutdown by the Junction that ran the scenarios.
fsync_line=$(grep "message log totals" "$work/junction.log" | tail -1 || true)
rabbit_vm=$(pgrep -P "$rabbit_pid" | head -1 || true)
idle_j="" idle_m="" depth_j="" depth_r="" depth_jp="" depth_rp="" recovered_line="" recovered_rss=""
if want memory; then
# Idle MQTT connections: memory per connection (once each; it is not noisy).
idle_j=$(timeout 600 "$bench" --scenario mqtt-idle --connections 10000 --mqtt 127.0.0.1:1890 --broker-pid "$junction_pid" | tail -1 || true)
idle_m=$(timeout 600 "$bench" --scenario mqtt-idle --connections 10000 --mqtt 127.0.0.1:1892 --broker-pid "$mosquitto_pid" | tail -1 || true)

# Queue depth: 1,000,000 1 KiB messages with nobody consuming (once each), transient and then
# persistent on a durable queue (each on a fresh Junction; the persistent ones are kept, and
# a restart on them times recovery).
depth_j=$(timeout 900 "$bench" --scenario amqp-depth --messages 1000000 --size 1024 $J --broker-pid "$junction_pid" | tail -1 || true)
depth_r=$(timeout 900 "$bench" --scenario amqp-depth --messages 1000000 --size 1024 $R --broker-pid "${rabbit_vm:-0}" | tail -1 || true)
fresh_junction
depth_jp=$(timeout 900 "$bench" --scenario amqp-depth --persistent --keep --messages 1000000 --size 1024 $J --broker-pid "$junction_pid" | tail -1 || true)
depth_rp=$(timeout 900 "$bench" --scenario amqp-depth --persistent --messages 1000000 --size 1024 $R --broker-pid "${rabbit_vm:-0}" | tail -1 || true)
fresh_junction keep
recovered_line=$(grep "storage recovered" "$work/junction-fresh.log" | tail -1 || true)
recovered_rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$junction_pid/status")
fi

# Memory ceiling: both brokers get a 1 GiB high watermark (Junction in its configuration,
# RabbitMQ at run time, as an operator would). Mosquitto has no watermark; its
# max_queued_messages (100000 here) is its bound. Each Junction run is on a fresh process.
ceiling_lines=()
if want ceiling; then
  cp "$work/junction.toml" "$work/junction-ceiling.toml"
  printf '[memory]\nhigh_watermark_mib = 1024\n' >> "$work/junction-ceiling.toml"
  rabbitmqctl=/usr/lib/rabbitmq/bin/rabbitmqctl
  [ -x "$rabbitmqctl" ] || rabbitmqctl=rabbitmqctl
  HOME="$work/rabbit" "$rabbitmqctl" -q -n bench@localhost set_vm_memory_high_watermark absolute 1073741824 >&2
  C="--seconds $CEILING_SECS --size 1024"
  config=junction-ceiling.toml fresh_junction
  ceiling_lines+=("who=junction peer=R $(timeout 900 "$bench" --scenario amqp-slow-consumer $C $J --broker-pid "$junction_pid" 2>&1 | tail -1)")
  ceiling_lines+=("who=peer peer=R $(timeout 900 "$bench" --scenario amqp-slow-consumer $C $R --broker-pid "${rabbit_vm:-0}" 2>&1 | tail -1)")
  config=junction-ceiling.toml fresh_junction
  ceiling_lines+=("who=junction peer=M $(timeout 900 "$bench" --scenario mqtt-stalled-subscriber $C $J --broker-pid "$junction_pid" 2>&1 | tail -1)")
  ceiling_lines+=("who=peer peer=M $(timeout 900 "$bench" --scenario mqtt-stalled-subscriber $C $M --broker-pid "$mosquitto_pid" 2>&1 | tail -1)")
  ceiling_lines+=("who=peer peer=R $(timeout 900 "$bench" --scenario mqtt-stalled-subscriber $C $R --broker-pid "${rabbit_vm:-0}" 2>&1 | tail -1)")
  printf '%s\n' "${ceiling_lines[@]}" >&2
fi
printf '%s\n' "${ceiling_lines[@]}" > "$work/ceiling.txt"

# Worst-case topic patterns: 8 '#' words bound against a 40-word key (the hardening issue's
# example). RabbitMQ gets one try of TOPIC_PEER_SECS; what it routed by then is reported.
topic_j="" topic_r=""
if want topic; then
  T="--scenario topic-worst --messages $((20000*SCALE)) --size 16 --hashes 8 --words 40"
  topic_j=$(timeout 600 "$bench" $T $J 2>&1 | tail -1 || true)
  topic_r=$(timeout "${TOPIC_PEER_SECS:-60}" "$bench" $T $R 2>&1 | tail -1 || true)
  echo "topic junction: $topic_j" >&2; echo "topic rabbitmq: $topic_r" >&2
fi

kill -TERM "$junction_pid"; wait "$junction_pid" || true

python3 - "$results" "$idle_j" "$idle_m" "$fsync_line" "$depth_j" "$depth_r" "$depth_jp" "$depth_rp" "$recovered_line" "$recovered_rss" "$work/ceiling.txt" "$topic_j" "$topic_r" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "rate" not in kv:
        continue
    key = (kv["scenario"], kv.get("size", ""), kv["peer"])
    r = rows.setdefault(key, {"junction": [], "peer": [], "jp99": [], "pp99": [], "loss": 0})
    who = kv["who"]
    r[who].append(float(kv["rate"]))
    r["jp99" if who == "junction" else "pp99"].append(float(kv["p99_us"]))
    r["loss"] += int(kv.get("lost", 0)) + int(kv.get("dup", 0))
if rows:
    print("| scenario | size | peer | Junction msg/s | peer msg/s | ratio | Junction p99 µs | peer p99 µs |")
    print("|---|---|---|---|---|---|---|---|")
for (name, size, peer), r in rows.items():
    if not r["junction"] or not r["peer"]:
        continue
    j, p = statistics.median(r["junction"]), statistics.median(r["peer"])
    if p == 0:
        continue
    pname = {"R": "RabbitMQ", "M": "Mosquitto"}[peer]
    print(f"| {name} | {size} | {pname} | {j:,.0f} | {p:,.0f} | {j / p:.2f}× | "
          f"{statistics.median(r['jp99']):,.0f} | {statistics.median(r['pp99']):,.0f} |")
for label, line in (("Junction", sys.argv[2]), ("Mosquitto", sys.argv[3])):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "bytes_per_connection" in kv:
        print(f"\nIdle MQTT connections ({label}): {float(kv['bytes_per_connection']):,.0f} bytes each at {kv['connections']}")
for label, line in (("Junction", sys.argv[5]), ("RabbitMQ", sys.argv[6]),
                    ("Junction", sys.argv[7]), ("RabbitMQ", sys.argv[8])):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if "rss_growth" in kv:
        kind = "persistent" if kv.get("persistent") == "yes" else "transient"
        print(f"\nQueue depth ({label}): {int(kv['messages']):,} {kind} {kv['size']} B messages queued "
              f"in {float(kv['secs']):.1f} s, resident memory +{int(kv['rss_growth']) / 2**30:.2f} GiB "
              f"({float(kv['bytes_per_message']):,.0f} bytes each)")
kv = dict(re.findall(r"(\w+)=(\S+)", sys.argv[9]))
if "ms" in kv and sys.argv[10]:
    print(f"\nJunction restart on them: {int(kv['messages']):,} messages recovered in {int(kv['ms']):,} ms, "
          f"resident memory afterwards {int(sys.argv[10]) / 2**20:,.0f} MiB")
kv = dict(re.findall(r"(\w+)=(\S+)", sys.argv[4]))
if "fsyncs" in kv:
    total = int(kv["published"]) + int(kv["elided"])
    if total:
        print(f"\nJunction message log over the whole run: {total:,} persistent messages, "
              f"{int(kv['fsyncs']):,} fsyncs = {int(kv['fsyncs']) * 1e6 / total:,.0f} per million "
              f"({int(kv['elided']):,} settled before reaching the disk)")
ceiling = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(sys.argv[11])]
ceiling = [kv for kv in ceiling if "rss_peak" in kv]
if ceiling:
    print("\n| memory ceiling (1 GiB watermark) | broker | published msg/s | resident before → peak MiB | delivered | confirmed but lost |")
    print("|---|---|---|---|---|---|")
    for kv in ceiling:
        who = "Junction" if kv["who"] == "junction" else {"R": "RabbitMQ", "M": "Mosquitto"}[kv["peer"]]
        lost = kv["lost"] if kv["scenario"] == "amqp-slow-consumer" else "n/a (QoS 0)"
        print(f"| {kv['scenario']} | {who} | {float(kv['publish_rate']):,.0f} | "
              f"{int(kv['rss_before']) >> 20} → {int(kv['rss_peak']) >> 20} | {int(kv['delivered']):,} | {lost} |")
tj = dict(re.findall(r"(\w+)=(\S+)", sys.argv[12]))
if "rate" in tj:
    tr = dict(re.findall(r"(\w+)=(\S+)", sys.argv[13]))
    peer = (f"RabbitMQ routed {int(tr['deliveries']):,} of {int(tr['messages']):,} "
            f"(gave up after {float(tr['secs']):.0f} s without a delivery)" if "rate" in tr
            else "RabbitMQ did not finish within the time it was given")
    print(f"\nWorst-case topic patterns ({tj['hashes']} '#' words, {tj['words']}-word key): Junction "
          f"{float(tj['rate']):,.0f} msg/s, {int(tj['deliveries']):,} of {int(tj['messages']):,} routed; {peer}")
PY
