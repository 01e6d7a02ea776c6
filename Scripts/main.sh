#!/usr/bin/env bash
# The main job: install what is needed, build, launch a cluster on the default topology
# (Topologies/minimal.yaml), run the default scenario (Scenarios/smoke.yaml), print the report,
# and shut the cluster down (also when a step fails). Reports land in run/smoke/.
# Exit code: the scenario's (0 passed, 99 a threshold failed; see `settlenet scenario run --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
exec "$(swift build --show-bin-path)/settlenet" scenario run Scenarios/smoke.yaml --out run/smoke "$@"
