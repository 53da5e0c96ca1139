#!/usr/bin/env bash
# A cost figure that machine noise does not move: instructions Junction executes per delivered
# message, counted by valgrind's callgrind. Each workload runs twice on a fresh broker, with N
# and 2N messages; (I(2N) - I(N)) / N removes start-up and idle costs.
#
#   bash tests/bench/instructions.sh          # N=20000 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
N=${N:-20000}
# The broker binary to count (default: this checkout's release build); set it to compare builds.
JUNCTION=${JUNCTION:-$root/target/release/junction}
command -v valgrind >/dev/null || {
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
}
cargo build --release -q -p junction-gateway --bin junction
cargo build --release -q -p junction-tests --bin junction-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wait_port() {
  for _ in $(seq 1 1200); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

# Total instructions of one broker run serving `scenario` with `messages`.
count() {
  local scenario=$1 messages=$2 out="$work/cg.$1.$2"
  cat > "$work/j.toml" <<TOML
data_dir = "$work/data-$scenario-$messages"
[listeners.amqp]
address = "127.0.0.1"
port = 5690
[listeners.stomp]
address = "127.0.0.1"
port = 61630
[listeners.mqtt]
address = "127.0.0.1"
port = 1895
[listeners.stomp_ws]
enabled = false
[listeners.mqtt_ws]
enabled = false
[listeners.management]
enabled = false
[listeners.prometheus]
enabled = false
TOML
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$JUNCTION" --config "$work/j.toml" --log-level warn 2>/dev/null &
  local pid=$!
  wait_port 5690; wait_port 1895
  "$root/target/release/junction-bench" --scenario "$scenario" --messages "$messages" \
    --amqp amqp://guest:guest@127.0.0.1:5690/%2f --mqtt 127.0.0.1:1895 >&2
  kill -TERM "$pid"; wait "$pid" || true
  grep -h '^summary:' "$out"* | awk '{s+=$2} END {print s}'
}

for w in "amqp-transient 1" "mqtt-qos1-pairs 100"; do
  read -r scenario consumers <<< "$w"
  n=$N
  [ "$scenario" = mqtt-qos1-pairs ] && n=$((N / 100))
  one=$(count "$scenario" "$n")
  two=$(count "$scenario" $((2 * n)))
  deliveries=$((n * consumers))
  echo "$scenario: $(( (two - one) / deliveries )) instructions per delivered message (N=$n per producer)"
done
