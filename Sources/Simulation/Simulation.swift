import Foundation
import Logging
import NetworkTopology
import NodeRuntime
import Persistence
import Scenario
import SettlementCore
import SettlementModel

/// The whole network in one process on virtual time: every node of the topology is a real
/// `NodeShell` (its machine, desks and ledger), but nothing it sends crosses a socket and nothing
/// it commits waits for a disk. The simulation carries each message over its link
/// (`Courier`), makes each commit durable after the disk's time (`SyncService`), turns each node
/// when something arrives or a timer is due, and steps the hospitals (`Hospitals`) on the
/// same clock. One thread, one agenda (`EventQueue`), one stream of draws: the same seed gives
/// the same run.
public final class Simulation: Courier, SyncService {
    enum Event {
        /// A message arrives at a node (in the life it was sent to): from below (a child or a
        /// hospital; routing id first), or from its parent.
        case deliver(node: Int, life: Int, frames: [[UInt8]], fromBelow: Bool)
        /// An answer arrives at its hospital.
        case answerArrives([[UInt8]])
        /// A node's turn: what arrived, and its timers.
        case turn(node: Int, life: Int)
        /// A node's ledger sync is over: the frames it covers are durable.
        case synced(node: Int, life: Int, tookUs: Int64, covering: Int)
        /// The hospitals send what is due.
        case hospitals
        /// The scenario's fault at this place in its list begins.
        case fault(Int)
        /// A killed node starts again from its ledger.
        case restart(node: Int, fault: Int)
        /// A node's failing disk works again.
        case diskRepaired(node: Int, fault: Int)
    }

    public let topology: Topology
    public let model: SimulationModel
    private(set) var nodes: [NodeShell]
    private var indexOf: [ObjectIdentifier: Int]
    /// Each node's life: one more at each crash. What was on its way to a life that ended is lost.
    private var lives: [Int]
    /// Killed and not started again.
    private var down: [Bool]
    /// Paused (as by SIGSTOP) until then: it neither works nor sends.
    private var pausedUntil: [Int64]
    /// The node's disk fails until then (`disk_fail`): every commit fails.
    private var diskFailsUntil: [Int64]
    private let dataDirectory: String
    private let logger: Logger
    private var faults: [FaultSpec] = []
    private var faultSeed: UInt64 = 0
    /// The link faults and partitions begun so far (each ends by itself at its end time).
    private var linkFaults: [LinkFault] = []
    /// What each fault did, for the report.
    public private(set) var faultRecords: [FaultRecord] = []
    private let countyIndex: [DivisionCode: Int]
    private var agenda = EventQueue<Event>()
    private var draws: Draws
    /// Virtual microseconds since the simulation began.
    public private(set) var nowUs: Int64 = 0
    /// The wall clock the virtual time stands for: its start (a Monday, 00:00 in Beijing).
    public let epochMs: Int64
    /// When each node is next turned (`Int64.max`: not scheduled), and until when it is busy.
    private var turnAt: [Int64]
    private var busyUntil: [Int64]
    /// Sends made during a node's turn leave when the turn's work is done: held until then.
    private var turning: Int?
    private var heldDuringTurn: [LinkEvent] = []
    private var syncsDuringTurn: [(node: Int, covering: Int)] = []
    /// Each node's parent (-1: none), and the model of its link to it.
    private let parentIndex: [Int]
    private let uplink: [(base: Int64, jitter: Int64)]
    /// The latest arrival on each directed link: a link delivers in order, as TCP does.
    private var lastArrival: [Int64: Int64] = [:]
    private var hospitals: Hospitals?
    private var loadStartUs: Int64 = 0
    public private(set) var events = 0

    /// `dataDirectory`: where the nodes' ledgers are (the cluster's layout).
    public init(topology: Topology, dataDirectory: String, model: SimulationModel, seed: UInt64,
                epochMs: Int64 = Simulation.mondayInBeijingMs, logger: Logger) throws {
        self.topology = topology
        self.model = model
        self.epochMs = epochMs
        self.dataDirectory = dataDirectory
        self.logger = logger
        draws = Draws(seed: seed)
        try Self.copyTemplateLedger(topology: topology, dataDirectory: dataDirectory)
        var shells: [NodeShell] = []
        for spec in topology.nodes {
            shells.append(try NodeShell(topology: topology, id: spec.id, dataDirectory: dataDirectory, logger: logger,
                                        pace: .simulated, nowMs: epochMs, simulated: true))
        }
        nodes = shells
        indexOf = Dictionary(uniqueKeysWithValues: shells.enumerated().map { (ObjectIdentifier($1), $0) })
        let indexOfID = Dictionary(uniqueKeysWithValues: shells.enumerated().map { ($1.id, $0) })
        parentIndex = shells.map { $0.spec.parent.flatMap { indexOfID[$0] } ?? -1 }
        uplink = shells.map { shell in
            shell.spec.parent.flatMap { topology.node($0)?.tier }.map { model.link(toParent: $0) } ?? (model.linkUs, model.linkJitterUs)
        }
        countyIndex = Dictionary(uniqueKeysWithValues: shells.enumerated().filter { $1.spec.tier == .county }.map { ($1.id, $0) })
        turnAt = Array(repeating: .max, count: shells.count)
        busyUntil = Array(repeating: 0, count: shells.count)
        lives = Array(repeating: 0, count: shells.count)
        down = Array(repeating: false, count: shells.count)
        pausedUntil = Array(repeating: 0, count: shells.count)
        diskFailsUntil = pausedUntil
        clockOffsetMs = Array(repeating: 0, count: shells.count)
        startedOffsetMs = clockOffsetMs
        NodeShell.joinInMemory(shells)
        for (index, node) in shells.enumerated() {
            node.courier = self
            node.syncWith(self, index: index)
        }
    }

    /// Every node's ledger begins as a copy of one migrated, empty ledger: running every
    /// migration once per node was most of the time a national simulation took to start.
    /// Nodes whose ledger exists already keep it.
    static func copyTemplateLedger(topology: Topology, dataDirectory: String) throws {
        let layout = DataLayout(root: dataDirectory)
        let files = FileManager.default
        let template = "\(dataDirectory)/.template-ledger.sqlite"
        defer { try? files.removeItem(atPath: template) }
        do {
            // Closed at once: its log is copied back and removed, the template is one file.
            _ = try Ledger(path: template, syncsToDisk: false)
            for node in topology.nodes where !files.fileExists(atPath: layout.ledgerPath(node.id)) {
                try files.createDirectory(atPath: layout.nodeDirectory(node.id), withIntermediateDirectories: true)
                try files.copyItem(atPath: template, toPath: layout.ledgerPath(node.id))
            }
        } catch {
            throw SettleNetError(.simulation, "cannot prepare the nodes' ledgers in \(dataDirectory)", cause: error)
        }
    }

    /// 2026-01-05 00:00 in Beijing (UTC+8), a Monday.
    public static let mondayInBeijingMs: Int64 = 1_767_542_400_000

    /// The clock now: the virtual time's wall clock.
    private var nowMs: Int64 { epochMs + nowUs / 1_000 }
    /// How far each machine's wall clock is off the virtual time's (a `clock_jump`), milliseconds.
    private var clockOffsetMs: [Int64]
    /// The same when the node last started: a node's clock is its machine's wall clock at its
    /// start, moved on by the monotonic clock (`WallClock`), so a jump reaches it only when it
    /// starts again.
    private var startedOffsetMs: [Int64]
    /// The node's clock now.
    private func nowMs(of index: Int) -> Int64 { nowMs + startedOffsetMs[index] }
    /// The same in µs (it times transits: a simulated hop takes tens of µs).
    private func nowUs(of index: Int) -> Int64 { (epochMs + startedOffsetMs[index]) * 1_000 + nowUs }

    // MARK: Running

    /// Starts every node and runs until each has signed in and holds its catalog.
    public func start(withinUs limit: Int64 = 60_000_000) throws {
        for (index, node) in nodes.enumerated() {
            node.start(nowMs: nowMs)
            scheduleTurn(index, atUs: nowUs)
        }
        try run(untilUs: nowUs + limit, checkingEveryUs: 10_000) { nodes.allSatisfy(\.isReady) }
        guard nodes.allSatisfy(\.isReady) else {
            let late = nodes.filter { !$0.isReady }.map(\.id.value)
            throw SettleNetError(.simulation, "nodes \(late.prefix(10).joined(separator: ", "))\(late.count > 10 ? " and \(late.count - 10) more" : "") did not sign in within \(limit / 1_000_000) s of simulated time")
        }
    }

    /// Drives `hospitals` from now until they are finished (their own drain included), with
    /// `faults` at their times from now (kill and pause; the caller refuses the others).
    /// `seed`: the scenario's, from which each link fault's decisions are drawn as on real processes.
    public func drive(_ hospitals: Hospitals, faults: [FaultSpec] = [], seed: UInt64 = 0, progress: (Int64) -> Void) throws {
        self.hospitals = hospitals
        loadStartUs = nowUs
        agenda.schedule(.hospitals, atUs: nowUs)
        self.faults = faults
        faultSeed = seed
        faultRecords = faults.map { FaultRecord(kind: $0.kind, node: $0.node, atS: Double($0.atMs) / 1_000, note: "") }
        for (place, fault) in faults.enumerated() { agenda.schedule(.fault(place), atUs: nowUs + fault.atMs * 1_000) }
        var finished = false
        // At most a line a second of each clock: a quiet night runs at hundreds of times real time.
        var lastProgressUs = nowUs, lastProgressWallUs = monotonicUs()
        try run(untilUs: .max, checkingEveryUs: 0) {
            if nowUs - lastProgressUs >= 1_000_000, monotonicUs() - lastProgressWallUs >= 1_000_000 {
                lastProgressUs = nowUs
                lastProgressWallUs = monotonicUs()
                progress(nowUs - loadStartUs)
            }
            if case .some = finishedAt { finished = true }
            return finished
        }
        self.hospitals = nil
    }

    /// Runs until every killed node due to start again has, and no node waits for an answer, has
    /// a settlement in doubt or has records or ticket messages to send on, for at most `limitUs`.
    public func settle(withinUs limit: Int64) throws -> Bool {
        func settled() -> Bool {
            restartsDue == 0 && nodes.indices.allSatisfy { down[$0] || (nodes[$0].isQuiet && !nodes[$0].hasOutboundWork) }
        }
        try run(untilUs: nowUs + limit, checkingEveryUs: 100_000, settled)
        return settled()
    }

    /// Kills whose node is yet to start again.
    private var restartsDue = 0

    /// One digest of every node's ledger, in the topology's order.
    public func ledgersDigest() throws -> String {
        var text = ""
        for node in nodes { text += "\(node.id) \(try node.ledgerDigest())\n" }
        return String(Array(text.utf8).withUnsafeBytes { XXH64.hash($0) }, radix: 16)
    }

    /// The nodes stop and leave the simulation, their link-fault decisions are written to
    /// their traces (for the report's fault effects), and their ledgers are closed: only then
    /// can others (reconciliation, the audits, `settlenet reconcile`) read them. The nodes are
    /// let go, and with them a national day's gigabytes of indexes and caches, before the
    /// reconciliation needs its own. Once; a failure to close one is thrown after every other
    /// is closed.
    public func stop() throws {
        guard !stopped else { return }
        stopped = true
        var failure: (any Error)?
        for (index, node) in nodes.enumerated() {
            if !down[index] { node.abort() }
            node.leaveSimulation()
            node.flushLinkTrace()
            do { try node.closeLedger() } catch { failure = failure ?? error }
        }
        nodes = []
        indexOf = [:]
        if let failure { throw SettleNetError(.simulation, "cannot close every ledger", cause: failure) }
    }

    private var stopped = false

    /// When the hospitals found themselves finished (virtual µs), once they have.
    private var finishedAt: Int64?

    /// Processes events in order until `done` holds (asked after each event, or once every
    /// `checkingEveryUs` of virtual time) or the next event is past `limitUs`.
    private func run(untilUs limit: Int64, checkingEveryUs every: Int64, _ done: () -> Bool) throws {
        var lastCheckUs = nowUs
        if done() { return }
        while let (atUs, event) = agenda.next() {
            guard atUs <= limit else {
                agenda.schedule(event, atUs: atUs)   // back: a later run may need it
                nowUs = limit
                return
            }
            nowUs = max(nowUs, atUs)
            events += 1
            try handle(event)
            if every == 0 || nowUs - lastCheckUs >= every {
                lastCheckUs = nowUs
                if done() { return }
            }
        }
    }

    private func handle(_ event: Event) throws {
        switch event {
        case .deliver(let index, let life, let frames, let fromBelow):
            guard life == lives[index], !down[index] else { return }   // its connection died with it
            if fromBelow { nodes[index].deliver(fromBelow: frames) } else { nodes[index].deliver(fromParent: frames) }
            scheduleTurn(index, atUs: max(nowUs, busyUntil[index]))
        case .answerArrives(let frames):
            guard let hospitals else { return }   // an answer after the load: nobody waits
            try hospitals.received(frames, nowUs: nowUs - loadStartUs)
            hospitals.noteProgress(nowUs: nowUs - loadStartUs) { _ in }
        case .turn(let index, let life):
            guard life == lives[index], turnAt[index] == nowUs else { return }   // superseded, or of a life that ended
            turnAt[index] = .max
            guard nowUs >= pausedUntil[index] else { return scheduleTurn(index, atUs: pausedUntil[index]) }
            try turn(index)
        case .synced(let index, let life, let tookUs, let covering):
            guard life == lives[index], !down[index] else { return }
            // Paused: the disk finished, but the node sends nothing until it runs again.
            guard nowUs >= pausedUntil[index] else {
                return agenda.schedule(.synced(node: index, life: life, tookUs: tookUs, covering: covering), atUs: pausedUntil[index])
            }
            nodes[index].simulatedSyncEnded(covering: covering)
            try nodes[index].syncFinished(error: nil, tookUs: tookUs, nowMs: nowMs(of: index), nowUs: nowUs(of: index))
            scheduleTurn(index, atUs: max(nowUs, busyUntil[index]))
        case .fault(let place):
            try begin(fault: place)
        case .diskRepaired(let index, let place):
            guard nowUs >= diskFailsUntil[index] else { return }   // a later failure runs on
            nodes[index].diskFails = false
            faultRecords[place].endedS = Double(nowUs - loadStartUs) / 1e6
            scheduleTurn(index, atUs: max(nowUs, busyUntil[index]))
        case .restart(let index, let place):
            restartsDue -= 1
            try restart(index)
            faultRecords[place].endedS = Double(nowUs - loadStartUs) / 1e6
        case .hospitals:
            guard let hospitals else { return }
            let loadUs = nowUs - loadStartUs
            try hospitals.step(nowUs: loadUs)
            hospitals.noteProgress(nowUs: loadUs) { _ in }
            if hospitals.isFinished(nowUs: loadUs) {
                finishedAt = nowUs
                return
            }
            let nextUs = LoadDriver.waitDeadlineUs(nowUs: loadUs, dueUs: hospitals.nextDueUs)
            agenda.schedule(.hospitals, atUs: loadStartUs + max(loadUs + 1, nextUs))
        }
    }

    /// One turn of a node: what it sends and the sync it asks for leave when its work is done.
    private func turn(_ index: Int) throws {
        let node = nodes[index]
        let taken = node.messagesTaken
        turning = index
        defer { turning = nil }
        try node.turn(readable: [], nowMs: nowMs(of: index), nowUs: nowUs(of: index))
        let workUs = model.turnUs + (node.messagesTaken - taken) * model.messageUs
        let doneUs = nowUs + workUs
        busyUntil[index] = doneUs
        turning = nil
        let held = heldDuringTurn, syncs = syncsDuringTurn
        heldDuringTurn.removeAll(keepingCapacity: true)
        syncsDuringTurn.removeAll(keepingCapacity: true)
        for link in held { dispatch(link, leavingUs: doneUs) }
        for sync in syncs { startSync(sync.node, covering: sync.covering, atUs: doneUs) }
        // Its next turn: mail handed to it meanwhile, else its next duty (none: when mail comes).
        let dutyMs = node.nextDutyMs
        let dutyUs = dutyMs >= Int64.max / 2_000 ? Int64.max : max(nowUs, (dutyMs - startedOffsetMs[index] - epochMs) * 1_000)
        if node.hasLocalMail || dutyUs < .max { scheduleTurn(index, atUs: max(doneUs, node.hasLocalMail ? doneUs : dutyUs)) }
    }

    private func scheduleTurn(_ index: Int, atUs: Int64) {
        guard atUs < turnAt[index], !down[index] else { return }
        turnAt[index] = atUs
        agenda.schedule(.turn(node: index, life: lives[index]), atUs: atUs)
    }

    // MARK: Faults

    private func begin(fault place: Int) throws {
        let fault = faults[place]
        faultRecords[place].startedS = Double(nowUs - loadStartUs) / 1e6
        // A kill or a pause names a node (the runner checked that it is in the topology).
        let index = nodes.firstIndex { $0.id.value == fault.node } ?? -1
        switch fault.action {
        case .kill(_, let restartAfterMs):
            guard !down[index] else {
                faultRecords[place].note = "already down"
                return
            }
            // What it committed and no sync covered is lost; what was on its way to it too.
            faultRecords[place].lostLogFrames = try nodes[index].crash()
            down[index] = true
            lives[index] += 1
            turnAt[index] = .max
            busyUntil[index] = nowUs
            if let restartAfterMs {
                restartsDue += 1
                agenda.schedule(.restart(node: index, fault: place), atUs: nowUs + restartAfterMs * 1_000)
            } else {
                faultRecords[place].note = "not started again"
            }
        case .pause(_, let forMs):
            pausedUntil[index] = max(pausedUntil[index], nowUs + forMs * 1_000)
            busyUntil[index] = max(busyUntil[index], pausedUntil[index])
            faultRecords[place].endedS = Double(pausedUntil[index] - loadStartUs) / 1e6
        case .clockJump(_, let byMs):
            // The machine's wall clock jumps. The node runs on, on the monotonic clock from its
            // start; started again, it takes up the new time.
            clockOffsetMs[index] += byMs
        case .diskFailure(_, let forMs):
            // The machine's disk: a node started again meanwhile finds it failing too.
            diskFailsUntil[index] = max(diskFailsUntil[index], nowUs + forMs * 1_000)
            nodes[index].diskFails = true
            agenda.schedule(.diskRepaired(node: index, fault: place), atUs: nowUs + forMs * 1_000)
        case .link(let effects):
            beginLinkFault(fault.action, place: place, forMs: effects.forMs)
        case .partition(_, _, _, let forMs):
            beginLinkFault(fault.action, place: place, forMs: forMs)
        case .crash:
            faultRecords[place].note = "real processes only"   // the runner refuses it before anything starts
        }
    }

    /// A link fault or partition: its entries (one per direction, their decisions drawn from the
    /// scenario's seed as on real processes) go to the nodes they leave from, and end by themselves.
    private func beginLinkFault(_ action: FaultSpec.Action, place: Int, forMs: Int64) {
        let entries = FaultInjector.linkEntries(action, index: place, seed: faultSeed, nowMs: nowMs)
        faultRecords[place].decisionSeeds = entries.map(\.seed)
        faultRecords[place].endedS = Double(nowUs + forMs * 1_000 - loadStartUs) / 1e6
        linkFaults.removeAll { $0.endMs <= nowMs }
        linkFaults += entries
        for entry in entries {
            guard let index = nodes.firstIndex(where: { $0.id.value == entry.from }) else { continue }
            nodes[index].setLinkFaults(linkFaults)
        }
    }

    /// A killed node starts again from what its ledger kept, in its place among its neighbours.
    private func restart(_ index: Int) throws {
        let id = nodes[index].id
        startedOffsetMs[index] = clockOffsetMs[index]
        let shell = try NodeShell(topology: topology, id: id, dataDirectory: dataDirectory, logger: logger,
                                  pace: .simulated, nowMs: nowMs(of: index), simulated: true)
        let parent = shell.spec.parent.flatMap { parentID in nodes.first { $0.id == parentID } }
        NodeShell.rejoin(shell, parent: parent, children: nodes.filter { $0.spec.parent == id })
        nodes[index] = shell
        indexOf[ObjectIdentifier(shell)] = index
        shell.courier = self
        shell.syncWith(self, index: index)
        if !linkFaults.isEmpty { shell.setLinkFaults(linkFaults) }
        shell.diskFails = nowUs < diskFailsUntil[index]
        down[index] = false
        busyUntil[index] = nowUs
        shell.start(nowMs: nowMs(of: index))
        scheduleTurn(index, atUs: nowUs)
    }

    // MARK: Courier

    public func carry(_ frames: [[UInt8]], from node: NodeShell, to neighbour: NodeShell, upward: Bool) {
        let to = indexOf[ObjectIdentifier(neighbour)]!
        let event = Event.deliver(node: to, life: lives[to], frames: frames, fromBelow: upward)
        send(event, from: indexOf[ObjectIdentifier(node)]!, to: to)
    }

    public func answerHospital(_ frames: [[UInt8]], routingID: [UInt8], from node: NodeShell) -> Bool {
        let from = indexOf[ObjectIdentifier(node)]!
        send(.answerArrives(frames), from: from, to: -1 - Int(Self.linkKey(routingID)))
        return true
    }

    /// A request from a hospital (the institution the request names) to its county.
    public func fromHospital(_ request: WireRequest, county: DivisionCode) throws {
        guard let index = countyIndex[county] else {
            throw SettleNetError(.simulation, "no county \(county) in \(topology.file)")
        }
        let routingID = Array(request.fixmedinsCode.utf8)
        send(.deliver(node: index, life: lives[index], frames: [routingID] + WireCodec.frames(request), fromBelow: true),
             from: -1 - Int(Self.linkKey(routingID)), to: index)
    }

    /// Sends `event` over the link from `from` to `to` (negative: a hospital's end): now, or
    /// when the turn under way is done.
    private func send(_ event: Event, from: Int, to: Int) {
        let link = LinkEvent(event: event, from: from, to: to)
        if turning != nil { heldDuringTurn.append(link) } else { dispatch(link, leavingUs: nowUs) }
    }

    private struct LinkEvent {
        let event: Event
        let from: Int
        let to: Int
    }

    private func dispatch(_ link: LinkEvent, leavingUs: Int64) {
        let latency: Int64
        if link.from < 0 || link.to < 0 {
            latency = draws.around(model.hospitalLinkUs, jitter: model.hospitalLinkJitterUs)
        } else {
            // Between a node and its parent: the pair of tiers is the child's link up.
            let up = uplink[parentIndex[link.from] == link.to ? link.from : link.to]
            latency = draws.around(up.base, jitter: up.jitter)
        }
        let key = Int64(link.from) << 32 ^ Int64(UInt32(truncatingIfNeeded: link.to))
        let arrival = max(leavingUs + latency, lastArrival[key] ?? 0)
        lastArrival[key] = arrival
        agenda.schedule(link.event, atUs: arrival)
    }

    static func linkKey(_ routingID: [UInt8]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in routingID { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash & 0x3FFF_FFFF
    }

    // MARK: SyncService

    public func submit(ledger: Ledger, node: Int) {
        let covering = ledger.simulatedSyncBegins()   // what it committed so far
        if turning == node { syncsDuringTurn.append((node, covering)) } else { startSync(node, covering: covering, atUs: nowUs) }
    }

    private func startSync(_ node: Int, covering: Int, atUs: Int64) {
        let tookUs = draws.around(model.commitUs, jitter: model.commitJitterUs)
        agenda.schedule(.synced(node: node, life: lives[node], tookUs: tookUs, covering: covering), atUs: atUs + tookUs)
    }
}
