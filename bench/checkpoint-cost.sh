#!/usr/bin/env bash
# What checkpointing costs a running query:
#   bench/checkpoint-cost.sh INPUT [QUERIES] [RUNS]
# Runs each query (default "q5") of bench/bids.sh over the NDJSON file INPUT
# RUNS times (default 3) without checkpoints (in-memory state, then RocksDB
# state), and with checkpoints every CHECKPOINT_INTERVAL (default 1s) on
# RocksDB state and on in-memory state;
# every checkpointed run starts from an empty checkpoint directory. Prints
# the median wall time and events/s of each, and checks that all outputs are
# identical.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: bench/checkpoint-cost.sh INPUT [QUERIES] [RUNS]" >&2
    exit 2
fi
input=$1 queries=${2:-q5} runs=${3:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d -t weir-ckpt-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
events=$(wc -l <"$input")
export CHECKPOINT_INTERVAL=${CHECKPOINT_INTERVAL:-1s}

# One run of bids.sh; prints its wall seconds.
one() {
    local query=$1 mode=$2 out=$3
    rm -rf "$out" "$work/ckpt"
    local start end
    start=$(date +%s.%N)
    case $mode in
        none) "$root/bench/bids.sh" "$query" "$input" "$out" 2>"$work/err" ;;
        rocksdb-only) WEIR_STATE_BACKEND=rocksdb "$root/bench/bids.sh" "$query" "$input" "$out" 2>"$work/err" ;;
        rocksdb | memory)
            CHECKPOINT_DIR=$work/ckpt WEIR_STATE_BACKEND=$mode \
                "$root/bench/bids.sh" "$query" "$input" "$out" 2>"$work/err" ;;
    esac || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
    grep -h "checkpoints:" "$work/err" >&2 || true
}

modes="none rocksdb-only rocksdb memory"
echo "| query | checkpoints | median s | events/s | vs none |"
echo "|---|---|---|---|---|"
for query in $queries; do
    # Interleaved (one run of every mode per round), so that a slow spell
    # of the machine hits every mode alike.
    declare -A times=()
    for ((i = 0; i < runs; i++)); do
        for mode in $modes; do
            times[$mode]+="$(one "$query" "$mode" "$work/out-$mode") "
        done
    done
    base=""
    for mode in $modes; do
        median=$(printf '%s\n' ${times[$mode]} | sort -n | sed -n "$(((runs + 1) / 2))p")
        cat "$work/out-$mode"/*.txt | LC_ALL=C sort >"$work/sorted-$mode"
        if [[ $mode == none ]]; then
            base=$median
        elif ! cmp -s "$work/sorted-none" "$work/sorted-$mode"; then
            echo "bench/checkpoint-cost.sh: $query output with $mode differs" >&2
            exit 1
        fi
        case $mode in
            none) label="none, memory state" ;;
            rocksdb-only) label="none, rocksdb state" ;;
            *) label="every $CHECKPOINT_INTERVAL, $mode state" ;;
        esac
        awk -v q="$query" -v l="$label" -v m="$median" -v n="$events" -v b="$base" \
            'BEGIN { printf "| %s | %s | %.2f | %.0f | %.2f |\n", q, l, m, n / m, b / m }'
    done
    unset times
done
