#!/usr/bin/env python3
"""A SettleNet hospital client in Python: one outpatient settlement (2207) over ZeroMQ.

This is the worked example of docs/PROTOCOL.md; everything it does is described there.

    pip install pyzmq protobuf grpcio-tools
    python3 Scripts/python_client.py --endpoint tcp://127.0.0.1:17107 \\
        --at 370211 --insured 410102 --amount-fen 35000

It acts as hospital --hospital-code (default H<at>00001) of county --at, connected to that
county's node at --endpoint, and settles a bill of --amount-fen fen for --psn-no (default: the
first person of --insured filed for off-site care, computed the way the network seeds its
synthetic population). It prints the answer as JSON, checks the amount identities and exits:

    0   settled, and every amount identity holds
    1   the network answered with a definite error (infcode -1, or a non-empty err_msg)
    2   outcome unknown: no answer within --timeout, or an SN-E3002 answer; send the same
        msgid again (--msgid) to learn the outcome, or reverse it (2208)
    3   settled, but an amount identity does not hold
    64  bad arguments, or the protobuf module could not be generated

The Python protobuf module is generated at run time from proto/settlenet/v1/settlenet.proto
with grpcio-tools (python -m grpc_tools.protoc), or with a `protoc` on PATH if grpcio-tools is
not installed; nothing generated is kept.
"""

import argparse
import importlib
import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PROTO_ROOT = REPO / "proto"
PROTO_FILE = "settlenet/v1/settlenet.proto"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))

EXIT_SETTLED, EXIT_REFUSED, EXIT_NO_ANSWER, EXIT_IDENTITY, EXIT_USAGE = 0, 1, 2, 3, 64


# --- The protobuf module, generated at run time -------------------------------------------

def load_protocol(proto_root=DEFAULT_PROTO_ROOT):
    """Generates settlenet_pb2 from the .proto into a temporary directory and imports it."""
    proto_root = Path(proto_root)
    if not (proto_root / PROTO_FILE).is_file():
        raise RuntimeError(f"{proto_root / PROTO_FILE} not found (give --proto-root)")
    out = tempfile.mkdtemp(prefix="settlenet_pb_")
    try:
        args = [f"-I{proto_root}", f"--python_out={out}", str(proto_root / PROTO_FILE)]
        if importlib.util.find_spec("grpc_tools") is not None:
            command = [sys.executable, "-m", "grpc_tools.protoc"]  # pip install grpcio-tools
        elif shutil.which("protoc") is not None:
            command = ["protoc"]
        else:
            raise RuntimeError("neither grpcio-tools (pip install grpcio-tools) nor protoc is available")
        status = subprocess.call(command + args)
        if status != 0:
            raise RuntimeError(f"protoc failed on {PROTO_FILE} (status {status})")
        sys.path.insert(0, out)
        try:
            # settlenet/ and settlenet/v1/ have no __init__.py: implicit namespace packages.
            return importlib.import_module("settlenet.v1.settlenet_pb2")
        finally:
            sys.path.remove(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the module is loaded; its file is not needed


# --- The synthetic population (SyntheticPopulation.swift) ---------------------------------

MASK64 = (1 << 64) - 1


def splitmix64(seed):
    """SplitMix64, as the network's SyntheticPopulation uses it."""
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def psn_no(county, index):
    """Person number: the insured county's code + a 14-digit serial (20 characters)."""
    return f"{county}{index:014d}"


def synthetic_person(county, index):
    """(psn_no, insutype, initial balance in fen, filed for off-site care) of person `index`."""
    draws = splitmix64(int(county) * 1_000_003 + index)
    roll = next(draws) % 100
    insutype = "310" if roll < 55 else ("390" if roll < 97 else "340")
    balance = next(draws) % (20_000 if insutype == "390" else 800_000)
    filed = next(draws) % 10_000 < 9_500
    return psn_no(county, index), insutype, balance, filed


def first_person(county, filed=True, population=2000):
    """The first person of `county` who is (filed=True) or is not filed for off-site care:
    what `settlenet settle` picks without --psn-no (with --unfiled for filed=False)."""
    for index in range(population):
        number, _, _, is_filed = synthetic_person(county, index)
        if is_filed == filed:
            return number
    raise LookupError(f"county {county} has no {'filed' if filed else 'unfiled'} person")


# --- Building the request ------------------------------------------------------------------

def new_msgid(fixmedins_code, sequence=None):
    """Institution code (12) + yyyyMMddHHmmss in China Standard Time (14) + sequence (4)."""
    if sequence is None:
        sequence = random.randrange(10_000)
    stamp = datetime.now(CHINA_STANDARD_TIME).strftime("%Y%m%d%H%M%S")
    return f"{fixmedins_code}{stamp}{sequence % 10_000:04d}"


def composed_bill(total_fen):
    """A plausible breakdown (as settlenet settle makes it): 8% fully self-paid, 4% over the
    limit, 6% pre-self-paid, the rest in scope. Integer fen, so the parts add up exactly."""
    fulamt = total_fen * 8 // 100
    overlmt = total_fen * 4 // 100
    preself = total_fen * 6 // 100
    return {
        "medfee_sumamt": total_fen,
        "fulamt_ownpay_amt": fulamt,
        "overlmt_selfpay": overlmt,
        "preselfpay_amt": preself,
        "inscp_scp_amt": total_fen - fulamt - overlmt - preself,
    }


def settlement_request(pb, *, at, insured, hospital_code, psn, amount_fen, msgid, use_account=True):
    request = pb.Request(
        infno="2207",                       # outpatient settlement
        msgid=msgid,
        mdtrtarea_admvs=at,                 # place of treatment: the county node we talk to
        insuplc_admdvs=insured,             # where the person is insured: the route's target
        infver="V1.0",
        opter_type="1",
        opter="python",
        opter_name="python client",
        inf_time=datetime.now(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M:%S"),
        fixmedins_code=hospital_code,
        fixmedins_name="",
    )
    request.settlement.psn_no = psn         # setting a field of the oneof selects it
    request.settlement.mdtrt_id = "MDT" + msgid[-18:]
    request.settlement.med_type = "11"      # outpatient
    for field, value in composed_bill(amount_fen).items():
        setattr(request.settlement, field, value)
    request.settlement.acct_used_flag = use_account
    return request


# --- Talking to the node -------------------------------------------------------------------

def call(pb, endpoint, request, timeout_s, socket_type="dealer"):
    """Sends `request` and returns its Response, or None when no answer came in time."""
    import zmq

    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER if socket_type == "dealer" else zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        body = request.SerializeToString()
        if socket_type == "dealer":
            sock.send_multipart([b"", b"req", body])   # DEALER: we write the empty delimiter
        else:
            sock.send_multipart([b"req", body])        # REQ adds the delimiter itself
        deadline = time.monotonic() + timeout_s
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not sock.poll(left_ms, zmq.POLLIN):
                return None
            frames = sock.recv_multipart()
            if socket_type == "dealer":
                if len(frames) != 3 or frames[0] != b"":
                    continue
                frames = frames[1:]
            if len(frames) != 2 or frames[0] != b"rsp":
                continue
            response = pb.Response()
            response.ParseFromString(frames[1])
            # req_msgid echoes our msgid; answers to unparseable input (SN-E1001/1002/1007)
            # carry an empty req_msgid, and on this one-request socket they are ours too.
            if response.req_msgid in (request.msgid, ""):
                return response
    finally:
        sock.close()


# --- Reading the answer --------------------------------------------------------------------

def to_json_dict(message):
    """The JSON mapping `settlenet settle` prints: proto field names, int64 as JSON numbers,
    fields at their default (0, "", false) left out, except infcode (which has presence)."""
    out = {}
    for field, value in message.ListFields():
        out[field.name] = to_json_dict(value) if field.message_type is not None else value
    return out


def is_success(response):
    # infcode 0 with a non-empty err_msg is an error too (some provinces answer like that).
    return response.HasField("infcode") and response.infcode == 0 and response.err_msg == ""


def identity_violations(o):
    """AmountIdentities.violations (SplitCalculator.swift) on a SettlementOutput."""
    problems = []
    if o.medfee_sumamt != o.fulamt_ownpay_amt + o.overlmt_selfpay + o.preselfpay_amt + o.inscp_scp_amt:
        problems.append("medfee_sumamt != fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt")
    components = o.hifp_pay + o.hifmi_pay + o.hifob_pay + o.cvlserv_pay + o.maf_pay + o.oth_pay
    # With acct_pay_in_fund the insured province counts the personal account inside the fund.
    expected_fund = components + (o.acct_pay if o.acct_pay_in_fund else 0)
    if o.fund_pay_sumamt != expected_fund:
        problems.append("fund_pay_sumamt != sum of fund components" + (" + acct_pay" if o.acct_pay_in_fund else ""))
    if o.psn_part_amt != o.acct_pay + o.psn_cash_pay:
        problems.append("psn_part_amt != acct_pay + psn_cash_pay")
    if o.medfee_sumamt != components + o.psn_part_amt + o.hosp_part_amt:
        problems.append("medfee_sumamt != fund_pay_sumamt" + (" - acct_pay" if o.acct_pay_in_fund else "")
                        + " + psn_part_amt + hosp_part_amt")
    amounts = [o.medfee_sumamt, o.fulamt_ownpay_amt, o.overlmt_selfpay, o.preselfpay_amt, o.inscp_scp_amt,
               o.act_pay_dedc, o.hifp_pay, o.hifob_pay, o.acct_pay, o.psn_cash_pay, o.hosp_part_amt, o.balc]
    if any(amount < 0 for amount in amounts):
        problems.append("an amount is negative")
    return problems


# --- Command line --------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def county_code(text):
    if len(text) != 6 or not text.isdigit():
        raise argparse.ArgumentTypeError(f"a 6-digit division code, not {text!r}")
    return text


def parse_args(argv):
    parser = Parser(description="Send one outpatient settlement (2207) to a SettleNet county node.")
    parser.add_argument("--endpoint", required=True, help="the county node's ROUTER, e.g. tcp://127.0.0.1:17107")
    parser.add_argument("--at", required=True, type=county_code, help="county where the hospital sits (mdtrtarea_admvs)")
    parser.add_argument("--insured", required=True, type=county_code, help="county where the person is insured (insuplc_admdvs)")
    parser.add_argument("--psn-no", help="person number (default: the first filed person of --insured)")
    parser.add_argument("--amount-fen", type=int, default=35_000, help="bill total in fen (default 35000 = 350.00 yuan)")
    parser.add_argument("--hospital-code", help="fixmedins_code (default H<at>00001)")
    parser.add_argument("--msgid", help="send with this msgid (repeat one to get its original answer)")
    parser.add_argument("--no-account", action="store_true", help="do not pay from the personal account")
    parser.add_argument("--socket", choices=["dealer", "req"], default="dealer", help="ZeroMQ socket type")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer (default 15)")
    parser.add_argument("--population", type=int, default=2000, help="persons per county, to pick --psn-no (default 2000)")
    parser.add_argument("--proto-root", default=str(DEFAULT_PROTO_ROOT), help="directory holding settlenet/v1/settlenet.proto")
    args = parser.parse_args(argv)
    if args.amount_fen <= 0:
        parser.error("--amount-fen must be a positive number of fen")
    args.hospital_code = args.hospital_code or f"H{args.at}00001"
    if len(args.hospital_code) != 12 or not args.hospital_code.startswith("H" + args.at):
        parser.error(f"--hospital-code must be H + {args.at} + a 5-digit serial, not {args.hospital_code!r}")
    if args.psn_no is None:
        args.psn_no = first_person(args.insured, True, args.population)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        pb = load_protocol(args.proto_root)
    except Exception as error:  # noqa: BLE001 - any generation or import problem
        print(f"cannot load the protocol: {error}", file=sys.stderr)
        return EXIT_USAGE

    msgid = args.msgid or new_msgid(args.hospital_code)
    request = settlement_request(pb, at=args.at, insured=args.insured, hospital_code=args.hospital_code,
                                 psn=args.psn_no, amount_fen=args.amount_fen, msgid=msgid,
                                 use_account=not args.no_account)
    print(f"sending 2207 msgid {msgid} to {args.endpoint}: {args.at} -> {args.insured}, "
          f"psn_no {args.psn_no[:6]}{'*' * (len(args.psn_no) - 6)}, {args.amount_fen} fen", file=sys.stderr)

    response = call(pb, args.endpoint, request, args.timeout, args.socket)
    if response is None:
        print(f"no answer within {args.timeout} s for msgid {msgid}: outcome unknown", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(to_json_dict(response), ensure_ascii=False, separators=(",", ":")))

    if not is_success(response):
        if response.err_code == "SN-E3002":  # a tier gave up waiting: indefinite
            print(f"outcome unknown: {response.err_msg}; resend msgid {msgid} to learn it", file=sys.stderr)
            return EXIT_NO_ANSWER
        print(f"refused: {response.err_code or '-'} {response.err_msg}", file=sys.stderr)
        return EXIT_REFUSED
    if response.WhichOneof("output") != "settlement":
        print("answer has infcode 0 but no settlement output", file=sys.stderr)
        return EXIT_IDENTITY
    out = response.settlement
    problems = identity_violations(out)
    if out.psn_no != args.psn_no or out.medfee_sumamt != args.amount_fen:
        problems.append("psn_no or medfee_sumamt differ from the request's")
    if problems:
        for problem in problems:
            print(f"amount identity violated: {problem}", file=sys.stderr)
        return EXIT_IDENTITY
    print(f"settled: setl_id {out.setl_id}, fund {out.fund_pay_sumamt} fen "
          f"(acct_pay_in_fund {str(out.acct_pay_in_fund).lower()}), account {out.acct_pay}, "
          f"cash {out.psn_cash_pay}, balance after {out.balc}; amount identities hold", file=sys.stderr)
    return EXIT_SETTLED


if __name__ == "__main__":
    sys.exit(main())
