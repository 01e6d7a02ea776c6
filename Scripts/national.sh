#!/usr/bin/env bash
# The whole country on one machine: boots Topologies/national.yaml (3,226 nodes) packed into
# processes, measures the boot (time, memory, open files, nodes signed in), settles every route
# class between all 32 provincial units (`cluster probe`), and shuts everything down.
#   Scripts/national.sh                        # packed one process per province per tier
#   PACK=province Scripts/national.sh          # any `cluster up --pack` mode
#   Scripts/national.sh --scenario             # then also runs Scenarios/national-day.yaml on it
# Figures go to stdout and run/national/boot.json. Targets: up within 60 s, at most 8 GB.
set -euo pipefail
cd "$(dirname "$0")/.."

pack=${PACK:-province-tier}
data=${DATA:-run/national}
scenario=0
[ "${1:-}" = "--scenario" ] && scenario=1

SETTLENET_CONFIGURATION=release Scripts/setup.sh
settlenet=.build/release/settlenet
"$settlenet" cluster down --data-dir "$data" >/dev/null 2>&1 || true
rm -rf "$data"
mkdir -p "$data"
trap '"$settlenet" cluster down --data-dir "$data" >/dev/null 2>&1 || true' EXIT

available_before=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
started=$(date +%s.%N)
"$settlenet" cluster up --topology Topologies/national.yaml --data-dir "$data" --pack "$pack" --timeout 120
boot_seconds=$(python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 1))" "$(date +%s.%N)" "$started")
available_after=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)

# Per process: resident set, proportional set (shared pages split fairly), open descriptors.
pids=$(python3 -c "import json,sys; print(' '.join(sorted({str(n['pid']) for n in json.load(open(sys.argv[1]))['nodes']})))" "$data/cluster.json")
rss_kb=0; pss_kb=0; max_fds=0; processes=0
for pid in $pids; do
  processes=$((processes + 1))
  rss_kb=$((rss_kb + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
  pss_kb=$((pss_kb + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")))
  fds=$(ls "/proc/$pid/fd" | wc -l)
  [ "$fds" -gt "$max_fds" ] && max_fds=$fds
done
limit=$(ulimit -Hn)
signed_in=$("$settlenet" cluster status --data-dir "$data" --json | python3 -c "import json,sys; rows=json.load(sys.stdin); print(f\"{sum(r['signedIn'] for r in rows)} of {len(rows)}\")")

echo
echo "probing every route class between all provincial units:"
probe_status=0
"$settlenet" cluster probe --data-dir "$data" --json > "$data/probe.json" || probe_status=$?
probe=$(python3 - "$data/probe.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
parts = []
for route in ("local", "intra_city", "intra_province", "cross_province"):
    mine = [r for r in rows if r["route"] == route]
    parts.append(f"{route} {sum(r['settled'] for r in mine)}/{len(mine)}")
print(", ".join(parts))
PY
)

scenario_line=""
if [ "$scenario" = 1 ]; then
  echo
  echo "running Scenarios/national-day.yaml on the running cluster:"
  "$settlenet" scenario run Scenarios/national-day.yaml --attach "$data" --out "$data/national-day" || true
  scenario_line=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=r.get('scale',{}); print(f\"national-day: held {s.get('held_multiple','?')}x the national average ({s.get('held_rate_per_s','?')}/s)\")" "$data/national-day/report.json" 2>/dev/null || echo "national-day: no report")
fi

cat <<REPORT

national topology, packed $pack, on $(nproc) cores:
  boot (cluster up until every node signed in)  ${boot_seconds} s   (target <= 60 s)
  nodes signed in                               $signed_in
  processes                                     $processes
  memory, sum of RSS                            $((rss_kb / 1024)) MB
  memory, sum of PSS (shared pages split)       $((pss_kb / 1024)) MB   (target <= 8192 MB)
  memory, fall in MemAvailable                  $(((available_before - available_after) / 1024)) MB
  open files, most in one process              $max_fds of a limit of $limit
  route probe                                   $probe
$( [ -n "$scenario_line" ] && echo "  $scenario_line" )
REPORT
python3 - "$data/boot.json" <<PY
import json, sys
json.dump({"pack": "$pack", "boot_seconds": float("$boot_seconds"), "signed_in": "$signed_in", "processes": $processes,
           "rss_mb": $((rss_kb / 1024)), "pss_mb": $((pss_kb / 1024)),
           "mem_available_fall_mb": $(((available_before - available_after) / 1024)),
           "max_fds_per_process": $max_fds, "fd_limit": $limit, "probe": "$probe"}, open(sys.argv[1], "w"), indent=2)
PY
exit $probe_status
