#!/usr/bin/env bash
# Usage: Scripts/check-html-report.sh REPORT_HTML
#
# Proves a report.html draws its charts in a real browser: loads it in headless Chromium
# (installs the Debian package `chromium` when missing), dumps the DOM after the scripts ran and
# checks that
#   - <body> has data-rendered="true" (the page's script ran to its end);
#   - there are 5 <svg class="chart"> elements (rate, latency, errors, routes, ticket backlog; 2 more
#     with the network's figures: time per hop by pair of tiers, and the drawing of the network
#     with its route paths; 3 more with uploads: dirty-rate trend, by tier, by rule),
#     each with data-points > 0, except the errors chart,
#     which may have 0 when the embedded report has no errors;
#   - every time-series chart has a path/polyline of class "series" with a non-empty d/points;
#   - with a baseline (`--baseline`: #baseline-data in the page), every time-series chart that
#     the baseline has data for also draws it (class "series baseline"), the route chart has its
#     bars, and the table "Against the baseline" has a row per headline figure.
# Also writes a screenshot beside the report (REPORT.png, 1280x2400) for people to look at.
# Prints one PASS or FAIL line; exits non-zero on failure.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 REPORT_HTML" >&2
    exit 2
fi
report="$1"
if [ ! -f "$report" ]; then
    echo "FAIL: $report: no such file"
    exit 1
fi
report="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
screenshot="${report%.html}.png"

browser="$(command -v chromium || true)"
if [ -z "$browser" ]; then
    echo "chromium not found: installing the Debian package" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    browser="$(command -v chromium)"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A throwaway profile so runs do not share state (or a lock) with each other.
flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-extensions
       --user-data-dir="$work/profile" --virtual-time-budget=5000)

if ! timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$report" >"$work/dom.html" 2>"$work/chromium.log"; then
    tail -20 "$work/chromium.log" >&2
    echo "FAIL: $report: chromium could not load the page"
    exit 1
fi
if ! timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,2400 \
        --screenshot="$screenshot" "file://$report" >/dev/null 2>>"$work/chromium.log"; then
    echo "warning: no screenshot (see chromium's messages below)" >&2
    tail -5 "$work/chromium.log" >&2
fi

status=0
python3 - "$work/dom.html" "$report" <<'PY' || status=$?
import json
import sys
from html.parser import HTMLParser

dom_path, report_path = sys.argv[1], sys.argv[2]


class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body = None
        self.charts = []          # [{"attrs": {...}, "series": [{...}], "texts": [...]}]
        self.current = None       # the chart being read
        self.depth = 0            # <svg> nesting inside the current chart
        self.in_data = False
        self.data = ""
        self.in_baseline = False
        self.baseline = ""
        self.baseline_rows = 0
        self.in_baseline_table = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "script" and a.get("id") == "report-data":
            self.in_data = True
        if tag == "script" and a.get("id") == "baseline-data":
            self.in_baseline = True
        if tag == "table" and "baseline" in (a.get("class") or "").split():
            self.in_baseline_table = True
        if tag == "tr" and self.in_baseline_table:
            self.baseline_rows += 1
        if tag == "svg" and self.current is None and "chart" in (a.get("class") or "").split():
            self.current = {"attrs": a, "series": []}
            self.depth = 0
        if self.current is not None:
            if tag == "svg":
                self.depth += 1
            if tag in ("path", "polyline") and "series" in (a.get("class") or "").split():
                self.current["series"].append(a)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_data = False
            self.in_baseline = False
        if tag == "table":
            self.in_baseline_table = False
        if self.current is not None and tag == "svg":
            self.depth -= 1
            if self.depth == 0:
                self.charts.append(self.current)
                self.current = None

    def handle_data(self, data):
        if self.in_data:
            self.data += data
        if self.in_baseline:
            self.baseline += data


dom = Dom()
with open(dom_path, encoding="utf-8") as f:
    dom.feed(f.read())

problems = []
if dom.body is None:
    problems.append("no <body> in the dumped DOM")
else:
    if dom.body.get("data-render-error"):
        problems.append("the page's script failed: " + dom.body["data-render-error"])
    if dom.body.get("data-rendered") != "true":
        problems.append('<body> lacks data-rendered="true" (the chart script did not finish)')

try:
    report = json.loads(dom.data)
except ValueError as e:
    report = None
    problems.append("the embedded report-data is not JSON: %s" % e)
has_errors = bool(report and any((report.get("errors") or {}).get("by_code", {}).values()))

has_settlements = bool(report and (report.get("settlements") or {}).get("attempted", 0) > 0)
has_dirty = bool(report and report.get("dirty_data"))
has_network = bool(report and report.get("network"))
# The network adds time per hop and its drawing; uploads the dirty-rate trend, by tier and by rule.
expected_charts = 5 + (2 if has_network else 0) + (3 if has_dirty else 0)
if len(dom.charts) != expected_charts:
    problems.append("expected %d svg.chart elements, found %d" % (expected_charts, len(dom.charts)))
summary = []
for chart in dom.charts:
    a = chart["attrs"]
    name = a.get("data-chart") or a.get("id") or "?"
    raw = a.get("data-points")
    try:
        points = int(raw)
    except (TypeError, ValueError):
        problems.append("chart %s: data-points is %r (never set by the script)" % (name, raw))
        continue
    summary.append("%s=%d" % (name, points))
    may_be_empty = (name == "errors" and not has_errors) or (name in ("rate", "latency", "routes", "legs") and not has_settlements)
    if name == "network" and has_settlements:
        try:
            routes = int(a.get("data-routes"))
        except (TypeError, ValueError):
            routes = 0
        if routes < 1:
            problems.append("chart network: no route path drawn (data-routes=%r)" % a.get("data-routes"))
        else:
            summary.append("network routes=%d" % routes)
    if points <= 0 and not may_be_empty:
        problems.append("chart %s: data-points=%d" % (name, points))
    if a.get("data-kind") == "timeseries" and (has_settlements or name == "dirty-trend"):
        drawn = [s for s in chart["series"] if (s.get("d") or s.get("points") or "").strip()]
        if not drawn:
            problems.append("chart %s: no series path with a non-empty d/points" % name)
        else:
            summary.append("%s series=%d" % (name, len(drawn)))
if dom.baseline:
    try:
        baseline = json.loads(dom.baseline)
    except ValueError as e:
        baseline = None
        problems.append("the embedded baseline-data is not JSON: %s" % e)
    if baseline is not None:
        old_timeline = bool(baseline.get("timeline"))
        for chart in dom.charts:
            name = chart["attrs"].get("data-chart")
            if chart["attrs"].get("data-kind") != "timeseries" or not old_timeline or not has_settlements:
                continue
            dashed = [s for s in chart["series"] if "baseline" in (s.get("class") or "").split() and (s.get("d") or "").strip()]
            if not dashed:
                problems.append("chart %s: the baseline is not drawn (no path of class 'series baseline')" % name)
        if dom.baseline_rows < 2:
            problems.append("no table 'Against the baseline' with rows (found %d rows)" % dom.baseline_rows)
        else:
            summary.append("baseline table rows=%d" % (dom.baseline_rows - 1))
kinds = [c["attrs"].get("data-kind") for c in dom.charts]
if kinds.count("timeseries") < 2:
    problems.append("expected 2 time-series charts (data-kind=timeseries), found %d" % kinds.count("timeseries"))

if problems:
    for p in problems:
        print("  - " + p)
    print("FAIL: %s: %d problem(s)" % (report_path, len(problems)))
    sys.exit(1)
print("PASS: %s: rendered, %d charts (%s)" % (report_path, len(dom.charts), ", ".join(summary)))
PY
[ -f "$screenshot" ] && echo "screenshot: $screenshot"
exit $status
