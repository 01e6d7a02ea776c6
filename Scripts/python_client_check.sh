#!/usr/bin/env bash
# End-to-end check of the Python example client (Scripts/python_client.py, docs/PROTOCOL.md).
#
# Starts a cluster of Topologies/minimal.yaml on a free base port, then with the Python client:
#   1. settles a cross-province outpatient bill (2207) at 370211 for the first person insured
#      in 410102 who is filed for off-site care (DEALER socket); amount identities must hold;
#   2. sends the same msgid again over a REQ socket: the original answer must come back;
#   3. settles for the first unfiled person of 410102: must be refused with SN-E2002;
#   4. checks that `settlenet settle` picks the same person the client computed.
# The cluster is always stopped (trap), also on failure or Ctrl-C. Exits non-zero on failure.
#
# Environment: SETTLENET_BIN (default .build/debug/settlenet), PYTHON (default python3).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SETTLENET_BIN:-$REPO/.build/debug/settlenet}
PYTHON=${PYTHON:-python3}
TOPOLOGY=$REPO/Topologies/minimal.yaml
CLIENT=$REPO/Scripts/python_client.py
AT=370211
INSURED=410102
AMOUNT_FEN=35000

say() { echo "[python_client_check] $*"; }
fail() { say "FAIL: $*"; exit 1; }

[ -x "$BIN" ] || fail "no settlenet binary at $BIN (build it, or set SETTLENET_BIN)"

if ! "$PYTHON" -c 'import zmq, google.protobuf, grpc_tools' >/dev/null 2>&1; then
    say "installing pyzmq, protobuf and grpcio-tools with pip"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check pyzmq protobuf grpcio-tools \
        || fail "pip install failed"
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/settlenet-pycheck.XXXXXX")
cleanup() {
    local status=$?
    trap - EXIT
    if [ -f "$DATA/cluster.json" ]; then
        "$BIN" cluster down --data-dir "$DATA" || { say "cluster down failed"; status=1; }
    fi
    if [ "$status" -eq 0 ]; then
        rm -rf "$DATA"
        say "PASS"
    else
        say "failed (status $status); node logs kept in $DATA/logs"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A base port with the next 64 ports free on 127.0.0.1, below Linux's ephemeral range.
free_base_port() {
    "$PYTHON" - <<'EOF'
import random, socket, sys
for _ in range(500):
    base = random.randrange(20000, 32000)
    sockets = []
    try:
        for port in range(base, base + 64):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no free base port found")
EOF
}

started=""
for attempt in 1 2 3; do
    BASE_PORT=$(free_base_port)
    say "cluster up on base port $BASE_PORT (data in $DATA)"
    if "$BIN" cluster up --topology "$TOPOLOGY" --data-dir "$DATA" --base-port "$BASE_PORT"; then
        started=yes
        break
    fi
    say "cluster up failed (attempt $attempt); trying another port"
done
[ -n "$started" ] || fail "cluster did not come up"

# The county node's endpoint, as the running cluster reports it.
ENDPOINT=$("$BIN" cluster status --data-dir "$DATA" --json | "$PYTHON" -c '
import json, sys
print(next(row["endpoint"] for row in json.load(sys.stdin) if row["node"] == sys.argv[1]))' "$AT")

# Persons, computed as the network seeds them (SyntheticPopulation.swift; docs/PROTOCOL.md).
person() {
    "$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import python_client as c
print(c.first_person(sys.argv[2], filed=(sys.argv[3] == "filed")))' "$REPO/Scripts" "$INSURED" "$1"
}
FILED=$(person filed)
UNFILED=$(person unfiled)
# Person numbers stay out of the CI log: division prefix only, as SettleNet itself prints them.
mask() { printf '%s%s' "${1:0:6}" "$(printf '%*s' $((${#1} - 6)) '' | tr ' ' '*')"; }
say "endpoint $ENDPOINT; first filed person of $INSURED: $(mask "$FILED"), first unfiled: $(mask "$UNFILED")"

# Reads one field of the JSON answer a run printed, e.g. `field "$OUT" settlement.setl_id`: the
# whole output (settle's, pretty-printed), else its last line (the client's, after its log).
field() {
    "$PYTHON" -c 'import json, sys
text = open(sys.argv[1]).read().strip()
try:
    value = json.loads(text)
except ValueError:
    value = json.loads(text.splitlines()[-1])
for key in sys.argv[2].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)' "$1" "$2"
}

OUT1=$DATA/settle.json OUT2=$DATA/replay.json OUT3=$DATA/unfiled.json OUT4=$DATA/swift.json

say "1. cross-province settlement $AT -> $INSURED over DEALER"
"$PYTHON" "$CLIENT" --endpoint "$ENDPOINT" --at "$AT" --insured "$INSURED" --psn-no "$FILED" \
    --amount-fen "$AMOUNT_FEN" --hospital-code "H${AT}00001" --timeout 20 >"$OUT1" \
    || fail "the client did not settle (exit $?)"
sed -E 's/("psn_no": ?")([0-9]{6})[0-9]{14}"/\1\2**************"/g' "$OUT1"
MSGID=$(field "$OUT1" req_msgid)
SETL_ID=$(field "$OUT1" settlement.setl_id)
[ ${#MSGID} -eq 30 ] || fail "msgid $MSGID is not 30 characters"
[ "$(field "$OUT1" settlement.clr_optins)" = "$INSURED" ] || fail "clr_optins is not $INSURED"

say "2. the same msgid again over REQ: the original answer must come back"
"$PYTHON" "$CLIENT" --endpoint "$ENDPOINT" --at "$AT" --insured "$INSURED" --psn-no "$FILED" \
    --amount-fen "$AMOUNT_FEN" --msgid "$MSGID" --socket req --timeout 20 >"$OUT2" \
    || fail "the replay failed (exit $?)"
[ "$(field "$OUT2" settlement.setl_id)" = "$SETL_ID" ] || fail "the replay got another setl_id: $(cat "$OUT2")"
[ "$(field "$OUT2" inf_refmsgid)" = "$(field "$OUT1" inf_refmsgid)" ] || fail "the replay got another inf_refmsgid"

say "3. a person not filed for off-site care must be refused with SN-E2002"
status=0
"$PYTHON" "$CLIENT" --endpoint "$ENDPOINT" --at "$AT" --insured "$INSURED" --psn-no "$UNFILED" \
    --amount-fen "$AMOUNT_FEN" --timeout 20 >"$OUT3" || status=$?
cat "$OUT3"
[ "$status" -eq 1 ] || fail "expected exit 1 for an unfiled person, got $status"
[ "$(field "$OUT3" err_code)" = "SN-E2002" ] || fail "expected err_code SN-E2002"

say "4. settlenet settle picks the person the client computed"
# settle masks the person number it prints: the prefix must match, and the account balance must
# continue from the one the client's settlement of that person left.
"$BIN" settle --data-dir "$DATA" --at "$AT" --insured "$INSURED" --amount 1.00 >"$OUT4" \
    || fail "settlenet settle failed: $(cat "$OUT4")"
# settle prints the interface's own shape: output.setlinfo, every field, zeros included.
[ "$(field "$OUT4" output.setlinfo.psn_no)" = "$(mask "$FILED")" ] || fail "settlenet settle printed $(field "$OUT4" output.setlinfo.psn_no), not $(mask "$FILED")"
BEFORE=$(field "$OUT1" settlement.balc) PAID=$(field "$OUT4" output.setlinfo.acct_pay) AFTER=$(field "$OUT4" output.setlinfo.balc)
[ "$PAID" -gt 0 ] && [ "$AFTER" -eq $((BEFORE - PAID)) ] \
    || fail "settlenet settle did not settle the client's person: balance $BEFORE, paid $PAID from the account, left $AFTER"
