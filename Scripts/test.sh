#!/usr/bin/env bash
# Runs every test:
#   1. swift test (pip installs junitparser, prometheus_client and kubernetes-validate, apt
#      installs systemd, when missing: they check the JUnit files, the metrics and the exports): unit
#      tests of each module, and integration suites that launch
#      Topologies/minimal.yaml as real processes (free ports, cleaned up even on failure) and run
#      scenarios end to end through the command line;
#   2. a short fuzz pass of the frame codec and the YAML loaders (Scripts/fuzz.sh, about 60 s
#      after its build);
#   3. the Python client of docs/PROTOCOL.md against a real cluster (pip installs pyzmq,
#      protobuf and grpcio-tools when missing): the page is enough to write a client;
#   4. the smoke scenario's report.html in real headless Chromium (apt installs chromium when
#      missing): it renders and its charts have data; then a second run's, with the first as its
#      --baseline, drawn beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
# The tests read some of what SettleNet writes with other tools: JUnit XML with junitparser, the
# nodes' metrics with prometheus_client's parser, the Kubernetes export with kubernetes-validate
# (its schemas bundled, offline), the systemd units with systemd-analyze.
python3 -c "import junitparser" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check junitparser
python3 -c "import prometheus_client" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check prometheus_client
python3 -c "import kubernetes_validate" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
if ! command -v systemd-analyze >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq systemd >/dev/null
fi
set +e
swift test 2>&1 | grep -vE "^warning: prohibited flag"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || exit "$status"
# A short fuzz pass (libFuzzer, 15 s a target, 60 s in all) from the committed seed corpus: Scripts/fuzz.sh.
Scripts/fuzz.sh --seconds 15
bin="$(swift build --show-bin-path)/settlenet"
SETTLENET_BIN="$bin" Scripts/python_client_check.sh
out=$(mktemp -d "${TMPDIR:-/tmp}/settlenet-html.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$bin" scenario run Scenarios/smoke.yaml --out "$out" > "$out/summary.txt" 2> "$out/progress.txt" \
  || { cat "$out/summary.txt" "$out/progress.txt"; exit 1; }
Scripts/check-html-report.sh "$out/report.html"
# Again, with the first run as its baseline: drawn dashed in every chart and compared in a table.
"$bin" scenario run Scenarios/smoke.yaml --out "$out/again" --baseline "$out/report.json" > "$out/summary-again.txt" \
  2> "$out/progress-again.txt" || { cat "$out/summary-again.txt" "$out/progress-again.txt"; exit 1; }
Scripts/check-html-report.sh "$out/again/report.html"
echo "all checks passed"
