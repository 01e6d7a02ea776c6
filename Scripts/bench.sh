#!/usr/bin/env bash
# The benchmark: installs what is missing, builds settlenet in release, runs `settlenet bench`
# (transport baseline, cross-province settlements, latency at 1,000/s, memory, uploads) and
# leaves the table on stdout and the figures in run/bench/bench.json.
#   Scripts/bench.sh                    # everything, about 11 minutes (a first release build: 4 more)
#   Scripts/bench.sh --seconds 15       # any `settlenet bench` option passes through
#   Scripts/bench.sh --micro            # also the micro-benchmarks of the hot paths (ordo-one)
set -euo pipefail
cd "$(dirname "$0")/.."

micro=0
args=()
for argument in "$@"; do
  if [ "$argument" = "--micro" ]; then micro=1; else args+=("$argument"); fi
done

SETTLENET_CONFIGURATION=release Scripts/setup.sh
.build/release/settlenet bench --out run/bench "${args[@]}"

if [ "$micro" = 1 ]; then
  echo
  echo "micro-benchmarks of the hot paths (Benchmarks/HotPaths):"
  # Its own build directory: the benchmark tooling never enters the main build.
  SETTLENET_BENCHMARKS=1 swift package --build-path .build-bench --allow-writing-to-package-directory \
    benchmark --target HotPaths --no-progress
fi
