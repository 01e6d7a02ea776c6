import Foundation
import Logging
import NetworkTopology
import SettlementCore
import SettlementModel

/// The way into a node: every message it receives passes here before the machine sees it.
/// On a secured link the key must be who the sender claims to be; a client beyond its share is
/// refused before any work; a message damaged on the link is dropped; a malformed one answered.
struct InboundGate {
    let node: DivisionCode
    let parent: DivisionCode?
    /// Secured topology: messages from below carry the name their key was admitted under.
    let secured: Bool
    /// Each client connection's share of this node (docs/SECURITY.md).
    private(set) var clientLimiter: ClientRateLimiter
    /// Secured: children whose routing id was last heard from under another node's key (one took
    /// it while the child was away). Nothing is sent to them until the child speaks again.
    private(set) var routesHeldByImpostors: Set<String> = []
    /// Failed handshakes by reason since the last report.
    private var failedHandshakes: [String: Int] = [:]
    /// Refusals and failed handshakes are logged per client or reason every interval, not per message.
    let reportIntervalMs: Int64 = 2_000
    private(set) var lastReportMs: Int64 = 0
    /// Something was refused since the last report: the node must turn to report it even if
    /// nothing else arrives (`nextReportMs`).
    private var unreported = false
    /// When the refusals not yet reported are due in the log; never when there are none.
    var nextReportMs: Int64 { unreported ? lastReportMs + reportIntervalMs : .max }

    /// Above the county, upload records are decoded by their keys only (`WireCodec.UploadRecords`).
    let uploadRecords: WireCodec.UploadRecords

    init(node: DivisionCode, parent: DivisionCode?, secured: Bool, edge: EdgeSettings?, uploadRecords: WireCodec.UploadRecords = .full) {
        self.uploadRecords = uploadRecords
        self.node = node
        self.parent = parent
        self.secured = secured
        clientLimiter = ClientRateLimiter(ratePerS: edge?.clientRatePerS ?? EdgeLimits.clientRatePerS,
                                          burst: edge?.clientBurst ?? EdgeLimits.clientBurst)
    }

    /// What became of one received message.
    enum Admitted {
        /// `body`: the protobuf body as received (see `PassThrough`).
        case request(WireRequest, body: [UInt8], from: Peer)
        case response(WireResponse, body: [UInt8], from: Peer)
        /// Refused here: answer it with this.
        case refused(WireResponse, to: Peer)
        case dropped
    }

    /// Admits one message: `frames` as received (a routing id first when from below, `fixedPeer`
    /// nil), `userID` the name its key was admitted under on a secured link.
    mutating func admit(_ frames: [[UInt8]], userID: String?, fixedPeer: Peer?, nowMs: Int64,
                        machine: inout NodeMachine, logger: Logger) -> Admitted {
        let peer: Peer
        let body: ArraySlice<[UInt8]>
        if let fixedPeer {
            peer = fixedPeer
            body = frames[...]
        } else {
            guard frames.count >= 1 else { return .dropped }
            peer = .downstream(frames[0])
            body = frames.dropFirst()
        }
        // The child node this routing id names, if any: asked once per message.
        let child = fixedPeer == nil ? machine.nodeID(of: peer) : nil
        var institution: String?
        if secured && fixedPeer == nil {
            if let child {
                guard userID == child else {
                    // Not answered: an answer would go to the routing id, i.e. to the node it claims
                    // to be. Logged when the route is first found taken, not for every message.
                    if routesHeldByImpostors.insert(child).inserted {
                        logger.warning("message refused: routing id names another node", metadata: [
                            "claimed": "\(child)", "authenticated": "\(userID ?? "none")"])
                    }
                    return .dropped
                }
                if !routesHeldByImpostors.isEmpty { routesHeldByImpostors.remove(child) }
            } else {
                // Any other sender is the institution its key names, and acts only as that institution.
                institution = userID ?? ""
            }
        }
        // A client over its share is refused before any work; a child node never is.
        let withinShare: Bool
        if case .downstream(let routingID) = peer, child == nil {
            // By institution when authenticated: reconnecting under a new routing id buys no new share.
            withinShare = clientLimiter.admit(institution.map { Array($0.utf8) } ?? routingID, nowMs: nowMs)
            if !withinShare { unreported = true }
        } else {
            withinShare = true
        }
        guard let body = WireCodec.unsealed(body) else {
            // Damaged on the link: dropped, as a lost message (the sender's deadline covers it).
            logger.warning("integrity check failed: message dropped", metadata: ["peer": "\(describe(peer))"])
            return .dropped
        }
        switch WireCodec.decode(body, uploadRecords: uploadRecords) {
        case .request(let request) where !withinShare:
            return .refused(machine.error(.rateLimited, detail: "more than \(Int(clientLimiter.ratePerS)) messages/s from one client at node \(node)",
                                          requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer)
        case .malformed where !withinShare, .response where !withinShare:
            return .dropped   // a flood of garbage is not answered: counted, and logged in the client's refusal report
        case .request(let request):
            if let institution, request.fixmedinsCode != institution {
                logger.warning("request refused: institution is not the one authenticated", metadata: [
                    "authenticated": "\(institution)", "error.code": "\(ErrorCode.institutionNotAuthenticated.rawValue)"])
                return .refused(machine.error(.institutionNotAuthenticated, detail: "connection authenticated as \(institution)",
                                              requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer)
            }
            return .request(request, body: body[body.startIndex + 2], from: peer)
        case .response(let response):
            return .response(response, body: body[body.startIndex + 2], from: peer)
        case .malformed(let code, let detail):
            logger.warning("bad input refused", metadata: ["error.code": "\(code.rawValue)", "detail": "\(detail)",
                                                           "peer": "\(describe(peer))"])
            return .refused(machine.error(code, detail: "\(detail) at node \(node)", requestMsgid: "", receivedAtMs: nowMs, nowMs: nowMs),
                            to: peer)
        }
    }

    /// Whether answers to this child must be held: its routing id is someone else's now.
    func isHeldByImpostor(_ child: String) -> Bool { routesHeldByImpostors.contains(child) }

    /// Handshakes failed (the port's report), for the next refusal report.
    mutating func handshakesFailed(_ count: Int, reason: String) {
        failedHandshakes[reason, default: 0] += count
        unreported = true
    }

    /// Every refusal of the interval, one line per client or reason.
    mutating func report(nowMs: Int64, logger: Logger) {
        lastReportMs = nowMs
        unreported = false
        for (reason, count) in failedHandshakes.sorted(by: { $0.key < $1.key }) {
            logger.warning("peer refused: handshake failed", metadata: ["reason": "\(reason)", "connections": "\(count)"])
        }
        failedHandshakes.removeAll()
        for (client, refused) in clientLimiter.takeRefusals(nowMs: nowMs) {
            // An institution code when authenticated, else the connection's routing id in hex.
            let label = client.first == UInt8(ascii: "H") ? String(decoding: client, as: UTF8.self)
                : client.map { String(format: "%02x", $0) }.joined()
            logger.warning("client over its rate: messages refused", metadata: [
                "client": "\(label)", "refused": "\(refused)",
                "limit_per_s": "\(Int(clientLimiter.ratePerS))", "error.code": "\(ErrorCode.rateLimited.rawValue)"])
        }
    }

    /// A peer as a log line names it.
    func describe(_ peer: Peer) -> String {
        switch peer {
        case .parent: return "parent \(parent?.value ?? "-")"
        case .downstream(let id):
            if id.count == 6, let text = String(bytes: id, encoding: .utf8), DivisionCode(text) != nil { return "child \(text)" }
            return "client " + id.map { String($0, radix: 16) }.joined()
        }
    }
}

