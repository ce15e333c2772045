#!/usr/bin/env bash
# Fuzzes portvakt's parsers and checks with libFuzzer on stable Rust (docs/FUZZING.md).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]     # default: all, 60 s each
#
# For each target: runs `cargo fuzz run --sanitizer none` for SECONDS from the committed
# corpus (fuzz/corpus/TARGET), minimizes what it found back into that corpus (`cargo fuzz
# cmin`, by edges; the hand-written seed-* files stay), copies any crashing input to
# fuzz/regressions/TARGET/ (where `cargo test` replays it forever), and prints one Markdown
# row per target for docs/FUZZING.md:
# | target | seconds | CPU seconds | executions | exec/s | coverage (edges) | features | corpus | crashes |
#
# "seconds" is wall-clock time; "CPU seconds" is what the fuzzer process actually got (user +
# system), which is less when other work shares the machine (FUZZ_NICE=19 runs the fuzzer
# below it).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-all}
seconds=${2:-60}
all=(token jwks payload introspect path manifest policy assertion)
if [ "$target" = all ]; then
  targets=("${all[@]}")
elif [[ " ${all[*]} " == *" $target "* ]]; then
  targets=("$target")
else
  echo "unknown target '$target'; one of: ${all[*]} (or all)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked
fi

# Its own target directory: the fuzz build instruments everything, and must not thrash the
# workspace's.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
logs=fuzz/logs
mkdir -p "$logs"
rows=()
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  artifacts=fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$t"
  # Findings of an earlier, interrupted run go to the regressions now, so that this run's
  # count is its own.
  for old in "$artifacts"/*; do
    [ -e "$old" ] || continue
    cp "$old" "fuzz/regressions/$t/" && rm -f "$old"
  done
  log=$logs/$t.log
  echo "== $t: ${seconds}s" >&2
  set +e
  TIMEFORMAT='%U %S'
  { time nice -n "${FUZZ_NICE:-0}" cargo fuzz run --sanitizer none --fuzz-dir fuzz "$t" "$corpus" -- \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=16384 -timeout=10 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1; } 2>"$logs/$t.cpu"
  status=$?
  set -e
  crashes=0
  for crash in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
    [ -e "$crash" ] || continue
    cp "$crash" "fuzz/regressions/$t/"
    crashes=$((crashes + 1))
    echo "   FINDING: $crash (copied to fuzz/regressions/$t/)" >&2
  done
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    echo "cargo fuzz run $t failed (exit $status) without a crash artifact; see $log" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  # Keep only inputs that reach an edge no other kept input reaches (-use_counters=0: edges,
  # not hit counts), so the committed corpus stays small enough for `cargo test` to replay.
  # The hand-written seeds (seed-*) are kept whatever cmin thinks of them: they document
  # what each target is meant to reach.
  seeds=$(mktemp -d)
  cp "$corpus"/seed-* "$seeds"/ 2>/dev/null || true
  cargo fuzz cmin --sanitizer none --fuzz-dir fuzz "$t" "$corpus" -- -use_counters=0 \
    >"$logs/$t.cmin.log" 2>&1 || true
  cp "$seeds"/* "$corpus"/ 2>/dev/null || true
  rm -rf "$seeds"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  files=$(find "$corpus" -type f | wc -l)
  cpu=$(awk '{ printf "%d", $1 + $2 }' "$logs/$t.cpu" 2>/dev/null || true)
  rows+=("| $t | $seconds | ${cpu:-?} | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $files | $crashes |")
done
echo "| target | seconds | CPU seconds | executions | exec/s | coverage (edges) | features | corpus | crashes |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
