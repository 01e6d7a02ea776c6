#!/usr/bin/env bash
# Thin wrapper: act as one hospital. Example:
#   Scripts/settle.sh --data-dir run/a --at 370211 --insured 410102 --amount 350.00
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(swift build --show-bin-path)/settlenet"
[ -x "$bin" ] || Scripts/setup.sh
exec "$bin" settle "$@"
