#!/usr/bin/env bash
# Thin operator wrapper: `Scripts/cluster.sh up|status|logs|restart|down [options]`.
#   Scripts/cluster.sh up --topology Topologies/minimal.yaml --data-dir run/a [--base-port 18100]
#   Scripts/cluster.sh status --data-dir run/a
#   Scripts/cluster.sh logs --data-dir run/a --node 370211
#   Scripts/cluster.sh restart --data-dir run/a --node 370000
#   Scripts/cluster.sh down --data-dir run/a
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,7p' "$0"; exit 64; }
bin="$(swift build --show-bin-path)/settlenet"
[ -x "$bin" ] || Scripts/setup.sh
exec "$bin" cluster "$@"
