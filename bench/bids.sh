#!/usr/bin/env bash
# The candidate entry of shared/bench/run.sh:
#   bench/bids.sh QUERY INPUT OUTDIR
# Runs the bench query QUERY with Weir over the NDJSON file INPUT and writes
# the result lines into OUTDIR/part-N.txt:
#   q1, q2    through the Rust WebAssembly functions of udf-examples/
#             (currency; auction-filter and project)
#   q5, q7    event-time windows with builtin aggregates (count; max of price)
#   q5-wasm   q5 with the `count` WebAssembly aggregator
# The first call builds the weir binary and the components
# (WEIR_BENCH_REBUILD=1 forces a rebuild); later calls only run.
#
# Knobs: WEIR_PARALLELISM (default: number of CPUs), WEIR_TARGET_DIR
# (default ~/.cache/weir-target).
#
# Durability: with CHECKPOINT_DIR set, the query checkpoints there every
# CHECKPOINT_INTERVAL (default 1s) and OUTDIR receives only committed output;
# running the same command again after the process was killed resumes from
# the last complete checkpoint, so OUTDIR finally holds exactly the result.
# WEIR_STATE_BACKEND (memory | rocksdb; default rocksdb with checkpoints,
# memory without) picks where the window state lives.
set -euo pipefail
if [[ $# -ne 3 ]]; then
    echo "usage: bench/bids.sh QUERY INPUT OUTDIR    (QUERY: q1 q2 q5 q7 q5-wasm)" >&2
    exit 2
fi
query=$1 input=$2 outdir=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WEIR_TARGET_DIR=${WEIR_TARGET_DIR:-$HOME/.cache/weir-target}
weir=$WEIR_TARGET_DIR/release/weir
udfs=$root/udf-examples/dist
if [[ ${WEIR_BENCH_REBUILD:-0} == 1 || ! -x $weir || ! -f $udfs/currency@1.wasm ]]; then
    echo "bench/bids.sh: building weir and the example functions (first call)" >&2
    CARGO_TARGET_DIR=$WEIR_TARGET_DIR cargo build --quiet --release --workspace --bins --manifest-path "$root/Cargo.toml"
    "$root/scripts/build-udfs" rust >/dev/null
fi
parallelism=${WEIR_PARALLELISM:-$(nproc)}
input=$(cd "$(dirname "$input")" && pwd)/$(basename "$input")
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# q1/q2: the functions parse the JSON themselves (and refuse what is not a
# bid), so the source hands them raw lines. q5/q7: event time is the bid's
# `ts`, with watermarks 2 s behind (the spec's bounded out-of-orderness).
lines="file: { path: \"$input\", format: lines }"
events="file: { path: \"$input\", format: json }
  event_time: { field: /ts }
  watermark: { max_out_of_orderness: 2s }"
by_auction="  - key_by: { field: /auction }"
case $query in
    q1) source=$lines steps="  - map: { udf: currency@1 }" ;;
    q2) source=$lines steps="  - filter: { udf: auction-filter@1, params: { field: auction, modulo: 123 } }
  - map: { udf: project@1, params: { fields: \"auction,price\", format: csv } }" ;;
    q5) source=$events steps="$by_auction
  - window: { tumbling: 10s }
    aggregate: { builtin: count, output: csv }" ;;
    q7) source=$events steps="$by_auction
  - window: { sliding: { size: 60s, slide: 10s } }
    aggregate: { builtin: max, field: /price, output: csv }" ;;
    q5-wasm) source=$events steps="$by_auction
  - window: { tumbling: 10s }
    aggregate: { udf: count@1, params: { output: csv } }" ;;
    *) echo "bench/bids.sh: unknown query $query (q1, q2, q5, q7, q5-wasm)" >&2; exit 2 ;;
esac
manifest=$(mktemp -t "weir-bench-$query.XXXXXX.yaml")
trap 'rm -f "$manifest"' EXIT
cat >"$manifest" <<YAML
name: bench-${query/-/_}
parallelism: $parallelism
source:
  $source
steps:
$steps
sink:
  file: { dir: "$outdir" }
dead_letter:
  stderr: {}
YAML
if [[ -n ${CHECKPOINT_DIR:-} ]]; then
    mkdir -p "$CHECKPOINT_DIR"
    cat >>"$manifest" <<YAML
checkpoint:
  dir: "$(cd "$CHECKPOINT_DIR" && pwd)"
  interval: ${CHECKPOINT_INTERVAL:-1s}
state:
  backend: ${WEIR_STATE_BACKEND:-rocksdb}
YAML
elif [[ -n ${WEIR_STATE_BACKEND:-} ]]; then
    echo "state: { backend: $WEIR_STATE_BACKEND }" >>"$manifest"
fi
"$weir" run "$manifest" --udf-dir "$udfs"
