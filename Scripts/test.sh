#!/usr/bin/env bash
# Runs every test: unit tests of each module and the integration suite that launches
# Topologies/minimal.yaml as real processes (on free ports, cleaned up even on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift test 2>&1 | grep -vE "^warning: prohibited flag"
exit "${PIPESTATUS[0]}"
