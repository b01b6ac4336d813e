#!/usr/bin/env bash
# Events per second from topic to topic for the bench queries q1 (the
# `currency` WebAssembly map) and q5 (10 s tumbling count per auction),
# against the same queries over a file, on one machine:
#   bench/kafka.sh [EVENTS]     (default 1,000,000 bids)
# Starts its own in-memory broker (scripts/kafka, port 19099), loads the
# bids into a 4-partition topic keyed by auction, then runs each query with
# checkpoints every second: Kafka output exactly once (staged, published at
# each checkpoint), file output exactly once (part files committed at each
# checkpoint). The rate is Weir's own summary (records read / wall time).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
events=${1:-1000000}
port=19099
brokers=127.0.0.1:$port
export WEIR_TARGET_DIR=${WEIR_TARGET_DIR:-$HOME/.cache/weir-target}
weir=$WEIR_TARGET_DIR/release/weir
udfs=$root/udf-examples/dist
if [[ ! -x $weir || ! -f $udfs/currency@1.wasm ]]; then
    CARGO_TARGET_DIR=$WEIR_TARGET_DIR cargo build --quiet --release --workspace --bins --manifest-path "$root/Cargo.toml"
    "$root/scripts/build-udfs" rust >/dev/null
fi
work=$(mktemp -d)
trap '"$root/scripts/kafka" stop $port; rm -rf "$work"' EXIT
"$root/scripts/kafka" start $port
run=$(date +%s)
for t in bids q1 q5; do "$root/scripts/kafka" topic "$t-$run" 4 $port; done
cd "$work"

rate() { sed -n 's/.*records read (\([0-9]*\)\/s).*/\1/p' | tail -1; }

cat >load.yaml <<YAML
name: load
parallelism: 2
source: { bids: { seed: 42, count: $events } }
steps: [ { key_by: { field: /auction } } ]
sink: { kafka: { brokers: "$brokers", topic: bids-$run, delivery: at_least_once } }
YAML
cat >file.yaml <<YAML
name: file
source: { bids: { seed: 42, count: $events } }
sink: { file: { path: bids.ndjson } }
YAML
echo "load:  $("$weir" run load.yaml 2>&1 | rate) bids/s produced to Kafka (at least once, 4 partitions)"
"$weir" run file.yaml -q >/dev/null 2>&1

query() { # NAME SOURCE SINK
    local steps
    case $1 in
        q1) steps="[ { map: { udf: currency@1, params: { rate: 0.908 } } } ]" ;;
        q5) steps="[ { key_by: { field: /auction } }, { window: { tumbling: 10s }, aggregate: { builtin: count, output: csv } } ]" ;;
    esac
    cat >"$1.yaml" <<YAML
name: $1
parallelism: 2
source:
  $2
  event_time: { field: /ts }
  watermark: { max_out_of_orderness: 2s }
steps: $steps
sink: $3
checkpoint: { dir: ckpt-$1-$RANDOM, interval: 1s }
state: { backend: memory }
YAML
    "$weir" run "$1.yaml" --udf-dir "$udfs" 2>&1 | rate
}
for q in q1 q5; do
    kafka=$(query $q "kafka: { brokers: \"$brokers\", topic: bids-$run, bounded: true }" "{ kafka: { brokers: \"$brokers\", topic: $q-$run } }")
    file=$(query $q "file: { path: bids.ndjson, format: json }" "{ file: { dir: out-$q } }")
    echo "$q:    topic -> topic $kafka events/s    file -> files $file events/s"
done
