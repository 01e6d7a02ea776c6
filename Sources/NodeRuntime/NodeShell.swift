import Foundation
import LinkSecurity
import Logging
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel
import Telemetry
import ZeroMQ

/// One node's thin I/O shell around its machine and desks. It owns the node's sockets (the
/// ROUTER its children and hospitals connect to, the DEALER to its parent, the monitors) and
/// its ledger; a `Reactor` steps it, with the other nodes of its process, on one thread.
///
/// Each turn it drains what arrived, feeds it to the machine, commits everything the turn
/// decided in one ledger transaction (group commit), and only then sends the answers: an
/// answer never leaves before its record is durable.
public final class NodeShell {
    /// How often an idle node wakes. A process hosting hundreds of nodes needs idle nodes to
    /// cost next to nothing; a lone node can afford to notice a stop within 50 ms.
    public struct Pace: Sendable {
        /// Longest poll wait: how soon a stop request or a new link-fault file is noticed.
        public var maxWaitMs: Int64
        /// How often an idle node rewrites its status file.
        public var idleStatusMs: Int64
        /// How often a busy one does (a change of state, sign-in or readiness: at once). A packed
        /// county of the national network is busy about once a second at ten times the average
        /// day: every busy turn rewrote its file.
        public var busyStatusMs: Int64
        /// A node with nothing arriving and no deadline due is still turned this often while
        /// its process is busy, for its periodic duties (outbox and ticket flushes, status, link
        /// faults); otherwise a round turns only the nodes with something to do.
        public var idleTurnMs: Int64
        public static let single = Pace(maxWaitMs: 50, idleStatusMs: 1_000, busyStatusMs: 250, idleTurnMs: 50)
        public static let packed = Pace(maxWaitMs: 1_000, idleStatusMs: 5_000, busyStatusMs: 2_000, idleTurnMs: 100)
        /// In a simulation: no status file, and periodic duties as a packed node's.
        public static let simulated = Pace(maxWaitMs: 1_000, idleStatusMs: .max / 4, busyStatusMs: .max / 4, idleTurnMs: 100)
    }

    public let spec: NodeSpec
    public var id: DivisionCode { spec.id }
    public let pace: Pace
    let topology: Topology
    let layout: DataLayout
    var logger: Logger
    let endpoint: String
    let keys: NodeKeys?

    // The pure parts: routing and deadlines, and the desks.
    var machine: NodeMachine
    /// County tier: settles, reverses and corrects what ends here.
    var desk: InsuredCountyDesk
    /// Opens, acknowledges and closes tickets; the registry at the national node.
    var tickets: TicketDesk
    /// Screens upload batches at this tier.
    var uploads: UploadScreen
    /// Provincial tier: the records stored here, handed on to the national store.
    var outbox: NationalOutbox

    // The I/O parts.
    let ledger: Ledger
    /// A `NativeRouter` and a `NativeDealer`, which speak ZMTP on this thread: in clear, or
    /// secured with CURVE (the port then admits only the keys `keys` names, and each message
    /// from below comes with the name its sender's key was admitted under).
    /// None in a simulation (`simulated`): its hospitals and neighbours reach it in memory.
    let downstream: NativeRouter?
    /// The link to the parent; none when the parent shares the process (`parentInProcess`).
    let upstream: NativeDealer?
    /// Handshakes with, and connections lost to, the parent seen so far: after a new handshake
    /// (the parent restarted) this node signs in again at once, so that the parent can route
    /// to it (and knows it does).
    var parentHandshakesSeen = 0, parentLossesSeen = 0
    var gate: InboundGate
    var links: LinkFaultPort
    /// A crash point a scenario armed here (`crash` faults); nil unless the node was started
    /// with crash points (`cluster up --crash-points`), and in a simulation.
    var crashPoints: CrashPoints?
    var status: StatusReporter

    // Nodes of this process one hop away (set by the reactor): messages to them are handed over
    // in memory instead of through TCP, sealed and through link faults
    // like any other, and they pass the receiver's gate like any other.
    /// The parent, when it runs in this process (the reactor holds both).
    weak var localParent: NodeShell?
    /// The parent runs in this process: this node has no socket to it.
    let parentInProcess: Bool
    /// Children in this process, by routing id.
    var localChildren: [[UInt8]: NodeShell] = [:]
    /// In a simulation, who carries what this node hands to its neighbours and its hospitals
    /// (with the simulated link's delay), instead of handing it over at once.
    public weak var courier: (any Courier)?
    /// Runs inside a simulation: no sockets, no status file, no link-fault file; the courier
    /// carries its messages.
    public let simulated: Bool
    /// Handed over by local children since this node's last turn: the sender's routing id first.
    private var fromLocalChildren: [[[UInt8]]] = []
    /// Handed over by the local parent since this node's last turn.
    private var fromLocalParent: [[[UInt8]]] = []
    /// Something was handed over since the last turn: the reactor steps again before it waits.
    public var hasLocalMail: Bool { !fromLocalChildren.isEmpty || !fromLocalParent.isEmpty }

    /// A message carried to this node from below (a child or a hospital): its sender's routing
    /// id first, as a port receives it. Served at the node's next turn.
    public func deliver(fromBelow frames: [[UInt8]]) { fromLocalChildren.append(frames) }

    /// A message carried to this node from its parent. Served at the node's next turn.
    public func deliver(fromParent frames: [[UInt8]]) { fromLocalParent.append(frames) }
    /// What this turn received, to send on as received where the machine changed nothing else.
    var passThrough = PassThrough()
    /// Something was read from or sent on this node's sockets since the reactor last asked
    /// (`takeSocketsTouched`): the reactor's poller must ask them again before it waits.
    /// The sockets (bits by position in `sockets`) used in a way that can take the signal of
    /// what arrives next: a send, or a read stopped before the socket had nothing left.
    private var socketsTouched: UInt8 = 0
    /// A message was sent on a socket since the last `flushHeld`.
    private var hasHeldWrites = false
    /// This node's routing id as its parent's ROUTER knows it.
    let routingID: [UInt8]

    /// The reactor's sync threads and this node's index there; nil: syncs on the caller's thread.
    var committer: (writers: any SyncService, index: Int)?
    /// Syncs that kept answers waiting (logged; `SlowSyncs`).
    var slowSyncs = SlowSyncs()
    /// Rounds committed but not yet known durable: their answers wait for a sync begun after
    /// their commit.
    var syncs = SyncPipeline<RoundInCommit>()
    /// Rounds wait for a sync: the node is stepped meanwhile, but does not stop before it ends.
    public var awaitsSync: Bool { !syncs.isIdle }
    /// Drained and done, but rounds still wait for their sync: stop once they have left.
    var stopsAfterSync = false

    /// The round's instant, set by the reactor at the start of each turn.
    private(set) var nowMs: Int64
    public private(set) var state = NodeState.starting
    let startedAtMs: Int64
    private var drainStartedMs: Int64?
    var messagesHandled: Int64 = 0
    /// Messages handed to a neighbour in this process (in the status file).
    var handedOverInMemory: Int64 = 0
    /// Ledger commits since start (in the status file).
    var commits: Int64 = 0
    /// The node's live metrics (`metrics_port`); nil when the process serves none (and in simulations).
    public var metrics: NodeMetrics?
    /// Metrics: the transaction codes of requests refused in this turn, by msgid, until their
    /// answers are recorded (a refusal's answer names its request only by msgid).
    var refusedTxns: [String: String] = [:]
    /// Metrics: what was last counted into them, and when the ledger was last read for them.
    var messagesCounted: Int64 = 0
    var metricsReadMs: Int64 = .min / 2
    private var reportedSignedIn = false
    private var reportedReady = false
    private var reportedChildren = 0
    /// Most messages taken from one socket per turn, so one busy peer cannot starve the rest
    /// and one transaction stays bounded.
    let drainLimit = 1024
    /// How long a stopping node waits for answers already on their way.
    let drainTimeoutMs: Int64 = 5_000

    // Outboxes the desks fill, and what they wait for.
    /// Ticket messages sent and not yet answered: what each is, for when its answer comes.
    var ticketsInFlight: [String: (sentAtMs: Int64, event: TicketEvent, ticketID: String)] = [:]
    var lastTicketFlushMs: Int64 = 0
    /// False once a flush found the ticket outbox empty; set when a message is queued. Spares a
    /// ledger read every 200 ms on a node with nothing to send.
    var ticketOutboxMayHaveWork = true
    /// Open node_unresponsive tickets this node opened, by the silent node: closed when it answers again.
    var openUnresponsive: [String: String] = [:]
    var lastOutboxFlushMs: Int64 = 0
    let outboxFlushIntervalMs: Int64 = 100

    // A full disk (`NodeShell+DiskFull`).
    /// Room set aside on the ledger's disk; none in a simulation, whose disk is simulated.
    var diskReserve: DiskReserve?
    /// Since when the disk has been full (new work refused); nil while it has room.
    var diskFullSinceMs: Int64?
    var diskFullTicketOpened = false
    var lastDiskCheckMs: Int64 = 0
    var refusedForDiskFull = 0
    var lastDiskFullReportMs: Int64 = .min / 2

    /// `keys`: required when the topology is secured. `parentInProcess`: the parent runs in this
    /// process too, and is reached in memory only (no link to it, nothing to poll). `nowMs`: the
    /// clock's reading at start-up. `simulated`: the node runs in a simulation, which carries
    /// its messages (`courier`) and syncs its ledger (`ledgerSyncs` false: the disk is simulated).
    public init(topology: Topology, id: DivisionCode, dataDirectory: String, logger: Logger,
                pace: Pace = .single, keys: NodeKeys? = nil, parentInProcess: Bool = false, nowMs: Int64,
                simulated: Bool = false, crashPoints: Bool = false) throws {
        guard let spec = topology.node(id) else {
            throw SettleNetError(.node, "node \(id) is not in topology \(topology.file)")
        }
        guard keys != nil || !topology.isSecured || simulated else {
            throw SettleNetError(.node, "node \(id): topology \(topology.file) is secured (security.curve) but no keys were given")
        }
        self.keys = keys
        self.spec = spec
        self.topology = topology
        self.layout = DataLayout(root: dataDirectory)
        self.logger = logger
        self.logger[metadataKey: "node"] = "\(id)"
        self.pace = pace
        self.nowMs = nowMs
        self.simulated = simulated
        self.parentInProcess = parentInProcess || (simulated && spec.parent != nil)
        startedAtMs = nowMs
        endpoint = topology.endpoint(of: id)!
        routingID = Array(id.value.utf8)
        // Only the county reads a record's every field (its rules); above it, records are kept
        // and passed on as the bytes that came.
        gate = InboundGate(node: id, parent: spec.parent, secured: keys != nil, edge: topology.edge,
                           uploadRecords: spec.tier == .county ? .full : .keysOnly)
        links = LinkFaultPort(node: id, faultsFile: layout.linkFaultsFile, tracePath: layout.linkDecisionsPath(id))
        self.crashPoints = crashPoints && !simulated ? CrashPoints(node: id, file: layout.crashPointsFile) : nil
        status = StatusReporter(path: layout.statusPath(id))

        try FileManager.default.createDirectory(atPath: layout.nodeDirectory(id), withIntermediateDirectories: true)
        ledger = try Ledger(path: layout.ledgerPath(id), syncsToDisk: !simulated)
        if let population = topology.population(of: id) { try ledger.seedPopulation(population) }
        outbox = NationalOutbox(province: id)
        uploads = UploadScreen(node: id, tier: spec.tier, institutions: Set(topology.institutions(of: id)), routing: topology.routingTable)
        desk = InsuredCountyDesk(county: id, policy: topology.policy(for: id),
                                 settlementSerial: try ledger.read { try $0.settlementCount() })
        tickets = TicketDesk(node: id, registry: topology.nodes.first { $0.parent == nil }?.id ?? DivisionCode("000000")!)
        machine = NodeMachine(config: .init(id: id, tier: spec.tier, routing: topology.routingTable,
                                            institutions: Set(topology.institutions(of: id)),
                                            nationalCatalog: spec.parent == nil ? Catalog.national() : nil))

        guard !simulated else {
            downstream = nil
            upstream = nil
            try restoreFromLedger()
            return
        }
        let reserve = DiskReserve(directory: layout.nodeDirectory(id))
        diskReserve = reserve
        if !reserve.make() {
            // Started on a full disk: as if its ledger had just met it (the ticket waits for the first turn).
            diskFullSinceMs = nowMs
            ledger.refusesChanges = true
            logger.critical("disk full at start: refusing new work (SN-E3008) until space returns",
                            metadata: ["directory": "\(layout.nodeDirectory(id))"])
        }
        let bindEndpoint = topology.bindEndpoint(of: id)!
        func bound(_ bind: () throws -> Void) throws {
            do {
                try bind()
            } catch {
                throw SettleNetError(.node, "node \(id) cannot bind \(bindEndpoint): \(error) (is another cluster using this port? try --base-port)")
            }
        }
        // A restarted child takes its identity back (handover), but on secured links no
        // connection may take over a live one's routing id (another admitted key could then
        // receive a child's traffic): the gate checks that the id is the key's own.
        var curveServer: CurveServerSecurity?
        if let keys {
            var refusalLogger = logger
            refusalLogger[metadataKey: "node"] = "\(id)"
            curveServer = CurveServerSecurity(keys.own, admit: AdmissionGate.admitting(keys, logger: refusalLogger))
            guard curveServer != nil else { throw SettleNetError(.node, "node \(id): its key pair is not 40 Z85 characters each") }
        }
        let router = try NativeRouter(handover: keys == nil, maxMessageBytes: Int(WireCodec.maxMessageBytes), curve: curveServer)
        router.holdsWrites = true   // the reactor writes a round's messages together (`flushHeld`)
        try bound { try router.bind(bindEndpoint) }
        downstream = router
        if spec.parent != nil, !self.parentInProcess, let parentEndpoint = spec.parent.flatMap({ topology.endpoint(of: $0) }) {
            var curveClient: CurveClientSecurity?
            if let keys {
                guard let parentKey = keys.parentKey, let security = CurveClientSecurity(keys.own, serverKey: parentKey) else {
                    throw SettleNetError(.node, "node \(id): no usable public key of its parent \(spec.parent!) in the key directory")
                }
                curveClient = security
            }
            // Dialled by `connectToParent`, once every node of the process has bound its port.
            let dealer = try NativeDealer(endpoint: parentEndpoint, routingID: routingID, redialMs: 100, immediate: true,
                                          maxMessageBytes: Int(WireCodec.maxMessageBytes), dialNow: false, curve: curveClient)
            dealer.holdsWrites = true
            upstream = dealer
        } else {
            upstream = nil
        }
        try restoreFromLedger()
    }

    /// What an earlier run of this node left in its ledger: resolutions, requests in flight at
    /// the last stop, settlements resolved, tickets about silent nodes.
    private func restoreFromLedger() throws {
        // Due at once (once signed in): their backoffs were timed on the clock of the node's
        // last run, which a clock stepped back since would stretch by the step.
        machine.restore(try ledger.read { try $0.openResolutions() }.map { open in
            var resolution = open
            resolution.nextAttemptMs = min(open.nextAttemptMs, nowMs)
            return resolution
        })
        // Requests journaled as in flight when this node last stopped: whatever answers came back
        // found nobody waiting, so their outcome is in doubt here. Resolve them like any other.
        let inFlight = try ledger.read { try $0.inFlightAtOrigin() }
        let inDoubt = machine.inDoubtAfterRestart(inFlight, nowMs: nowMs)
        if !inDoubt.isEmpty {
            try ledger.write { tx in
                for case .resolution(let resolution) in inDoubt { try tx.saveResolution(resolution) }
            }
            let reversals = inFlight.filter { !$0.omsgid.isEmpty }   // reversals and corrections name what they undo
            logger.warning("requests in flight at the last stop are in doubt: resolving them by correction (2601)",
                           metadata: ["requests": "\(inFlight.count)", "reversals": "\(reversals.count)",
                                      "settlements_to_resolve": "\(inDoubt.count)"])
        }
        machine.restore(resolved: try ledger.read { try $0.resolvedMsgids() })
        for ticket in try ledger.read({ try $0.tickets() }) where ticket.kind == .nodeUnresponsive
            && ticket.openedBy == id.value && ticket.state != .closed {
            openUnresponsive[ticket.responsible] = ticket.ticketID
        }
    }

    /// Dials the parent (a parent outside this process). Only once every node of the process has
    /// bound its own port: a process that cannot bind one exits before any of its nodes has
    /// presented its routing id to a parent, which would take over the link of a node of the
    /// same id in another cluster on the same ports (the parent's ROUTER hands the id over).
    public func connectToParent() throws {
        upstream?.connect()
    }

    /// Where the parent listens, when this node reaches it over a socket.
    var parentEndpoint: String? { upstream == nil ? nil : spec.parent.flatMap { topology.endpoint(of: $0) } }

    /// The sockets the reactor polls for this node, in the order `turn` reads them.
    public var sockets: [any PolledSocket] { [downstream].compactMap { $0 } + [upstream].compactMap { $0 } }

    public var isStopped: Bool { state == .stopped }

    /// Signed in with its parent and holding the catalog (the national node: at once).
    public var isReady: Bool { peek { $0.isReady } }

    /// Nothing waits for an answer here and no settlement is in doubt.
    public var isQuiet: Bool { peek { $0.pendingCount == 0 && $0.resolutions.isEmpty } && syncs.isIdle }

    /// Something waits to be sent on by a flush: records for the national store, ticket messages.
    public var hasOutboundWork: Bool { (spec.tier == .province && outbox.hasWork) || ticketOutboxMayHaveWork }

    /// Messages this node has taken in since it started.
    public var messagesTaken: Int64 { messagesHandled }

    /// Serving from now on.
    public func start(nowMs: Int64) {
        self.nowMs = nowMs
        logger.info("node started", metadata: ["endpoint": "\(endpoint)", "tier": "\(spec.tier.rawValue)",
                                               "parent": "\(spec.parent?.value ?? "-")",
                                               "links": "\(keys == nil ? "plaintext" : "curve")"])
        if let keys, keys.institutionsWithoutKeys > 0 {
            logger.warning("institutions without keys cannot connect", metadata: ["institutions": "\(keys.institutionsWithoutKeys)"])
        }
        state = .running
    }

    /// Stop taking new work; answers in flight still pass, for up to `drainTimeoutMs`.
    public func beginDraining(nowMs: Int64) {
        guard state == .running || state == .starting else { return }
        drainStartedMs = nowMs
        state = .draining
        machine.beginDraining()
        logger.info("stopping: draining", metadata: ["pending": "\(machine.pendingCount)"])
    }

    /// When this node must next be turned with nothing arriving (`nextWakeMs`, as of its last
    /// turn): asked every round for every node of the process, so it is kept, not computed
    /// (computing it copies the node's machine).
    public private(set) var wakeAtMs: Int64 = 0
    private var lastTurnMs: Int64 = .min / 2
    /// Something changed outside a turn (a sync ended): turned in the next round.
    var turnSoon = true

    /// Whether the reactor's round must turn this node although none of its sockets has input.
    /// A process of a hundred nodes turned each of them every round, for every message any of
    /// them received: most of its time at the national scale went to nodes with nothing to do.
    public func needsTurn(nowMs: Int64) -> Bool {
        turnSoon || hasLocalMail || state == .draining || nowMs >= wakeAtMs || nowMs - lastTurnMs >= pace.idleTurnMs
    }

    /// When this node next has something to do with nothing arriving, as of its last turn: its
    /// timers (`wakeAtMs`), a ticket outbox that may hold messages, a national outbox with work.
    /// A simulation turns it then; a reactor turns a busy process's nodes every `idleTurnMs`
    /// instead, which a simulation of thousands of nodes cannot afford.
    public var nextDutyMs: Int64 {
        var due = wakeAtMs
        if ticketOutboxMayHaveWork { due = min(due, lastTicketFlushMs + 200) }
        if spec.tier == .province && outbox.hasWork { due = min(due, lastOutboxFlushMs + outboxFlushIntervalMs) }
        return due
    }

    /// The reactor's wait may end here for this node (`wakeAtMs`, or at once when `turnSoon`).
    var waitEndsMs: Int64 { turnSoon ? 0 : wakeAtMs }

    private func turned(nowMs: Int64) {
        lastTurnMs = nowMs
        turnSoon = false
        wakeAtMs = state == .stopped ? .max : nextWakeMs(nowMs: nowMs)
    }

    /// When this node next has something to do without a message arriving (the reactor caps
    /// its wait at the pace's longest).
    public func nextWakeMs(nowMs: Int64) -> Int64 {
        if state == .draining { return nowMs + 10 }
        return min(peek { $0.nextDeadlineMs(nowMs: nowMs) }, links.nextDueMs, gate.nextReportMs)
    }

    /// Reads the machine in place. Reading a computed property of `machine` (a struct of another
    /// module) through this class copied the whole machine first, retaining every field of it;
    /// an inout access proves that nothing else touches it meanwhile.
    @inline(__always)
    func peek<T>(_ read: (inout NodeMachine) -> T) -> T { read(&machine) }

    /// Moves the node's instant on outside a turn (a commit that ended), never back.
    func advanceClock(to nowMs: Int64, nowUs: Int64? = nil) {
        self.nowMs = max(self.nowMs, nowMs)
        machine.clockUs = max(machine.clockUs, nowUs ?? nowMs * 1_000)
    }

    /// One turn: what arrived on `readable` (one flag per socket of `sockets`), the timers due
    /// at `nowMs`, one ledger transaction, then the answers. `nowUs`: the same instant in µs,
    /// when the clock has them (it times transits).
    public func turn(readable: ArraySlice<Bool>, nowMs: Int64, nowUs: Int64? = nil) throws {
        self.nowMs = nowMs
        machine.clockUs = nowUs ?? nowMs * 1_000
        defer { turned(nowMs: nowMs) }
        guard state != .stopped, !stopsAfterSync else { return }
        if let started = drainStartedMs, machine.pendingCount == 0 || nowMs - started >= drainTimeoutMs {
            try execute(machine.abandonPending(nowMs: nowMs))
            if awaitsSync { stopsAfterSync = true } else { stop() }
            return
        }
        passThrough.forget(roundsAwaitSync: awaitsSync)
        if !simulated && nowMs - links.lastCheckMs >= max(100, pace.maxWaitMs) {
            links.refresh(nowMs: nowMs, logger: logger)
            crashPoints?.refresh(nowMs: nowMs, logger: logger)
        }
        for message in links.due(nowMs: nowMs) { transmit(message) }
        var flags = readable.makeIterator()
        var directives: [Directive] = []
        if let downstream, flags.next() == true { drain(downstream, position: 0, from: nil, into: &directives) }
        if let upstream, flags.next() == true { drain(upstream, position: 1, from: .parent, into: &directives) }
        if hasLocalMail { drainLocalMail(into: &directives) }
        if keys != nil, let downstream {
            // Failed handshakes (plaintext peers, clients without this node's key, refused keys)
            // never reach the machine: counted and reported by reason.
            for (reason, count) in downstream.takeFailedHandshakes() { gate.handshakesFailed(count, reason: reason) }
        }
        if let native = upstream {
            if native.connectionsLost != parentLossesSeen {
                parentLossesSeen = native.connectionsLost
                logger.warning("parent link lost: dialling it again", metadata: ["parent": "\(native.endpoint)",
                                                                                  "reason": "\(native.lastProblem ?? "-")"])
            }
            if native.handshakes != parentHandshakesSeen {
                parentHandshakesSeen = native.handshakes
                directives += machine.parentLinkUp(nowMs: nowMs)
            }
        }
        if spec.tier == .province && nowMs - lastOutboxFlushMs >= outboxFlushIntervalMs { flushOutbox() }
        if nowMs - lastTicketFlushMs >= 200 { flushTicketOutbox() }
        if nowMs - gate.lastReportMs >= gate.reportIntervalMs { gate.report(nowMs: nowMs, logger: logger) }
        directives += machine.tick(nowMs: nowMs)
        try execute(directives)
        if diskFullSinceMs != nil { checkFullDisk() }
        // Compared with what was last reported, not with the start of the turn: the parent's
        // answers to 9001 and 1301 arrive in `drain`, before the turn's tick.
        let (signedIn, ready, children) = peek { ($0.isSignedIn, $0.isReady, $0.signedInChildren.count) }
        if signedIn != reportedSignedIn || ready != reportedReady || children != reportedChildren {
            if signedIn && !reportedSignedIn {
                logger.info("signed in", metadata: ["parent": "\(spec.parent?.value ?? "-")"])
            }
            reportedSignedIn = signedIn
            reportedReady = ready
            reportedChildren = children
            status.soon()
        }
        // Fresh within the pace's busy interval while busy; its idle interval while idle.
        if !simulated && nowMs - status.lastMs >= (directives.isEmpty ? pace.idleStatusMs : pace.busyStatusMs) { writeStatus() }
        links.flushTrace(logger: logger)
    }

    /// Writes what this node's sockets held back since the last call: the reactor calls it
    /// before each wait, so that a round's messages to one peer leave in one system call.
    func flushHeld() {
        guard hasHeldWrites else { return }
        hasHeldWrites = false
        upstream?.flushHeld()
        downstream?.flushHeld()
    }

    /// The positions in `sockets` used since the last call, as bits.
    func takeSocketsTouched() -> UInt8 {
        defer { socketsTouched = 0 }
        return socketsTouched
    }

    /// Closes the node's sockets after its last turn (or a failure) and says so.
    func stop() {
        state = .stopped
        links.flushTrace(logger: logger)
        if !simulated { writeStatus() }
        status.close()
        // The parent link before the port: once the port is free another cluster may start on
        // it, and this node must not dial that cluster's parent meanwhile.
        upstream?.close()
        downstream?.close()
        logger.info("node stopped", metadata: ["messages": "\(messagesHandled)"])
    }

    /// A turn failed: this node stops at once (the reactor reports the failure).
    public func abort() {
        guard state != .stopped else { return }
        stop()
    }

    // MARK: Receiving

    /// Reads until `socket` has nothing, which re-arms its signal; stopped short (the limit, a
    /// failure), it is marked touched so that the poller asks it again.
    private func drain(_ socket: any PolledSocket, position: Int, from fixedPeer: Peer?, into directives: inout [Directive]) {
        // Only messages from below on secured links carry a user id worth reading.
        let authenticated = fixedPeer == nil && keys != nil ? downstream : nil
        for _ in 0..<drainLimit {
            let frames: [[UInt8]]
            let userID: String?
            do {
                let received = try authenticated.map { $0.receiveAuthenticated() } ?? socket.receive(wait: false).map { ($0, nil) }
                guard let received else { return }
                (frames, userID) = received
            } catch {
                logger.error("receive failed", metadata: ["error": "\(error)"])
                break
            }
            received(frames, userID: userID, fixedPeer: fixedPeer, into: &directives)
        }
        socketsTouched |= 1 << position
    }

    /// What local neighbours handed over since the last turn, in the order handed over.
    private func drainLocalMail(into directives: inout [Directive]) {
        // Only other nodes hand mail over, never during this node's turn: emptied in place, the
        // queues keep their storage from turn to turn.
        for frames in fromLocalParent { received(frames, userID: nil, fixedPeer: .parent, into: &directives) }
        fromLocalParent.removeAll(keepingCapacity: true)
        // A local child is who its routing id says: no key could have spoken for it in memory.
        for frames in fromLocalChildren {
            received(frames, userID: keys == nil ? nil : String(decoding: frames[0], as: UTF8.self), fixedPeer: nil, into: &directives)
        }
        fromLocalChildren.removeAll(keepingCapacity: true)
    }

    /// One message through the gate to the machine or the desk that waits for it.
    private func received(_ frames: [[UInt8]], userID: String?, fixedPeer: Peer?, into directives: inout [Directive]) {
        messagesHandled += 1
        switch gate.admit(frames, userID: userID, fixedPeer: fixedPeer, nowMs: nowMs, machine: &machine, logger: logger) {
        case .dropped:
            return
        case .refused(let answer, let peer):
            directives.append(.answer(answer, to: peer, record: nil))
        case .request(let request, let body, let peer):
            passThrough.received(request, body: body)
            let decided = machine.receivedRequest(request, from: peer, nowMs: nowMs)
            if metrics != nil {
                for case .answer(let answer, _, nil) in decided { refusedTxns[answer.reqMsgid] = request.infno }
            }
            directives += decided
        case .response(let response, let body, let peer):
            passThrough.received(response, body: body)
            if let node = peek({ $0.nodeID(of: peer) }), let ticketID = openUnresponsive[node] {
                closeUnresponsive(node: node, ticketID: ticketID)   // it answers again: it is back
            }
            if peer == .parent, outbox.awaits(response.reqMsgid) {
                acknowledgeOutbox(response)
            } else if ticketsInFlight[response.reqMsgid] != nil {
                ticketEventAnswered(response)
            } else {
                directives += machine.receivedResponse(response, from: peer, nowMs: nowMs)
            }
        }
    }

    // MARK: Sending

    /// Sends a message through this node's link faults. Messages to other nodes are sealed with
    /// a checksum first, as the sender's stack would do; a hospital's link has no faults.
    @discardableResult
    func send(_ message: Outgoing) -> Bool {
        guard !message.frames.isEmpty else { return false }   // nothing that may be sent (`frames(_:)`)
        guard let peer = peek({ $0.nodeID(of: message.peer) }) else { return transmit(message) }
        // The routing id is not the child: unreachable over TCP (in memory it can only be the child).
        if gate.isHeldByImpostor(peer) && !isLocal(message.peer) { return false }
        var sealed = message
        sealed.frames = WireCodec.sealed(message.frames)
        if links.isClear { return transmit(sealed) }   // the usual case: no array per message
        let copies = links.shape(sealed, to: peer, nowMs: nowMs)
        guard copies.count == 1 else {
            for copy in copies { transmit(copy) }
            return true   // dropped or delayed: lost on the wire as far as the sender can tell
        }
        return transmit(copies[0])
    }

    func isLocal(_ peer: Peer) -> Bool {
        switch peer {
        case .parent: localParent != nil
        case .downstream(let id): localChildren[id] != nil
        }
    }

    /// Sends without blocking; false when the peer is not connected or its queue is full. A
    /// neighbour in this process gets it in memory, for its next turn; a stopped one not at all.
    @discardableResult
    func transmit(_ message: Outgoing) -> Bool {
        do {
            switch message.peer {
            case .parent:
                if let localParent {
                    guard !localParent.isStopped else { return false }
                    handedOverInMemory += 1
                    if let courier { courier.carry([routingID] + message.frames, from: self, to: localParent, upward: true) } else {
                        localParent.fromLocalChildren.append([routingID] + message.frames)
                    }
                    return true
                }
                guard let upstream else { return false }
                socketsTouched |= 0b10
                hasHeldWrites = true
                try upstream.send(message.frames, wait: false)
            case .downstream(let id):
                if let child = localChildren[id] {
                    guard !child.isStopped else { return false }
                    handedOverInMemory += 1
                    if let courier { courier.carry(message.frames, from: self, to: child, upward: false) } else {
                        child.fromLocalParent.append(message.frames)
                    }
                    return true
                }
                if let courier { return courier.answerHospital(message.frames, routingID: id, from: self) }
                guard let downstream else { return false }
                socketsTouched |= 0b01
                hasHeldWrites = true
                try downstream.send(to: id, message.frames, wait: false)
            }
            return true
        } catch {
            logger.warning("send failed", metadata: ["peer": "\(gate.describe(message.peer))", "error": "\(error)",
                                                     "settlement.msgid": "\(message.requestMsgid ?? "-")"])
            return false
        }
    }

    private func writeStatus() {
        var record = NodeStatus(id: spec.id.value, tier: spec.tier.rawValue, pid: getpid(), endpoint: endpoint,
                                state: state.rawValue, signedIn: machine.isSignedIn, signNo: machine.signNo ?? "",
                                catalogVersion: machine.catalog?.version ?? "",
                                startedAtMs: startedAtMs, updatedAtMs: nowMs, messagesHandled: messagesHandled,
                                pending: machine.pendingCount)
        record.resolving = machine.resolutions.count
        record.childrenSignedIn = machine.signedInChildren.count
        record.handedOverInMemory = handedOverInMemory
        record.passedThrough = passThrough.passed
        record.commits = commits
        record.slowSyncs = Int64(slowSyncs.total)
        record.metrics = metricsURL
        record.diskFullSinceMs = diskFullSinceMs
        status.write(record, nowMs: nowMs)
        refreshMetrics()
    }

    /// Where this node's metrics are served (a packed process's one endpoint), for its status file.
    public var metricsURL: String?

    /// The gauges as the node stands, and what the ledger counts (open tickets, screened
    /// records): at the status's pace, the ledger at most once a second.
    private func refreshMetrics() {
        guard let metrics else { return }
        metrics.received(Int(messagesHandled - messagesCounted))
        messagesCounted = messagesHandled
        metrics.refresh(pending: machine.pendingCount, inDoubt: machine.resolutions.count, syncQueue: syncs.rounds,
                        signedIn: machine.isSignedIn, diskFull: diskFullSinceMs != nil)
        guard nowMs - metricsReadMs >= 1_000 || state == .stopped else { return }
        metricsReadMs = nowMs
        do {
            let (tickets, uploads) = try ledger.read { tx in (try tx.openTicketCounts(), try tx.uploadCounts()) }
            metrics.refresh(ticketsOpen: tickets)
            metrics.refresh(uploadCounts: uploads)
        } catch {
            logger.warning("metrics: cannot read the ledger's counts", metadata: ["error": "\(error)"])
        }
    }
}

