#!/usr/bin/env bash
# Model-checks memsession's concurrency protocol with loom: every model, then every seeded bug
# (each must make its model fail). Prints per model the iterations explored and the time.
#
#   bash loom-tests/run.sh                          # the CI run: each model's own bound
#   LOOM_MAX_PREEMPTIONS=5 bash loom-tests/run.sh   # one preemption bound for every model
#   MEMSTORE_LOOM_EXHAUSTIVE=1 bash loom-tests/run.sh   # no bound at all (slow)
#
# Models are exhaustive unless they name a preemption bound: 17 of the 29 do (4 for eight of
# them, 3 for seven, 2 for two); see tests/models.rs and tests/ticker.rs, and DESIGN.md for what
# each model checks. Other loom variables (LOOM_LOG, LOOM_LOCATION, ...) pass through.
set -euo pipefail
cd "$(dirname "$0")"

# `--cfg memstore_loom` swaps memsession's facade for loom's primitives. RUSTFLAGS changes
# rebuild everything, so this gets a target dir of its own.
export RUSTFLAGS="--cfg memstore_loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${MEMSTORE_LOOM_TARGET_DIR:-$PWD/target}"
threads="${LOOM_TEST_THREADS:-2}"

start=$SECONDS
cargo fmt --check
cargo build --release --tests 2>&1 | tail -n 3
printf 'build: %ss\n' "$((SECONDS - start))"

for suite in models seeded_bugs ticker; do
    t=$SECONDS
    log="$CARGO_TARGET_DIR/loom-$suite.log"
    printf '\n--- %s (full log: %s)\n' "$suite" "$log"
    # Seeded bugs panic on purpose: their panic messages are in the full log.
    set +e
    cargo test --release --test "$suite" -- --nocapture --test-threads="$threads" 2>&1 \
        | tee "$log" | grep -E '^(model|seeded bug) |^test result|^error'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        tail -n 80 "$log"
        echo "loom $suite FAILED (rerun one test: cd loom-tests && RUSTFLAGS='--cfg memstore_loom' cargo test --release --test $suite NAME -- --nocapture)" >&2
        exit 1
    fi
    printf '%s: %ss\n' "$suite" "$((SECONDS - t))"
done
printf '\nloom total: %ss\n' "$((SECONDS - start))"
