#!/usr/bin/env bash
# Fuzzes SettleNet's parsers with libFuzzer (Swift's -sanitize=fuzzer), from the seed corpus
# committed in Fuzz/corpus/<target>/:
#   frames    the frame codec, the protobuf decode and a node's envelope checks and routing
#   topology  the topology YAML loader
#   scenario  the scenario YAML loader
#   desk      the insured county's desk fed any sequence of settlements, reversals, corrections
#             and repeats, its invariants checked after each (repeats, amounts, setl_ids, balances)
# Usage: Scripts/fuzz.sh [--seconds N] [--seed S] [target ...]   (default: 20 s each, every
# target, a random seed; libFuzzer prints the seed it used, and --seed replays a run's choices)
# A crash, a broken invariant (precondition) or an input slower than 5 s fails the run, and
# libFuzzer leaves the input as crash-*, timeout-* or slow-unit-* in run/fuzz/<target>/.
# The build is kept apart, in .build-fuzz, instrumented for coverage, and linked with lld (gold
# stops with an internal error on these executables).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
seed=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    frames|topology|scenario|desk) targets+=("$1"); shift ;;
    *) echo "usage: $0 [--seconds N] [--seed S] [frames|topology|scenario|desk ...]" >&2; exit 64 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(frames topology scenario desk)
declare -A product=([frames]=FuzzFrames [topology]=FuzzTopology [scenario]=FuzzScenario [desk]=FuzzDesk)

for target in "${targets[@]}"; do
  echo "fuzz: building ${product[$target]}"
  SETTLENET_FUZZ=1 swift build -c release --build-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld \
    --product "${product[$target]}" 2>&1 | grep -vE "^warning: prohibited flag" | tail -1
done
status=0
for target in "${targets[@]}"; do
  work="run/fuzz/$target"
  mkdir -p "$work/corpus"
  echo "fuzz: $target for $seconds s (corpus Fuzz/corpus/$target, new inputs in $work/corpus)"
  # The first directory gets what libFuzzer finds; the committed seeds are read only.
  # Swift's own backtracer would take the crash from libFuzzer, which keeps the input.
  if ! (cd "$work" && SWIFT_BACKTRACE=enable=no "$OLDPWD/.build-fuzz/release/${product[$target]}" corpus "$OLDPWD/Fuzz/corpus/$target" \
        -max_total_time="$seconds" -seed="$seed" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 > fuzz.log 2>&1); then
    status=1
    tail -30 "$work/fuzz.log"
    echo "fuzz: $target FAILED (input and log in $work)"
  else
    runs=$(grep -E "^stat::number_of_executed_units" "$work/fuzz.log" | awk '{print $2}')
    echo "fuzz: $target passed: ${runs:-?} executions, no crash, hang or broken invariant"
  fi
done
exit $status
