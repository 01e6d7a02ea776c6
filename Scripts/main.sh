#!/usr/bin/env bash
# The main job: install what is needed, build, launch a cluster on the default topology
# (Topologies/minimal.yaml), settle one of each route class, reverse one, print the answers,
# and shut the cluster down (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
exec "$(swift build --show-bin-path)/settlenet" demo --topology Topologies/minimal.yaml "$@"
