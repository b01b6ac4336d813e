#!/usr/bin/env bash
# The candidate entry of shared/bench/run.sh:
#   bench/bids.sh QUERY INPUT OUTDIR
# Runs the bench query QUERY (q1, q2) with Weir over the NDJSON file INPUT and
# writes the result lines into OUTDIR/part-N.txt. q1 and q2 run through the
# Rust WebAssembly functions of udf-examples/ (currency, auction-filter,
# project). The first call builds the weir binary and the components
# (WEIR_BENCH_REBUILD=1 forces a rebuild); later calls only run.
#
# Knobs: WEIR_PARALLELISM (default: number of CPUs), WEIR_TARGET_DIR
# (default ~/.cache/weir-target).
set -euo pipefail
if [[ $# -ne 3 ]]; then
    echo "usage: bench/bids.sh QUERY INPUT OUTDIR    (QUERY: q1 q2)" >&2
    exit 2
fi
query=$1 input=$2 outdir=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WEIR_TARGET_DIR=${WEIR_TARGET_DIR:-$HOME/.cache/weir-target}
weir=$WEIR_TARGET_DIR/release/weir
udfs=$root/udf-examples/dist
if [[ ${WEIR_BENCH_REBUILD:-0} == 1 || ! -x $weir || ! -f $udfs/currency@1.wasm ]]; then
    echo "bench/bids.sh: building weir and the example functions (first call)" >&2
    CARGO_TARGET_DIR=$WEIR_TARGET_DIR cargo build --quiet --release -p weir-runtime --manifest-path "$root/Cargo.toml"
    "$root/scripts/build-udfs" >/dev/null
fi
parallelism=${WEIR_PARALLELISM:-$(nproc)}
input=$(cd "$(dirname "$input")" && pwd)/$(basename "$input")
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# The functions parse the JSON themselves (and refuse what is not a bid), so
# the source hands them raw lines.
source="file: { path: \"$input\", format: lines }"
case $query in
    q1) steps="  - map: { udf: currency@1 }" ;;
    q2) steps="  - filter: { udf: auction-filter@1, params: { field: auction, modulo: 123 } }
  - map: { udf: project@1, params: { fields: \"auction,price\", format: csv } }" ;;
    *) echo "bench/bids.sh: unknown query $query (q1, q2)" >&2; exit 2 ;;
esac
manifest=$(mktemp -t "weir-bench-$query.XXXXXX.yaml")
trap 'rm -f "$manifest"' EXIT
cat >"$manifest" <<YAML
name: bench-$query
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
"$weir" run "$manifest" --udf-dir "$udfs"
