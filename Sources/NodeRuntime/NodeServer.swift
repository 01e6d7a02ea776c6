import Foundation
import LinkSecurity
import Logging
import Persistence
import SettlementCore
import SettlementModel
import NetworkTopology
import ZeroMQ

/// One node process: the thin I/O shell around `NodeMachine`.
///
/// One thread owns both sockets (the ROUTER its children and hospitals connect to, the DEALER
/// to its parent) and the ledger. Each round it polls, drains what arrived, feeds it to the
/// machine, commits everything the round decided in one ledger transaction (group commit),
/// and only then sends the answers: an answer never leaves before its record is durable.
public final class NodeServer {
    /// How often an idle node wakes. A process hosting hundreds of nodes needs idle nodes to
    /// cost next to nothing; a lone node can afford to notice a stop within 50 ms.
    public struct Pace: Sendable {
        /// Longest poll wait: how soon a stop request or a new link-fault file is noticed.
        public var maxWaitMs: Int64
        /// How often an idle node rewrites its status file (a busy one: every 250 ms).
        public var idleStatusMs: Int64
        public static let single = Pace(maxWaitMs: 50, idleStatusMs: 1_000)
        public static let packed = Pace(maxWaitMs: 1_000, idleStatusMs: 5_000)
    }

    public let spec: NodeSpec
    private let pace: Pace
    private let topology: Topology
    private let layout: DataLayout
    private var logger: Logger
    private var machine: NodeMachine
    private let ledger: Ledger
    private let policy: Policy?
    private let context: Context
    private let downstream: Socket
    private let upstream: Socket?
    private let endpoint: String
    /// Secured topology: this node's keys; every message from below then carries the name its
    /// key was admitted under, and is checked against who it claims to be.
    private let keys: NodeKeys?
    /// Secured: children whose routing id was last heard from under another node's key (one
    /// took it while the child was away). Nothing is sent to them until the child speaks again.
    private var routesHeldByImpostors: Set<String> = []
    private var settlementSerial: Int64
    private var messagesHandled: Int64 = 0
    private let startedAtMs: Int64
    private var lastStatusMs: Int64 = 0
    private var lastStatusWritten: NodeStatus?
    private var reportedSignedIn = false
    private var reportedReady = false
    private var reportedChildren = 0
    private var state = "starting"
    /// Most messages taken from one socket per round, so one busy peer cannot starve the rest
    /// and one transaction stays bounded.
    private let drainLimit = 1024
    /// How long a stopping node waits for answers already on their way.
    private let drainTimeoutMs: Int64 = 5_000
    /// Origin county: settlements in doubt already resolved; the hospital asking again with the
    /// same msgid gets the final answer from the ledger.
    private var resolvedMsgids: Set<String> = []
    /// Ticket events sent and not yet answered: what each is, for when its answer comes.
    private var ticketsInFlight: [String: (sentAtMs: Int64, event: String, ticketID: String, kind: String)] = [:]
    private var ticketSequence = 0
    private var lastTicketFlushMs: Int64 = 0
    /// False once a flush found the ticket outbox empty; set when an event is queued. Spares
    /// a ledger read every 200 ms on a node with nothing to send.
    private var ticketOutboxMayHaveWork = true
    /// Link faults on this node's outgoing links (docs/FAULTS.md), the file's stamp when read,
    /// and messages held back by a delay, with when they are due.
    private var linkFaults = LinkFaultTable()
    private var linkFaultsStamp: Int64?
    private var lastLinkFaultCheckMs: Int64 = 0
    /// Decisions of the link faults not yet appended to the trace file.
    private var decisionTrace: [TracedDecision] = []
    private var delayed: [(dueMs: Int64, message: Outgoing)] = []
    /// Open node_unresponsive tickets this node opened, by the silent node: closed when it answers again.
    private var openUnresponsive: [String: String] = [:]
    private let registryID: String
    /// County tier: the checks of uploads, built once the catalog is downloaded.
    private var validator: UploadValidator?
    /// Each client connection's share of this node (docs/SECURITY.md). Refusals, and failed
    /// handshakes, are logged per client or reason every `rateReportIntervalMs`, not per message.
    private var clientLimiter: ClientRateLimiter
    private var lastRateReportMs: Int64 = 0
    private let rateReportIntervalMs: Int64 = 2_000
    /// Provincial tier: outbox batches sent to the national store and not yet acknowledged.
    private var outboxInFlight: [String: Int64] = [:]
    private var lastOutboxFlushMs: Int64 = 0
    private var outboxSequence = 0
    /// False once a flush found nothing queued or in flight; set when a record is queued.
    /// Spares an idle province a write transaction ten times a second.
    private var outboxMayHaveWork = true
    /// Most records in one batch to the national store; how often the outbox is flushed.
    private let outboxBatchLimit = 2_000
    private let outboxFlushIntervalMs: Int64 = 100
    private let outboxResendMs: Int64 = 5_000

    /// `context`: shared by the nodes of one process (one I/O thread for all); nil for a context of its own.
    /// `keys`: required when the topology is secured (the process's `AdmissionGate` must be
    /// running in `context` before the node binds).
    public init(topology: Topology, id: DivisionCode, dataDirectory: String, logger: Logger,
                context sharedContext: Context? = nil, pace: Pace = .single, keys: NodeKeys? = nil) throws {
        guard let spec = topology.node(id) else {
            throw NodeError("node \(id) is not in topology \(topology.file)")
        }
        guard keys != nil || !topology.isSecured else {
            throw NodeError("node \(id): topology \(topology.file) is secured (security.curve) but no keys were given")
        }
        self.keys = keys
        self.spec = spec
        self.topology = topology
        self.layout = DataLayout(root: dataDirectory)
        self.logger = logger
        self.logger[metadataKey: "node"] = "\(id)"
        self.pace = pace
        policy = topology.policy(for: id)
        endpoint = topology.endpoint(of: id)!
        clientLimiter = ClientRateLimiter(ratePerS: topology.edge?.clientRatePerS ?? EdgeLimits.clientRatePerS,
                                          burst: topology.edge?.clientBurst ?? EdgeLimits.clientBurst)
        startedAtMs = wallClockMs()

        try FileManager.default.createDirectory(atPath: layout.nodeDirectory(id), withIntermediateDirectories: true)
        ledger = try Ledger(path: layout.ledgerPath(id))
        if let population = topology.population(of: id) { try ledger.seedPopulation(population) }
        settlementSerial = try ledger.read { try $0.settlementCount() }

        machine = NodeMachine(config: .init(id: id, tier: spec.tier, routing: topology.routingTable,
                                            institutions: Set(topology.institutions(of: id)),
                                            nationalCatalog: spec.parent == nil ? Catalog.national() : nil))
        registryID = topology.nodes.first { $0.parent == nil }?.id.value ?? "000000"
        let open = try ledger.read { try $0.openResolutions() }
        machine.restore(open)
        // Requests journaled as in flight when this node last stopped: whatever answers came back
        // found nobody waiting, so their outcome is in doubt here. Resolve them like any other.
        let inFlight = try ledger.read { try $0.inFlightAtOrigin() }
        let inDoubt = machine.inDoubtAfterRestart(inFlight, nowMs: startedAtMs)
        if !inDoubt.isEmpty {
            try ledger.write { tx in
                for case .resolution(let resolution) in inDoubt { try tx.saveResolution(resolution) }
            }
            let reversals = inFlight.filter { !$0.omsgid.isEmpty }   // reversals and corrections name what they undo
            logger.warning("requests in flight at the last stop are in doubt: resolving them by correction (2601)",
                           metadata: ["requests": "\(inFlight.count)", "reversals": "\(reversals.count)",
                                      "settlements_to_resolve": "\(inDoubt.count)"])
        }
        resolvedMsgids = Set(try ledger.read { try $0.resolvedMsgids() })
        for ticket in try ledger.read({ try $0.tickets() }) where ticket.kind == "node_unresponsive"
            && ticket.openedBy == id.value && ticket.state != "closed" {
            openUnresponsive[ticket.responsible] = ticket.ticketID
        }
        context = try sharedContext ?? Context()
        downstream = try context.socket(.router)
        try downstream.setRouterMandatory(true)      // unroutable answers fail loudly, not silently
        // A restarted child takes its identity back; but on secured links no connection may take
        // over a live one's routing id (another admitted key could then receive a child's traffic).
        try downstream.setRouterHandover(keys == nil)
        try downstream.setMaxMessageSize(bytes: WireCodec.maxMessageBytes)
        try downstream.setSendHighWaterMark(100_000)
        try downstream.setReceiveHighWaterMark(100_000)
        if let keys { try downstream.makeCurveServer(keys.own, zapDomain: id.value) }
        do {
            try downstream.bind(topology.bindEndpoint(of: id)!)
        } catch {
            throw NodeError("node \(id) cannot bind \(topology.bindEndpoint(of: id)!): \(error) (is another cluster using this port? try --base-port)")
        }
        if let parentID = spec.parent, let parentEndpoint = topology.endpoint(of: parentID) {
            let socket = try context.socket(.dealer)
            try socket.setRoutingID(Array(id.value.utf8))
            try socket.setImmediate(true)            // no queueing to a parent that is not there
            try socket.setReconnectInterval(milliseconds: 100)
            try socket.setSendHighWaterMark(100_000)
            try socket.setReceiveHighWaterMark(100_000)
            if let keys, let parentKey = keys.parentKey { try socket.makeCurveClient(keys.own, serverKey: parentKey) }
            try socket.connect(parentEndpoint)
            upstream = socket
        } else {
            upstream = nil
        }
    }

    /// Serves until SIGTERM/SIGINT (see `StopSignal`), then drains and returns.
    public func run() throws {
        logger.info("node started", metadata: ["endpoint": "\(endpoint)", "tier": "\(spec.tier.rawValue)",
                                               "parent": "\(spec.parent?.value ?? "-")",
                                               "links": "\(keys == nil ? "plaintext" : "curve")"])
        if let keys, keys.institutionsWithoutKeys > 0 {
            logger.warning("institutions without keys cannot connect", metadata: ["institutions": "\(keys.institutionsWithoutKeys)"])
        }
        state = "running"
        // Secured: failed handshakes (plaintext peers, clients without this node's public key)
        // never reach the ZAP gate; the socket's monitor reports them.
        let handshakes = try keys.map { _ in
            try downstream.monitor(events: SocketEvent.handshakeFailedProtocol | SocketEvent.handshakeFailedNoDetail,
                                   name: "node-\(spec.id.value)")
        }
        defer { handshakes?.close() }
        // Every completed handshake on the link to the parent: after the parent restarted, this
        // node signs in again at once, so the parent can route to it (and knows it does).
        let parentLink = try upstream.map { try $0.monitor(events: SocketEvent.handshakeSucceeded, name: "node-\(spec.id.value)-parent") }
        defer { parentLink?.close() }
        var sockets = [downstream]
        let upstreamIndex = upstream.map { sockets.append($0); return sockets.count - 1 }
        let handshakesIndex = handshakes.map { sockets.append($0); return sockets.count - 1 }
        let parentLinkIndex = parentLink.map { sockets.append($0); return sockets.count - 1 }
        var poller = Poller(sockets)
        var drainStartedMs: Int64?
        while true {
            var now = wallClockMs()
            if StopSignal.isRequested && drainStartedMs == nil {
                drainStartedMs = now
                state = "draining"
                machine.beginDraining()
                logger.info("stopping: draining", metadata: ["pending": "\(machine.pendingCount)"])
            }
            if let started = drainStartedMs, machine.pendingCount == 0 || now - started >= drainTimeoutMs {
                try execute(machine.abandonPending(nowMs: now))
                break
            }
            if now - lastLinkFaultCheckMs >= max(100, pace.maxWaitMs) { refreshLinkFaults(now) }
            flushDelayed(now)
            let nextDelayed = delayed.map(\.dueMs).min() ?? .max
            let wait = max(0, min(pace.maxWaitMs, machine.nextDeadlineMs(nowMs: now) - now, nextDelayed - now))
            let readable = try poller.poll(timeoutMs: Int(wait))
            var directives: [Directive] = []
            if readable[0] { drain(downstream, from: nil, into: &directives) }
            if let upstream, let upstreamIndex, readable[upstreamIndex] { drain(upstream, from: .parent, into: &directives) }
            if let handshakes, let handshakesIndex, readable[handshakesIndex] { noteFailedHandshakes(handshakes, now: now) }
            if let parentLink, let parentLinkIndex, readable[parentLinkIndex] {
                var connected = false
                while let frames = try? parentLink.receive(wait: false) { connected = connected || SocketEvent(frames: frames) != nil }
                if connected { directives += machine.parentLinkUp(nowMs: now) }
            }
            if spec.tier == .province && now - lastOutboxFlushMs >= outboxFlushIntervalMs { flushOutbox(now) }
            if now - lastTicketFlushMs >= 200 { flushTicketOutbox(now) }
            if now - lastRateReportMs >= rateReportIntervalMs { reportRefusals(now) }
            now = wallClockMs()
            directives += machine.tick(nowMs: now)
            try execute(directives)
            // Compared with what was last reported, not with the start of the round: the parent's
            // answers to 9001 and 1301 arrive in `drain`, before the round's tick. (Compared with the
            // start of the tick, readiness waited for the idle status interval, 5 s when packed.)
            if machine.isSignedIn != reportedSignedIn || machine.isReady != reportedReady
                || machine.signedInChildren.count != reportedChildren {
                if machine.isSignedIn && !reportedSignedIn {
                    logger.info("signed in", metadata: ["parent": "\(spec.parent?.value ?? "-")"])
                }
                reportedSignedIn = machine.isSignedIn
                reportedReady = machine.isReady
                reportedChildren = machine.signedInChildren.count
                lastStatusMs = 0
            }
            // Fresh within a quarter second while busy; on the pace's interval while idle.
            let busy = !directives.isEmpty
            if now - lastStatusMs >= (busy ? 250 : pace.idleStatusMs) { writeStatus(now) }
            flushDecisionTrace()
        }
        state = "stopped"
        flushDecisionTrace()
        writeStatus(wallClockMs())
        downstream.close()
        upstream?.close()
        logger.info("node stopped", metadata: ["messages": "\(messagesHandled)"])
    }

    // MARK: Receiving

    private func drain(_ socket: Socket, from fixedPeer: Peer?, into directives: inout [Directive]) {
        let now = wallClockMs()
        for _ in 0..<drainLimit {
            // Only messages from below on secured links carry a user id worth reading.
            let authenticated = keys != nil && fixedPeer == nil
            let frames: [[UInt8]]
            let userID: String?
            do {
                let received = authenticated ? try socket.receiveAuthenticated(wait: false)
                    : try socket.receive(wait: false).map { ($0, nil) }
                guard let received else { return }
                (frames, userID) = received
            } catch {
                logger.error("receive failed", metadata: ["error": "\(error)"])
                return
            }
            messagesHandled += 1
            let peer: Peer
            let body: ArraySlice<[UInt8]>
            if let fixedPeer {
                peer = fixedPeer
                body = frames[...]
            } else {
                guard frames.count >= 1 else { continue }
                peer = .downstream(frames[0])
                body = frames.dropFirst()
            }
            // The child node this routing id names, if any: asked once per message.
            let child = fixedPeer == nil ? machine.nodeID(of: peer) : nil
            var institution: String?
            if authenticated {
                switch authenticate(child: child, userID: userID) {
                case .node: if let child, !routesHeldByImpostors.isEmpty { routesHeldByImpostors.remove(child) }
                case .institution(let code): institution = code
                case .impostor(let claimed):
                    // Not answered: an answer would go to the routing id, i.e. to the node it claims
                    // to be. Logged when the route is first found taken, not for every message.
                    if routesHeldByImpostors.insert(claimed).inserted {
                        logger.warning("message refused: routing id names another node", metadata: [
                            "claimed": "\(claimed)", "authenticated": "\(userID ?? "none")"])
                    }
                    continue
                }
            }
            // A client over its share is refused before any work; a child node never is.
            let withinShare: Bool
            if case .downstream(let routingID) = peer, child == nil {
                // By institution when authenticated: reconnecting under a new routing id buys no new share.
                withinShare = clientLimiter.admit(institution.map { Array($0.utf8) } ?? routingID, nowMs: now)
            } else {
                withinShare = true
            }
            guard let body = WireCodec.unsealed(body) else {
                // Damaged on the link: dropped, as a lost message (the sender's deadline covers it).
                logger.warning("integrity check failed: message dropped", metadata: ["peer": "\(describe(peer))"])
                continue
            }
            switch WireCodec.decode(body) {
            case .request(let request) where !withinShare:
                let answer = machine.error(.rateLimited, detail: "more than \(Int(clientLimiter.ratePerS)) messages/s from one client at node \(spec.id)",
                                           requestMsgid: request.msgid, receivedAtMs: now, nowMs: now)
                directives.append(.answer(answer, to: peer, record: nil))
            case .malformed where !withinShare, .response where !withinShare:
                continue   // a flood of garbage is not answered: counted, and logged in the client's refusal report
            case .request(let request):
                if let institution, request.fixmedinsCode != institution {
                    // An institution acts only for itself: its key says who it is.
                    logger.warning("request refused: institution is not the one authenticated", metadata: [
                        "authenticated": "\(institution)", "error.code": "\(ErrorCode.institutionNotAuthenticated.rawValue)"])
                    let answer = machine.error(.institutionNotAuthenticated, detail: "connection authenticated as \(institution)",
                                               requestMsgid: request.msgid, receivedAtMs: now, nowMs: now)
                    directives.append(.answer(answer, to: peer, record: nil))
                    continue
                }
                if resolvedMsgids.contains(request.msgid), case .downstream = peer,
                   let final = try? ledger.read({ try $0.finalAnswer(omsgid: request.msgid) }) {
                    send(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: final)))
                    continue
                }
                directives += machine.receivedRequest(request, from: peer, nowMs: now)
            case .response(let response):
                if let node = machine.nodeID(of: peer), let ticketID = openUnresponsive[node] {
                    closeUnresponsive(node: node, ticketID: ticketID, now: now)   // it answers again: it is back
                }
                if peer == .parent, outboxInFlight[response.reqMsgid] != nil {
                    acknowledgeOutbox(response)
                } else if ticketsInFlight[response.reqMsgid] != nil {
                    ticketEventAnswered(response, now: now)
                } else {
                    directives += machine.receivedResponse(response, from: peer, nowMs: now)
                }
            case .malformed(let code, let detail):
                logger.warning("bad input refused", metadata: ["error.code": "\(code.rawValue)", "detail": "\(detail)",
                                                               "peer": "\(describe(peer))"])
                let answer = machine.error(code, detail: "\(detail) at node \(spec.id)", requestMsgid: "",
                                           receivedAtMs: now, nowMs: now)
                directives.append(.answer(answer, to: peer, record: nil))
            }
        }
    }

    /// Failed handshakes by reason since the last report: logged with a count every
    /// `rateReportIntervalMs`, so a plaintext client retrying every 100 ms cannot flood the log.
    private var failedHandshakes: [String: Int] = [:]

    private func noteFailedHandshakes(_ monitor: Socket, now: Int64) {
        while let frames = try? monitor.receive(wait: false) {
            guard let event = SocketEvent(frames: frames) else { continue }
            let reason = event.event == SocketEvent.handshakeFailedProtocol ? event.protocolErrorText
                : "closed during the handshake (the peer found the mismatch first: plaintext, or not this node's key)"
            failedHandshakes[reason, default: 0] += 1
        }
    }

    /// Every refusal of the interval, one line per client or reason.
    private func reportRefusals(_ now: Int64) {
        lastRateReportMs = now
        for (reason, count) in failedHandshakes.sorted(by: { $0.key < $1.key }) {
            logger.warning("peer refused: handshake failed", metadata: ["reason": "\(reason)", "connections": "\(count)"])
        }
        failedHandshakes.removeAll()
        for (client, refused) in clientLimiter.takeRefusals(nowMs: now) {
            // An institution code when authenticated, else the connection's routing id in hex.
            let label = client.first == UInt8(ascii: "H") ? String(decoding: client, as: UTF8.self)
                : client.map { String(format: "%02x", $0) }.joined()
            logger.warning("client over its rate: messages refused", metadata: [
                "client": "\(label)", "refused": "\(refused)",
                "limit_per_s": "\(Int(clientLimiter.ratePerS))", "error.code": "\(ErrorCode.rateLimited.rawValue)"])
        }
    }

    private enum Sender {
        case node
        case institution(String)
        /// Claims (by routing id) to be a child node its key is not.
        case impostor(claimed: String)
    }

    /// Who sent a message from below on a secured link. The ZAP gate admitted the key and named
    /// it (`userID`); the routing id is only the peer's claim, so a routing id naming a child
    /// must be that child's key. Any other sender is the institution its key names, and may
    /// send requests only as that institution.
    private func authenticate(child: String?, userID: String?) -> Sender {
        if let child { return userID == child ? .node : .impostor(claimed: child) }
        return .institution(userID ?? "")
    }

    // MARK: Carrying out directives

    private struct Outgoing {
        var peer: Peer
        var frames: [[UInt8]]
        var requestMsgid: String?   // set for forwarded requests, to report a failed hand-off
    }

    private func execute(_ initial: [Directive]) throws {
        guard !initial.isEmpty else { return }
        var directives = initial
        // Forwarded requests need no record: send them now, and turn a failed hand-off into
        // a definite answer for whoever waits.
        var index = 0
        var work: [Directive] = []
        while index < directives.count {
            let directive = directives[index]
            index += 1
            if case .forward(let request, let peer) = directive {
                if !send(Outgoing(peer: peer, frames: WireCodec.frames(request), requestMsgid: request.msgid)) {
                    directives += machine.forwardFailed(msgid: request.msgid, nowMs: wallClockMs())
                }
            } else {
                work.append(directive)
            }
        }
        guard !work.isEmpty else { return }
        var outgoing: [Outgoing] = []
        outgoing.reserveCapacity(work.count)
        var uploadsToForward: [(request: WireRequest, passing: UploadInput, received: Int32, rejects: [UploadReject],
                                peer: Peer, receivedAtMs: Int64)] = []
        var resolvedNow: [String] = []
        // Journaled in this round's transaction, sent once it is durable.
        var journaled: [Outgoing] = []
        var committed = true
        do {
            try ledger.write { tx in
                outgoing.removeAll(keepingCapacity: true)
                uploadsToForward.removeAll()
                resolvedNow.removeAll()
                journaled.removeAll()
                for directive in work {
                    switch directive {
                    case .journalAndForward(let request, let peer, let inFlight):
                        try tx.recordTransit(inFlight)
                        journaled.append(Outgoing(peer: peer, frames: WireCodec.frames(request), requestMsgid: request.msgid))
                    case .answer(let response, let peer, let record):
                        if let record { try tx.recordTransit(record) }
                        outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(response)))
                    case .settleHere(let request, let peer, let role, let receivedAtMs):
                        let body = try decide(request, role: role, receivedAtMs: receivedAtMs, tx: tx)
                        outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body)))
                    case .resolution(let resolution):
                        try tx.saveResolution(resolution)
                    case .openTicket(let kind, let code, let subject, let responsible, let reason):
                        try openTicket(kind: kind, code: code, subject: subject, responsible: responsible, reason: reason,
                                       now: wallClockMs(), tx: tx)
                    case .ticketHere(let request, let peer, let receivedAtMs):
                        let body = try ticketArrived(request, receivedAtMs: receivedAtMs, tx: tx)
                        outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body)))
                    case .resolved(let resolution, let finalAnswer, let record):
                        let omsgid = resolution.omsgid
                        try tx.resolve(omsgid: omsgid, finalAnswer: try finalAnswer.serializedBytes(), nowMs: wallClockMs())
                        try tx.recordTransit(record, resolution: true)
                        resolvedNow.append(omsgid)
                        logger.info("settlement in doubt resolved", metadata: ["settlement.msgid": "\(omsgid)",
                                                                               "outcome": "\(finalAnswer.warnMsg)"])
                    case .screenUpload(let request, let peer, let receivedAtMs):
                        switch try screen(request, receivedAtMs: receivedAtMs, tx: tx) {
                        case .answer(let body):
                            outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body)))
                        case .forward(let passing, let received, let rejects):
                            uploadsToForward.append((request, passing, received, rejects, peer, receivedAtMs))
                        }
                    case .forward:
                        break
                    }
                }
            }
        } catch {
            committed = false
            resolvedNow.removeAll()
            journaled.removeAll()
            // Resolutions decided in this round are not durable: keep resolving them.
            machine.restore(work.compactMap { if case .resolved(let resolution, _, _) = $0 { resolution } else { nil } })
            // Nothing of this round was recorded. Answers passing through are still true
            // (they were decided below), but decisions made here were rolled back: refuse them.
            logger.critical("ledger write failed", metadata: ["error": "\(error)"])
            outgoing = work.compactMap { directive in
                switch directive {
                case .answer(let response, let peer, _):
                    return Outgoing(peer: peer, frames: WireCodec.frames(response))
                case .settleHere(let request, let peer, _, let receivedAtMs), .screenUpload(let request, let peer, let receivedAtMs):
                    let answer = machine.error(.busy, detail: "ledger of node \(spec.id) unavailable",
                                               requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: wallClockMs())
                    return Outgoing(peer: peer, frames: WireCodec.frames(answer))
                case .forward, .resolution, .resolved, .openTicket, .journalAndForward:
                    return nil
                case .ticketHere(let request, let peer, let receivedAtMs):
                    let answer = machine.error(.busy, detail: "ledger of node \(spec.id) unavailable",
                                               requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: wallClockMs())
                    return Outgoing(peer: peer, frames: WireCodec.frames(answer))
                }
            }
        }
        // Journal entries that could not be written: those requests were not sent.
        let unsent = committed ? [] : work.compactMap { directive -> String? in
            if case .journalAndForward(let request, _, _) = directive { request.msgid } else { nil }
        }
        var next: [Directive] = []
        for msgid in unsent {
            for case .answer(let response, let peer, _) in machine.refuseUnsent(msgid: msgid, detail: "ledger of node \(spec.id) unavailable",
                                                                              nowMs: wallClockMs()) {
                outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(response)))
            }
        }
        resolvedMsgids.formUnion(resolvedNow)
        for message in outgoing { _ = send(message) }
        for message in journaled where !send(message) {
            next += machine.forwardFailed(msgid: message.requestMsgid!, nowMs: wallClockMs())
        }
        // Records this tier passed are recorded: now they may travel up.
        if !uploadsToForward.isEmpty {
            let now = wallClockMs()
            for upload in uploadsToForward {
                next += machine.forwardUpload(upload.request, passing: upload.passing, received: upload.received,
                                              rejects: upload.rejects, replyTo: upload.peer,
                                              receivedAtMs: upload.receivedAtMs, nowMs: now)
            }
        }
        try execute(next)
    }

    // MARK: Tickets

    /// Opens a ticket (or counts one more occurrence of an open one for the same cause), sends
    /// it to the responsible node, and reports it to the national registry. `setlIDs` name the
    /// records an upload_reject is about: the responsible county hands them to the institution.
    private func openTicket(kind: String, code: String, subject: String, responsible: String, reason: String,
                            setlIDs: [String] = [], now: Int64, tx: LedgerTransaction) throws {
        let selfResponsible = responsible == spec.id.value
        if let existing = try tx.openTicket(kind: kind, subject: subject, responsible: responsible, openedBy: spec.id.value) {
            try tx.addTicketOccurrence(existing.ticketID)
            if !setlIDs.isEmpty && !selfResponsible {
                var input = ticketInput(existing)
                input.setlIds = setlIDs
                try queueTicketEvent("occurrence", input, to: responsible, now: now, tx: tx)
            }
            return
        }
        let count = try tx.countTickets() + 1
        let ticketID = "TK\(spec.id.value)\(CivilTime(unixMs: now).compact)\(count)"
        var input = TicketInput()
        input.ticketID = ticketID
        input.kind = kind
        input.code = code
        input.subject = subject
        input.responsible = responsible
        input.openedBy = spec.id.value
        input.reason = reason
        input.atMs = now
        input.occurrences = 1
        try tx.upsertTicket(row(input, state: selfResponsible ? "acknowledged" : "open", now: now))
        try queueTicketEvent("opened", input, to: registryID, now: now, tx: tx)
        if selfResponsible {
            try queueTicketEvent("acknowledged", input, to: registryID, now: now, tx: tx)
        } else {
            input.setlIds = setlIDs
            try queueTicketEvent("open", input, to: responsible, now: now, tx: tx)
        }
        if kind == "node_unresponsive" { openUnresponsive[responsible] = ticketID }
        logger.warning("ticket opened", metadata: ["ticket.id": "\(ticketID)", "ticket.kind": "\(kind)",
                                                   "ticket.responsible": "\(responsible)", "error.code": "\(code)"])
    }

    private func ticketInput(_ ticket: TicketRow) -> TicketInput {
        var input = TicketInput()
        input.ticketID = ticket.ticketID
        input.kind = ticket.kind
        input.code = ticket.code
        input.subject = ticket.subject
        input.responsible = ticket.responsible
        input.openedBy = ticket.openedBy
        input.reason = ticket.reason
        input.occurrences = Int32(ticket.occurrences)
        return input
    }

    /// The cause is gone: the opener closes the ticket (销号) and tells the registry and, for
    /// an upload_reject, the responsible county (so that its institution stops being asked).
    private func closeTicket(_ ticketID: String, reason: String, now: Int64, tx: LedgerTransaction) throws {
        guard var ticket = try tx.ticket(ticketID), ticket.state != "closed" else { return }
        ticket.state = "closed"
        ticket.closedAtMs = now
        try tx.upsertTicket(ticket)
        var input = ticketInput(ticket)
        input.reason = reason
        try queueTicketEvent("closed", input, to: registryID, now: now, tx: tx)
        if ticket.kind == "upload_reject" && ticket.responsible != spec.id.value {
            try queueTicketEvent("closed", input, to: ticket.responsible, now: now, tx: tx)
        }
        logger.info("ticket closed", metadata: ["ticket.id": "\(ticketID)", "ticket.kind": "\(ticket.kind)",
                                                "ticket.responsible": "\(ticket.responsible)"])
    }

    private func row(_ input: TicketInput, state: String, now: Int64) -> TicketRow {
        TicketRow(ticketID: input.ticketID, kind: input.kind, code: input.code, subject: input.subject,
                  responsible: input.responsible, openedBy: input.openedBy, state: state, reason: input.reason,
                  occurrences: Int(input.occurrences), openedAtMs: input.atMs,
                  acknowledgedAtMs: state == "acknowledged" ? now : nil, closedAtMs: state == "closed" ? now : nil)
    }

    /// Queues a ticket event for `destination`; the registry's own events are recorded at once.
    private func queueTicketEvent(_ event: String, _ ticket: TicketInput, to destination: String, now: Int64,
                                  tx: LedgerTransaction) throws {
        var input = ticket
        input.event = event
        input.atMs = now
        if destination == spec.id.value {
            _ = try applyTicketEvent(input, tx: tx)
            return
        }
        ticketSequence += 1
        var request = WireRequest()
        request.infno = TransactionCode.ticket.rawValue
        request.msgid = "TE\(spec.id.value)\(now)\(ticketSequence)"
        request.mdtrtareaAdmvs = spec.id.value
        request.insuplcAdmdvs = destination
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: now).readable
        request.input = .ticket(input)
        try tx.enqueueTicketEvent(msgid: request.msgid, destination: destination, body: try request.serializedBytes())
        ticketOutboxMayHaveWork = true
    }

    /// A ticket event for this node: as the responsible node it acknowledges (响应) and keeps
    /// the records behind an upload_reject; as the national registry it records the state change
    /// with its time. A hospital's "list" asks its county what it has to correct.
    private func ticketArrived(_ request: WireRequest, receivedAtMs: Int64, tx: LedgerTransaction) throws -> [UInt8] {
        guard case .ticket(let input)? = request.input else {
            return try machine.error(.missingField, detail: "input.ticket", requestMsgid: request.msgid,
                                     receivedAtMs: receivedAtMs, nowMs: wallClockMs()).serializedBytes()
        }
        let now = wallClockMs()
        var out = TicketOutput()
        out.ticketID = input.ticketID
        switch input.event {
        case "list":
            out.state = "listed"
            out.tickets = try tx.openTickets(kind: "upload_reject", subject: request.fixmedinsCode, responsible: spec.id.value)
                .map { ticket, setlIDs in
                    var listed = ticketInput(ticket)
                    listed.setlIds = setlIDs
                    return listed
                }
        case "open":
            try tx.upsertTicket(row(input, state: "acknowledged", now: now))
            try tx.addTicketRecords(input.ticketID, setlIDs: input.setlIds)
            try queueTicketEvent("acknowledged", input, to: registryID, now: now, tx: tx)
            out.state = "acknowledged"
            logger.warning("ticket acknowledged", metadata: ["ticket.id": "\(input.ticketID)", "ticket.kind": "\(input.kind)"])
        case "occurrence":
            try tx.addTicketRecords(input.ticketID, setlIDs: input.setlIds)
            out.state = "acknowledged"
        case "closed" where spec.id.value != registryID:
            try tx.upsertTicket(row(input, state: "closed", now: input.atMs))
            out.state = "closed"
        default:
            out.state = try applyTicketEvent(input, tx: tx)
        }
        var response = machine.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
        response.output = .ticket(out)
        return try response.serializedBytes()
    }

    /// The registry's part: every event ("opened", "acknowledged", "closed") with its time.
    private func applyTicketEvent(_ input: TicketInput, tx: LedgerTransaction) throws -> String {
        guard spec.id.value == registryID, ["opened", "acknowledged", "closed"].contains(input.event) else { return "received" }
        let state = input.event == "opened" ? "open" : input.event
        var ticket = row(input, state: state, now: input.atMs)
        if input.event == "opened" { ticket.openedAtMs = input.atMs }
        try tx.upsertTicket(ticket)
        try tx.recordTicketEvent(ticketID: input.ticketID, event: input.event, node: input.event == "acknowledged" ? input.responsible : input.openedBy,
                                 atMs: input.atMs)
        return state
    }

    private func flushTicketOutbox(_ now: Int64) {
        lastTicketFlushMs = now
        guard ticketOutboxMayHaveWork, machine.isSignedIn || spec.parent == nil,
              let queued = try? ledger.read({ try $0.ticketOutbox() }) else { return }
        if queued.isEmpty { ticketOutboxMayHaveWork = false }
        for entry in queued where now - (ticketsInFlight[entry.msgid]?.sentAtMs ?? .min / 2) >= 3_000 {
            guard let destination = DivisionCode(entry.destination),
                  let hop = topology.routingTable.nextHop(from: spec.id, to: destination),
                  let request = try? WireRequest(serializedBytes: entry.body), case .ticket(let input)? = request.input else { continue }
            let peer: Peer
            switch hop {
            case .here: continue
            case .parent: peer = .parent
            case .child(let child): peer = .downstream(Array(child.value.utf8))
            }
            ticketsInFlight[entry.msgid] = (now, input.event, input.ticketID, input.kind)
            send(Outgoing(peer: peer, frames: [[], WireCodec.requestKind, entry.body], requestMsgid: entry.msgid))
        }
    }

    private func ticketEventAnswered(_ response: WireResponse, now: Int64) {
        guard let sent = ticketsInFlight.removeValue(forKey: response.reqMsgid) else { return }
        guard response.infcode == 0, case .ticket(let out)? = response.output else { return }   // sent again later
        do {
            try ledger.write { tx in
                try tx.removeTicketEvent(msgid: response.reqMsgid)
                if sent.event == "open", out.state == "acknowledged", var ticket = try tx.ticket(sent.ticketID) {
                    ticket.state = "acknowledged"
                    ticket.acknowledgedAtMs = now
                    try tx.upsertTicket(ticket)
                }
            }
        } catch {
            logger.error("ticket acknowledgement not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// The silent node answers again: its ticket is closed (销号) and the registry told.
    private func closeUnresponsive(node: String, ticketID: String, now: Int64) {
        openUnresponsive[node] = nil
        do {
            try ledger.write { tx in try closeTicket(ticketID, reason: "node \(node) answers again", now: now, tx: tx) }
        } catch {
            logger.error("ticket close not recorded", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Uploads

    private enum ScreenResult {
        case answer([UInt8])
        case forward(UploadInput, received: Int32, rejects: [UploadReject])
    }

    /// Checks an upload batch at this tier inside the round's transaction: the county's record
    /// rules, then this tier's duplicate store. The provincial and national tiers store what
    /// passed (the province also queues it for the national store) and answer; the county and
    /// city pass it up. A batch msgid seen before gets the same decision, counted once.
    private func screen(_ request: WireRequest, receivedAtMs: Int64, tx: LedgerTransaction) throws -> ScreenResult {
        guard case .upload(let input)? = request.input else { return .answer(try machine.error(.missingField, detail: "input.upload", requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: wallClockMs()).serializedBytes()) }
        if let stored = try tx.uploadBatch(msgid: request.msgid) {
            if let answer = stored.answer { return .answer(answer) }
            return .forward(try UploadInput(serializedBytes: stored.forwarded ?? []), received: Int32(stored.received),
                            rejects: try UploadOutput(serializedBytes: stored.ownRejects).rejects)
        }
        let now = wallClockMs()
        let tier = DataTier(spec.tier)
        if tier == .county && validator == nil, let catalog = machine.catalog {
            validator = UploadValidator(county: spec.id, institutions: Set(topology.institutions(of: spec.id)),
                                        routing: topology.routingTable, catalog: catalog)
        }
        let storesRecords = tier == .provincial || tier == .national
        var passing = UploadInput()
        passing.catalogVersion = input.catalogVersion
        var rejects: [UploadReject] = []
        var rejectedByRule: [String: Int] = [:]
        var corrections = 0
        for (position, original) in input.records.enumerated() {
            var record = original
            if tier == .county { record.batchIndex = Int32(position) }
            var violation = tier == .county ? validator?.check(record) : nil
            if violation == nil {
                let blob: [UInt8]? = storesRecords ? try record.serializedBytes() : nil
                if try !tx.claimUploadRecord(setlID: record.setlID, msgid: request.msgid, fixmedinsCode: record.fixmedinsCode,
                                             mdtrtareaAdmvs: record.mdtrtareaAdmvs, record: blob, nowMs: now) {
                    violation = Violation(rule: UploadRules.duplicate(at: tier), field: "setl_id")
                } else if tier == .provincial, let blob {
                    try tx.enqueueForNational(setlID: record.setlID, record: blob)
                    outboxMayHaveWork = true
                }
            }
            if let violation {
                var reject = UploadReject()
                reject.setlID = record.setlID
                reject.index = record.batchIndex
                reject.ruleID = violation.rule.id
                reject.field = violation.field
                reject.tier = tier.rawValue
                reject.admdvs = spec.id.value
                rejects.append(reject)
                rejectedByRule[violation.rule.id, default: 0] += 1
                if tier != .county {
                    // Found above the county: the uploading county's institution must correct and re-upload.
                    try openTicket(kind: "upload_reject", code: violation.rule.id, subject: record.fixmedinsCode,
                                   responsible: record.mdtrtareaAdmvs, reason: violation.rule.checks,
                                   setlIDs: [record.setlID], now: now, tx: tx)
                }
                try tx.recordUploadReject(msgid: request.msgid, position: position, batchIndex: record.batchIndex, setlID: record.setlID,
                                          fixmedinsCode: record.fixmedinsCode, ruleID: violation.rule.id,
                                          field: violation.field, nowMs: now)
            } else {
                if !record.correctsSetlID.isEmpty {
                    corrections += 1
                    try correctionPassed(record, tier: tier, now: now, tx: tx)
                }
                passing.records.append(record)
            }
        }
        try tx.addUploadCount("corrections", corrections)
        try tx.addUploadCount("received", input.records.count)
        try tx.addUploadCount("accepted", passing.records.count)
        for (rule, count) in rejectedByRule { try tx.addUploadCount(rule, count) }
        var ownRejects = UploadOutput()
        ownRejects.rejects = rejects
        let received = Int32(input.records.count)
        if storesRecords {
            let response = machine.uploadStored(request, received: received, accepted: Int32(passing.records.count),
                                                rejects: rejects, receivedAtMs: receivedAtMs, nowMs: now)
            let body: [UInt8] = try response.serializedBytes()
            try tx.saveUploadBatch(msgid: request.msgid, decision: UploadBatchDecision(
                received: input.records.count, ownRejects: try ownRejects.serializedBytes(), forwarded: nil, answer: body))
            return .answer(body)
        }
        try tx.saveUploadBatch(msgid: request.msgid, decision: UploadBatchDecision(
            received: input.records.count, ownRejects: try ownRejects.serializedBytes(),
            forwarded: try passing.serializedBytes(), answer: nil))
        return .forward(passing, received: received, rejects: rejects)
    }

    /// A corrected re-upload passed this tier: the reject it names is corrected. Above the
    /// county, where rejects open tickets, the institution's ticket closes (销号) once none of
    /// its rejects here waits for a correction.
    private func correctionPassed(_ record: UploadRecord, tier: DataTier, now: Int64, tx: LedgerTransaction) throws {
        guard try tx.markRejectCorrected(setlID: record.correctsSetlID, fixmedinsCode: record.fixmedinsCode, nowMs: now),
              tier != .county, try tx.uncorrectedRejects(fixmedinsCode: record.fixmedinsCode) == 0,
              let ticket = try tx.openTicket(kind: "upload_reject", subject: record.fixmedinsCode, responsible: record.mdtrtareaAdmvs,
                                             openedBy: spec.id.value)
        else { return }
        try closeTicket(ticket.ticketID, reason: "institution \(record.fixmedinsCode) corrected and re-uploaded its records",
                        now: now, tx: tx)
    }

    /// Provincial tier: groups queued records into batches for the national store and sends
    /// those not yet acknowledged (again after `outboxResendMs`). Batches keep their msgid across
    /// restarts, and the national tier answers a repeated msgid from its store: exactly once.
    private func flushOutbox(_ now: Int64) {
        lastOutboxFlushMs = now
        guard machine.isSignedIn, let upstream, outboxMayHaveWork || !outboxInFlight.isEmpty else { return }
        do {
            let batches = try ledger.write { tx -> [(msgid: String, records: [[UInt8]])] in
                outboxSequence += 1
                let msgid = MessageID.request(institution: "N\(spec.id.value)00000", unixMs: now, sequence: outboxSequence)
                _ = try tx.assignOutboxBatch(msgid: msgid, limit: outboxBatchLimit)
                return try tx.outboxBatches()
            }
            if batches.isEmpty && outboxInFlight.isEmpty { outboxMayHaveWork = false }
            for batch in batches where now - (outboxInFlight[batch.msgid] ?? .min / 2) >= outboxResendMs {
                var request = WireRequest()
                request.infno = TransactionCode.upload.rawValue
                request.msgid = batch.msgid
                request.mdtrtareaAdmvs = spec.id.value
                request.insuplcAdmdvs = request.mdtrtareaAdmvs
                request.infver = "V1.0"
                request.infTime = CivilTime(unixMs: now).readable
                var input = UploadInput()
                input.records = try batch.records.map { try UploadRecord(serializedBytes: $0) }
                input.catalogVersion = machine.catalog?.version ?? ""
                request.input = .upload(input)
                do {
                    try upstream.send(WireCodec.frames(request), wait: false)
                    outboxInFlight[batch.msgid] = now
                } catch {
                    logger.warning("outbox batch not sent", metadata: ["upload.msgid": "\(batch.msgid)", "error": "\(error)"])
                }
            }
        } catch {
            logger.error("outbox flush failed", metadata: ["error": "\(error)"])
        }
    }

    private func acknowledgeOutbox(_ response: WireResponse) {
        guard response.infcode == 0 else {
            // Not stored above (busy, catalog not loaded): the batch is sent again later.
            logger.warning("national store refused a batch", metadata: ["upload.msgid": "\(response.reqMsgid)",
                                                                        "error.code": "\(response.errCode)"])
            outboxInFlight[response.reqMsgid] = 0
            return
        }
        do {
            try ledger.write { tx in try tx.acknowledgeOutboxBatch(msgid: response.reqMsgid) }
            outboxInFlight[response.reqMsgid] = nil
        } catch {
            logger.error("outbox acknowledgement failed", metadata: ["error": "\(error)"])
        }
    }

    /// Settles or reverses at the insured county, inside the round's transaction, and returns
    /// the serialized answer. A msgid already decided gets its original answer back.
    private func decide(_ request: WireRequest, role: TransitRole, receivedAtMs: Int64, tx: LedgerTransaction) throws -> [UInt8] {
        let now = wallClockMs()
        if let stored = try tx.storedAnswer(msgid: request.msgid) {
            if stored.infno == request.infno { return stored.response }
            let refusal = machine.error(.settlementMismatch, detail: "msgid already used for infno \(stored.infno)",
                                        requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
            return try refusal.serializedBytes()
        }
        let code = TransactionCode(rawValue: request.infno)!
        let meta = RequestMeta(request)
        var response: WireResponse
        guard let policy else {
            response = machine.error(.wrongNode, detail: "node \(spec.id) has no province policy", requestMsgid: request.msgid,
                                     receivedAtMs: receivedAtMs, nowMs: now)
            return try response.serializedBytes()
        }
        switch request.input {
        case .settlement(let input)?:
            let person = try tx.person(input.psnNo)
            switch InsuredCounty.settle(input, code: code, isLocal: role == .local, person: person, policy: policy) {
            case .settled(let split, let after):
                settlementSerial += 1
                let serial = String(settlementSerial)
                let setlID = spec.id.value + String(repeating: "0", count: max(0, 14 - serial.count)) + serial
                response = machine.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
                response.output = .settlement(InsuredCounty.output(split, input: input, person: after, setlID: setlID,
                                                                   insured: spec.id, nowMs: now))
                let body: [UInt8] = try response.serializedBytes()
                try tx.updatePerson(after)
                try tx.insertSettled(request: request, split: split, psnNo: input.psnNo, setlID: setlID, nowMs: now, response: body)
                try tx.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: now))
                return body
            case .refused(let errorCode, let detail):
                response = machine.error(errorCode, detail: detail, requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
                let body: [UInt8] = try response.serializedBytes()
                try tx.insertRefused(request: request, errCode: errorCode.rawValue, nowMs: now, response: body)
                try tx.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: now))
                logger.info("settlement refused", metadata: ["settlement.msgid": "\(request.msgid)", "error.code": "\(errorCode.rawValue)"])
                if errorCode == .unknownPerson || errorCode == .notFiledOffsite {
                    // Refused because of data this county holds: its registry or filings need a look.
                    try openTicket(kind: "business_refusal", code: errorCode.rawValue, subject: request.fixmedinsCode,
                                   responsible: spec.id.value, reason: errorCode.message, now: now, tx: tx)
                }
                return body
            }
        case .reversal(let input)?:
            if let earlier = try tx.successfulReversal(omsgid: input.omsgid) {
                // Already reversed: the same answer again, recorded under this msgid too.
                var again = try WireResponse(serializedBytes: earlier)
                again.reqMsgid = request.msgid
                let body: [UInt8] = try again.serializedBytes()
                try tx.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: 1,
                                      nowMs: now, response: body)
                return body
            }
            let original = try tx.settlement(msgid: input.omsgid)
            let person = try original.map { try tx.person($0.psnNo) } ?? nil
            switch InsuredCounty.reverse(input, code: code, original: original, person: person) {
            case .reversed(let after):
                response = machine.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
                response.output = .reversal(InsuredCounty.reversalOutput(original!, person: after))
                let body: [UInt8] = try response.serializedBytes()
                try tx.updatePerson(after)
                try tx.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: 0,
                                      nowMs: now, response: body)
                try tx.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: now))
                return body
            case .refused(let errorCode, let detail):
                response = machine.error(errorCode, detail: detail, requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
                let body: [UInt8] = try response.serializedBytes()
                try tx.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: -1,
                                      nowMs: now, response: body)
                try tx.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: now))
                return body
            }
        case .correction(let input)?:
            return try correct(request, input, role: role, receivedAtMs: receivedAtMs, now: now, tx: tx)
        default:
            response = machine.error(.missingField, detail: "input", requestMsgid: request.msgid,
                                     receivedAtMs: receivedAtMs, nowMs: now)
            return try response.serializedBytes()
        }
    }

    /// Correction reversal (2601) at the insured county: whatever became of `omsgid`, it is
    /// not in effect afterwards. Settled: reversed. Never arrived: a tombstone refuses it should
    /// it still arrive. Refused or already reversed: said so.
    private func correct(_ request: WireRequest, _ input: CorrectionInput, role: TransitRole, receivedAtMs: Int64,
                         now: Int64, tx: LedgerTransaction) throws -> [UInt8] {
        guard !input.omsgid.isEmpty, let code = TransactionCode(rawValue: input.oinfno), code.isSettlement else {
            let refusal = machine.error(.missingField, detail: "input.omsgid and input.oinfno (2207 or 2304)",
                                        requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
            return try refusal.serializedBytes()
        }
        var out = CorrectionOutput()
        out.omsgid = input.omsgid
        var infcode: Int32 = 1   // recorded, but not a reversal of money
        switch try tx.settlementState(msgid: input.omsgid) {
        case nil:
            let refusal = machine.error(.cancelledByCorrection, detail: "cancelled by correction \(request.msgid)",
                                        requestMsgid: input.omsgid, receivedAtMs: now, nowMs: now)
            try tx.insertTombstone(omsgid: input.omsgid, infno: input.oinfno, psnNo: input.psnNo,
                                   mdtrtareaAdmvs: request.mdtrtareaAdmvs, fixmedinsCode: request.fixmedinsCode,
                                   nowMs: now, response: try refusal.serializedBytes())
            out.outcome = "cancelled"
        case let (state, setlID)? where state == "settled":
            out.setlID = setlID
            let original = try tx.settlement(msgid: input.omsgid)
            let person = try original.map { try tx.person($0.psnNo) } ?? nil
            var reversal = ReversalInput()
            reversal.omsgid = input.omsgid
            guard case .reversed(let after) = InsuredCounty.reverse(reversal, code: code.reversalCode!, original: original, person: person) else {
                let refusal = machine.error(.settlementMismatch, detail: "settlement \(input.omsgid) cannot be reversed",
                                            requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
                return try refusal.serializedBytes()
            }
            try tx.updatePerson(after)
            infcode = 0
            out.outcome = "reversed"
        case let (state, setlID)?:
            out.setlID = setlID
            out.outcome = state   // "reversed" already, or "refused"
        }
        var response = machine.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: now)
        response.output = .correction(out)
        let body: [UInt8] = try response.serializedBytes()
        try tx.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: infcode,
                              nowMs: now, response: body)
        try tx.recordTransit(TransitRecord(request: RequestMeta(request), response: response, role: role, nowMs: now))
        logger.info("correction reversal", metadata: ["settlement.msgid": "\(input.omsgid)", "outcome": "\(out.outcome)"])
        return body
    }

    // MARK: Link faults

    /// Reads the cluster's link-fault file when it changed (checked every 100 ms): the scenario
    /// runner's faults on this node's outgoing links. A missing or unreadable file means none.
    private func refreshLinkFaults(_ now: Int64) {
        lastLinkFaultCheckMs = now
        var info = stat()
        let path = layout.linkFaultsFile
        let stamp: Int64? = stat(path, &info) == 0 ? Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec) : nil
        guard stamp != linkFaultsStamp else { return }
        linkFaultsStamp = stamp
        guard stamp != nil, let data = FileManager.default.contents(atPath: path) else {
            linkFaults.replace(with: [])
            return
        }
        do {
            let all = try JSONDecoder().decode([LinkFault].self, from: data)
            linkFaults.replace(with: all.filter { $0.from == spec.id.value })
            logger.info("link faults loaded", metadata: ["faults": "\(linkFaults.faults.count)"])
        } catch {
            logger.warning("link-fault file unreadable; no link faults", metadata: ["file": "\(path)", "error": "\(error)"])
            linkFaults.replace(with: [])
        }
    }

    /// Appends the decisions taken in this round of the loop to this node's trace, one JSON
    /// line each, before the next round: the trace is complete as soon as a fault is over.
    private func flushDecisionTrace() {
        guard !decisionTrace.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var bytes: [UInt8] = []
        for entry in decisionTrace {
            if let line = try? encoder.encode(entry) { bytes += line; bytes.append(0x0A) }
        }
        decisionTrace.removeAll(keepingCapacity: true)
        let path = layout.linkDecisionsPath(spec.id)
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else {
            logger.warning("link-decision trace not writable", metadata: ["file": "\(path)"])
            return
        }
        defer { close(descriptor) }
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// Sends a message through this node's link faults: dropped, delayed, duplicated or with a
    /// byte flipped, as the fault in force on that link decides. Hospitals' links have none.
    /// Messages to other nodes are sealed with a checksum first, as the sender's stack would do.
    @discardableResult
    private func send(_ message: Outgoing) -> Bool {
        // Only links between nodes are sealed and faulty; a hospital is no node.
        guard let peer = machine.nodeID(of: message.peer) else { return transmit(message) }
        if routesHeldByImpostors.contains(peer) { return false }   // the routing id is not the child: unreachable
        var message = message
        message.frames = WireCodec.sealed(message.frames)
        guard !linkFaults.isEmpty else { return transmit(message) }
        let now = wallClockMs()
        guard let traced = linkFaults.next(to: peer, nowMs: now) else { return transmit(message) }
        decisionTrace.append(traced)
        let decision = traced.decision
        if decision == .untouched { return transmit(message) }
        if decision.dropped { return true }   // lost on the wire: the sender cannot tell
        var faulty = message
        if let position = decision.corruptAt {
            // One byte flipped anywhere in the kind, body or checksum frames.
            let last = faulty.frames.count - 1
            let sizes = faulty.frames.map(\.count)
            var offset = position % max(1, sizes.reduce(0, +))
            for index in 0...last where sizes[index] > 0 {
                if offset < sizes[index] { faulty.frames[index][offset] ^= 0xFF; break }
                offset -= sizes[index]
            }
        }
        let copies = decision.duplicated ? 2 : 1
        if decision.delayMs > 0 {
            let due = now + Int64(decision.delayMs)
            for _ in 0..<copies { delayed.append((due, faulty)) }
            return true
        }
        for _ in 0..<copies { transmit(faulty) }
        return true
    }

    /// Sends the delayed messages that are due.
    private func flushDelayed(_ now: Int64) {
        guard !delayed.isEmpty else { return }
        let due = delayed.filter { $0.dueMs <= now }
        delayed.removeAll { $0.dueMs <= now }
        for entry in due.sorted(by: { $0.dueMs < $1.dueMs }) { transmit(entry.message) }
    }

    /// Sends without blocking; false when the peer is not connected or its queue is full.
    @discardableResult
    private func transmit(_ message: Outgoing) -> Bool {
        do {
            switch message.peer {
            case .parent:
                guard let upstream else { return false }
                try upstream.send(message.frames, wait: false)
            case .downstream(let id):
                try downstream.send([id] + message.frames, wait: false)
            }
            return true
        } catch {
            logger.warning("send failed", metadata: ["peer": "\(describe(message.peer))", "error": "\(error)",
                                                     "settlement.msgid": "\(message.requestMsgid ?? "-")"])
            return false
        }
    }

    private func describe(_ peer: Peer) -> String {
        switch peer {
        case .parent: return "parent \(spec.parent?.value ?? "-")"
        case .downstream(let id):
            if id.count == 6, let text = String(bytes: id, encoding: .utf8), DivisionCode(text) != nil { return "child \(text)" }
            return "client " + id.map { String($0, radix: 16) }.joined()
        }
    }

    /// Rewrites the status file when something in it changed (not merely the time): an idle node
    /// writes nothing, which matters when thousands share a machine. No fsync: it is a report,
    /// rebuilt on the next change, not a record.
    private func writeStatus(_ now: Int64) {
        lastStatusMs = now
        var status = NodeStatus(id: spec.id.value, tier: spec.tier.rawValue, pid: getpid(), endpoint: endpoint,
                                state: state, signedIn: machine.isSignedIn, signNo: machine.signNo ?? "",
                                catalogVersion: machine.catalog?.version ?? "",
                                startedAtMs: startedAtMs, updatedAtMs: now, messagesHandled: messagesHandled,
                                pending: machine.pendingCount)
        status.resolving = machine.resolutions.count
        status.childrenSignedIn = machine.signedInChildren.count
        if var previous = lastStatusWritten {
            previous.updatedAtMs = now
            if previous == status { return }
        }
        status.updatedAtMs = now
        lastStatusWritten = status
        guard let data = try? JSONEncoder().encode(status) else { return }
        let path = layout.statusPath(spec.id)
        // Write then rename: a reader never sees half a file.
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        let complete = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) == $0.count }
        close(descriptor)
        if complete { _ = rename(temporary, path) }
    }
}

public struct NodeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
