#!/usr/bin/env bash
# Instructions per operation of memstore's hot paths under callgrind (see instructions.rs).
# Each phase's total less the fill-only run's, over its operation count. RUNS=3 repeats each
# phase (the store's random hash seed and skiplist heights move the figures a little).
set -euo pipefail
cd "$(dirname "$0")"
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }
cargo build --release --bin instructions 2>&1 | tail -n 1
bin="${CARGO_TARGET_DIR:-target}/release/instructions"
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for run in $(seq "${RUNS:-1}"); do
    base=$(count fill)
    for phase in find:300000 overwrite:200000 touch:200000 fresh:100000; do
        name=${phase%%:*} ops=${phase##*:}
        total=$(count "$name")
        echo "run $run  $name: $(( (total - base) / ops )) instructions per operation"
    done
done
