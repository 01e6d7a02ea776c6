#!/usr/bin/env bash
# Runs every test:
#   1. swift test: unit tests of each module and the integration suite that launches
#      Topologies/minimal.yaml as real processes (free ports, cleaned up even on failure);
#   2. the Python client of docs/PROTOCOL.md against a real cluster (pip installs pyzmq,
#      protobuf and grpcio-tools when missing), proving the page is enough to write a client.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
set +e
swift test 2>&1 | grep -vE "^warning: prohibited flag"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || exit "$status"
SETTLENET_BIN="$(swift build --show-bin-path)/settlenet" Scripts/python_client_check.sh
