import Foundation
import FuzzSupport
import SettlementCore
import SettlementModel

/// Any bytes as what arrives at a node: the frame codec (the seal, the kind, the protobuf body,
/// both ways of reading uploads) and then, for what decodes, a node's validation of the envelope
/// and its routing (`NodeMachine`) at a county, a city and the national node. Nothing may crash,
/// and a request is answered with a definite error or taken on, never both left out.
///
/// The first byte picks the frames' shape, the rest is the body:
///   0 a request, 1 an answer, 2 a request sealed with its checksum, 3 one sealed with the
///   input's last 8 bytes as checksum, 4 the bytes cut into frames at each 0xFF.
func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    var frames: [[UInt8]]
    switch bytes[0] % 5 {
    case 0: frames = [[], WireCodec.requestKind, body]
    case 1: frames = [[], WireCodec.responseKind, body]
    case 2: frames = WireCodec.sealed([[], WireCodec.requestKind, body])
    case 3: frames = [[], WireCodec.requestKind, Array(body.dropLast(8)), Array(body.suffix(8))]
    default: frames = body.split(separator: 0xFF, omittingEmptySubsequences: false).map(Array.init)
    }
    guard let unsealed = WireCodec.unsealed(frames[...]) else { return 0 }   // damaged: dropped
    for records in [WireCodec.UploadRecords.full, .keysOnly] {
        switch WireCodec.decode(unsealed, uploadRecords: records) {
        case .request(let request):
            for (node, peer) in Nodes.receivers {
                var machine = Nodes.machine(node)
                let directives = machine.receivedRequest(request, from: peer, nowMs: Nodes.nowMs)
                for case .answer(let answer, _, _) in directives {
                    check(answer.infcode == 0 || !answer.errCode.isEmpty, "a failure without an error code at \(node)")
                }
                _ = machine.tick(nowMs: Nodes.nowMs + 60_000)
            }
        case .response(let response):
            var machine = Nodes.machine(DivisionCode("370200")!)
            _ = machine.receivedResponse(response, from: .parent, nowMs: Nodes.nowMs)
        case .malformed(let code, _):
            check(!code.rawValue.isEmpty, "a malformed message without an error code")
        }
    }
    return 0
}

/// The minimal topology's tree, and who sends to each node fuzzed.
enum Nodes {
    static let nowMs: Int64 = 1_796_000_000_000
    static let routing = RoutingTable(nodes: [
        ("000000", Tier.national, nil), ("370000", .province, "000000"), ("410000", .province, "000000"),
        ("370200", .city, "370000"), ("370100", .city, "370000"), ("410100", .city, "410000"),
        ("370211", .county, "370200"), ("370202", .county, "370200"), ("370102", .county, "370100"),
        ("410102", .county, "410100"),
    ].map { (DivisionCode($0.0)!, $0.1, $0.2.flatMap { DivisionCode($0) }) })
    /// A hospital at the county, the county at its city, a province at the national node.
    static let receivers: [(DivisionCode, Peer)] = [
        (DivisionCode("370211")!, .downstream(Array("H37021100001".utf8))),
        (DivisionCode("370200")!, .downstream(Array("370211".utf8))),
        (DivisionCode("000000")!, .downstream(Array("370000".utf8))),
    ]

    /// A fresh copy for each input (a value: the copy is cheap), signed in to its parent so
    /// that requests get past the sign-in check to the envelope's.
    static func machine(_ id: DivisionCode) -> NodeMachine { signedIn[id]! }

    static let signedIn: [DivisionCode: NodeMachine] = {
        var machines: [DivisionCode: NodeMachine] = [:]
        for id in ["370211", "370200", "000000"].map({ DivisionCode($0)! }) {
            let tier = routing.tier(of: id)!
            let institutions: Set<String> = tier == .county ? ["H\(id.value)00001"] : []
            var machine = NodeMachine(config: .init(id: id, tier: tier, routing: routing, institutions: institutions))
            for case .forward(let signIn, .parent) in machine.tick(nowMs: nowMs) where signIn.infno == "9001" {
                var answer = WireResponse()
                answer.reqMsgid = signIn.msgid
                answer.infcode = 0
                var out = SignInOutput()
                out.signNo = "fuzz"
                answer.output = .signIn(out)
                _ = machine.receivedResponse(answer, from: .parent, nowMs: nowMs)
            }
            machines[id] = machine
        }
        return machines
    }()
}

runFuzzer { data, size in fuzzFrames(data, size) }
