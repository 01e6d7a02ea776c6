import ClusterControl
import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

/// One fault as it happened, for the report.
public struct FaultRecord: Codable, Sendable {
    public var kind: String
    public var node: String
    /// When the scenario asked for it, and when it actually started and ended, in seconds from
    /// the start of the load (nil: it did not start, or has not ended).
    public var atS: Double
    public var startedS: Double?
    public var endedS: Double?
    public var note: String
    /// A link fault's or partition's decision seeds, one per direction: they name its entries
    /// in the nodes' decision traces.
    public var decisionSeeds: [UInt64]?
    /// What a link fault or partition did to the messages it caught, from the nodes' traces.
    public var effects: LinkFaultEffects?
    /// A simulated kill: the frames of the node's log committed and never synced, which the
    /// crash lost (`settlenet sim`).
    public var lostLogFrames: Int?
    /// A crash: `PRAGMA integrity_check` of each ledger of the crashed process, before it
    /// started again ("ok" when every one passed, else the ledger and SQLite's findings).
    public var integrity: String?

    public init(kind: String, node: String, atS: Double, startedS: Double? = nil, endedS: Double? = nil, note: String) {
        self.kind = kind
        self.node = node
        self.atS = atS
        self.startedS = startedS
        self.endedS = endedS
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case kind, note, effects, integrity
        case decisionSeeds = "decision_seeds"
        case lostLogFrames = "lost_log_frames"
        case node = "target"
        case atS = "at_s"
        case startedS = "start_s"
        case endedS = "end_s"
    }
}

/// The messages one link fault decided, and what it did to them.
public struct LinkFaultEffects: Codable, Sendable, Equatable {
    public var messages = 0
    public var dropped = 0
    public var duplicated = 0
    public var corrupted = 0
    public var delayed = 0

    public init() {}

    /// Tallies, per fault, the decisions the nodes traced (`DataLayout.linkDecisionsPath`).
    /// Lines that do not parse (a node killed mid-write) are skipped.
    public static func tally(traceFiles: [String], seeds: Set<UInt64>) -> [UInt64: LinkFaultEffects] {
        var bySeed: [UInt64: LinkFaultEffects] = [:]
        for entry in traceFiles.flatMap(readTrace) where seeds.contains(entry.fault) {
            var effects = bySeed[entry.fault, default: LinkFaultEffects()]
            effects.messages += 1
            if entry.dropped { effects.dropped += 1 }
            else {
                if entry.duplicated { effects.duplicated += 1 }
                if entry.corruptAt != nil { effects.corrupted += 1 }
                if entry.delayMs > 0 { effects.delayed += 1 }
            }
            bySeed[entry.fault] = effects
        }
        return bySeed
    }

    /// One node's trace, in the order it decided.
    public static func readTrace(_ path: String) -> [TracedDecision] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(TracedDecision.self, from: $0) }
    }

    static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.messages += b.messages; sum.dropped += b.dropped; sum.duplicated += b.duplicated
        sum.corrupted += b.corrupted; sum.delayed += b.delayed
        return sum
    }
}

/// Carries out a scenario's faults on a launched cluster: pause (SIGSTOP, then SIGCONT), kill
/// (SIGKILL, then an optional restart), and link faults and partitions, which it writes to the
/// cluster's link-fault file for the nodes to apply (docs/FAULTS.md). Every fault expires by
/// itself even if the runner dies: a pause starts a detached watchdog that sends SIGCONT, and
/// every link-fault entry carries its end time. `clearAll` ends every fault still active when
/// the scenario ends.
public final class FaultInjector {
    private let cluster: Cluster
    private let linkFaultsFile: String
    private let seed: UInt64
    /// The link-fault entries of each active link fault or partition, by fault index.
    private var linkEntries: [Int: [LinkFault]] = [:]
    private var pending: [(index: Int, spec: FaultSpec)]
    private var active: [(index: Int, endUs: Int64, pid: Int32?)] = []
    /// Crash points armed (the file the nodes read), and the crashes awaited, by fault index.
    private var arms: [Int: CrashArming] = [:]
    private var crashes: [(index: Int, pid: Int32, node: String, restartAfterMs: Int64?, armedUs: Int64)] = []
    private let crashPointsFile: String
    /// How long an armed node has to reach its point before it is killed anyway.
    static let crashPointWaitUs: Int64 = 10_000_000
    public private(set) var records: [FaultRecord]
    private let log: (String) -> Void

    public init(faults: [FaultSpec], cluster: Cluster, linkFaultsFile: String, seed: UInt64, log: @escaping (String) -> Void) {
        self.cluster = cluster
        self.linkFaultsFile = linkFaultsFile
        crashPointsFile = cluster.layout.crashPointsFile
        self.seed = seed
        self.log = log
        pending = faults.enumerated().map { ($0, $1) }.sorted { $0.spec.atMs < $1.spec.atMs }
        records = faults.map { FaultRecord(kind: $0.kind, node: $0.node, atS: Double($0.atMs) / 1000, note: "") }
    }

    /// The entries of a link fault or partition starting at `nowMs` (Unix ms), one per direction.
    /// Each direction's decisions draw from a seed of the scenario's seed, the fault's place in
    /// the list and the direction: the same scenario replays the same decisions.
    public static func linkEntries(_ action: FaultSpec.Action, index: Int, seed: UInt64, nowMs: Int64) -> [LinkFault] {
        func seedOf(_ from: String, _ to: String) -> UInt64 {
            seed &+ UInt64(index + 1) &* 0x1000_0000_01B3 &+ UInt64(from)! &* 1_000_003 &+ UInt64(to)!
        }
        switch action {
        case .link(let e):
            return (e.oneWay ? [(e.a, e.b)] : [(e.a, e.b), (e.b, e.a)]).map { from, to in
                LinkFault(from: from, to: to, startMs: nowMs, endMs: nowMs + e.forMs, delayMs: Int(e.delayMs), jitterMs: Int(e.jitterMs),
                          loss: e.loss, duplicate: e.duplicate, corrupt: e.corrupt, seed: seedOf(from, to))
            }
        case .partition(let from, let to, let oneWay, let forMs):
            return (oneWay ? [(from, to)] : [(from, to), (to, from)]).map { from, to in
                LinkFault(from: from, to: to, startMs: nowMs, endMs: nowMs + forMs, loss: 1, seed: seedOf(from, to))
            }
        case .pause, .kill, .clockJump, .diskFailure, .crash:
            return []
        }
    }

    /// Writes every active link-fault entry, atomically: nodes read the file when it changes.
    private func writeLinkFaults() {
        let all = linkEntries.keys.sorted().flatMap { linkEntries[$0]! }
        do {
            let data = try JSONEncoder.settlenet(pretty: false).encode(all)
            try data.write(to: URL(fileURLWithPath: linkFaultsFile), options: .atomic)
        } catch {
            log("warning: cannot write the link-fault file \(linkFaultsFile): \(error)")
        }
    }

    /// Starts faults that are due and ends those whose time is up; `nowUs` is from the load's start.
    public func tick(nowUs: Int64) {
        while let next = pending.first, next.spec.atMs * 1_000 <= nowUs {
            pending.removeFirst()
            start(next.index, next.spec, nowUs: nowUs)
        }
        for entry in active where entry.endUs <= nowUs { end(entry.index, nowUs: nowUs) }
        active.removeAll { $0.endUs <= nowUs }
        if !crashes.isEmpty { watchCrashes(nowUs: nowUs) }
    }

    /// Crashes armed: a process gone has crashed at its point; one that has not reached it in
    /// time is killed. Either way its ledgers are checked before it starts again.
    private func watchCrashes(nowUs: Int64) {
        for crash in crashes {
            let gone = !cluster.isRunningNode(pid: crash.pid)
            guard gone || nowUs - crash.armedUs >= Self.crashPointWaitUs else { continue }
            crashes.removeAll { $0.index == crash.index }
            arms[crash.index] = nil
            writeCrashPoints()
            if !gone {
                try? cluster.kill(node: crash.node)
                records[crash.index].note = "its point was not reached within \(Self.crashPointWaitUs / 1_000_000) s: killed there"
                log("fault: node \(crash.node) did not reach its crash point: killed")
            } else {
                records[crash.index].note += String(format: ": crashed %.2f s after it was armed", Double(nowUs - crash.armedUs) / 1e6)
                log("fault: node \(crash.node) crashed at its point")
            }
            let integrity = checkLedgers(ofProcess: crash.pid)
            records[crash.index].integrity = integrity
            records[crash.index].note += "; integrity_check \(integrity)"
            if let restartAfterMs = crash.restartAfterMs {
                active.append((crash.index, nowUs + restartAfterMs * 1_000, nil))
            } else {
                records[crash.index].endedS = Double(nowUs) / 1e6
            }
        }
    }

    /// `PRAGMA integrity_check` on every ledger of the process `pid` was: "ok", or what failed.
    private func checkLedgers(ofProcess pid: Int32) -> String {
        let nodes = ((try? cluster.record().nodes) ?? []).filter { $0.pid == pid }
        let failures = nodes.compactMap { node -> String? in
            guard let id = DivisionCode(node.id) else { return nil }
            let verdict = Ledger.integrityCheck(path: cluster.layout.ledgerPath(id))
            return verdict == "ok" ? nil : "\(node.id): \(verdict)"
        }
        return failures.isEmpty ? "ok" : failures.joined(separator: "; ")
    }

    /// Writes the armed crash points, atomically: nodes read the file when it changes.
    private func writeCrashPoints() {
        do {
            let data = try JSONEncoder.settlenet(pretty: false).encode(arms.keys.sorted().map { arms[$0]! })
            try data.write(to: URL(fileURLWithPath: crashPointsFile), options: .atomic)
        } catch {
            log("warning: cannot write the crash-point file \(crashPointsFile): \(error)")
        }
    }

    /// Ends every active fault (the scenario is over, or failed).
    public func clearAll(nowUs: Int64) {
        for entry in active { end(entry.index, nowUs: nowUs) }
        active.removeAll()
        for next in pending { records[next.index].note = "not started: the load ended first" }
        pending.removeAll()
        for crash in crashes { records[crash.index].note = "armed, and the load ended before its point" }
        crashes.removeAll()
        if !arms.isEmpty {
            arms.removeAll()
            writeCrashPoints()
        }
    }

    private func start(_ index: Int, _ spec: FaultSpec, nowUs: Int64) {
        do {
            switch spec.action {
            case .pause(let node, let forMs):
                guard let pid = try cluster.pid(of: node) else { records[index].note = "node not running"; return }
                kill(pid, SIGSTOP)
                let seconds = String(format: "%.3f", Double(forMs) / 1000 + 1)
                // The watchdog: SIGCONT a little after the pause is due to end, runner or not.
                _ = try? spawnDetached(["/bin/sh", "-c", "sleep \(seconds); kill -CONT \(pid) 2>/dev/null"])
                active.append((index, nowUs + forMs * 1_000, pid))
                log("fault: paused node \(node) for \(Double(forMs) / 1000) s")
            case .kill(let node, let restartAfterMs):
                try cluster.kill(node: node)
                log("fault: killed node \(node)\(restartAfterMs.map { ", restart in \(Double($0) / 1000) s" } ?? "")")
                if let restartAfterMs { active.append((index, nowUs + restartAfterMs * 1_000, nil)) }
            case .link(let effects):
                startLinkFault(index, spec, forMs: effects.forMs, nowUs: nowUs, what: "link \(spec.node)\(effects.oneWay ? " (one way)" : "") (delay \(effects.delayMs) ms ± \(effects.jitterMs), loss \(effects.loss), duplicate \(effects.duplicate), corrupt \(effects.corrupt))")
            case .partition(_, _, let oneWay, let forMs):
                startLinkFault(index, spec, forMs: forMs, nowUs: nowUs, what: "partition \(spec.node)\(oneWay ? " (one way)" : "")")
            case .crash(let node, let point, let after, let restartAfterMs):
                guard let pid = try cluster.pid(of: node) else { records[index].note = "node not running"; return }
                // Which pass of the point, from the seed when the scenario does not say: 1 to 20.
                let pass = after ?? 1 + Int(((seed &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15) >> 33) % 20)
                arms[index] = CrashArming(node: node, pid: pid, point: point, after: pass)
                writeCrashPoints()
                crashes.append((index, pid, node, restartAfterMs, nowUs))
                records[index].note = "\(point.rawValue), pass \(pass)"
                log("fault: node \(node) armed to crash at \(point.rawValue), pass \(pass)\(restartAfterMs.map { ", restart \(Double($0) / 1000) s after" } ?? "")")
            case .clockJump, .diskFailure:
                records[index].note = "simulated only"   // the runner refuses it before anything starts
            }
            records[index].startedS = Double(nowUs) / 1e6
        } catch {
            records[index].note = "\(error)"
            log("fault could not start: \(error)")
        }
    }

    private func end(_ index: Int, nowUs: Int64) {
        let record = records[index]
        if record.kind == "pause", let pid = active.first(where: { $0.index == index })?.pid {
            kill(pid, SIGCONT)
            log("fault over: node \(record.node) resumed")
        } else if record.kind == "link" || record.kind == "partition" {
            linkEntries[index] = nil
            writeLinkFaults()
            log("fault over: \(record.kind) \(record.node) cleared")
        } else if record.kind == "kill" || record.kind == "crash" {
            do {
                try cluster.start(node: record.node)
                log("fault over: node \(record.node) restarted")
            } catch {
                records[index].note = "restart failed: \(error)"
            }
        }
        records[index].endedS = Double(nowUs) / 1e6
    }

    /// Puts a link fault or partition in the file the nodes read, until `forMs` from now.
    private func startLinkFault(_ index: Int, _ spec: FaultSpec, forMs: Int64, nowUs: Int64, what: String) {
        linkEntries[index] = Self.linkEntries(spec.action, index: index, seed: seed, nowMs: Int64(Date().timeIntervalSince1970 * 1_000))
        records[index].decisionSeeds = linkEntries[index]!.map(\.seed)
        writeLinkFaults()
        active.append((index, nowUs + forMs * 1_000, nil))
        log("fault: \(what) for \(Double(forMs) / 1000) s")
    }

    /// Fills in each link fault's effects from the decision traces in `traceFiles`.
    public static func withEffects(_ records: [FaultRecord], traceFiles: [String]) -> [FaultRecord] {
        let seeds = Set(records.flatMap { $0.decisionSeeds ?? [] })
        guard !seeds.isEmpty else { return records }
        let tallies = LinkFaultEffects.tally(traceFiles: traceFiles, seeds: seeds)
        return records.map { record in
            guard let own = record.decisionSeeds else { return record }
            var record = record
            record.effects = own.compactMap { tallies[$0] }.reduce(LinkFaultEffects(), +)
            return record
        }
    }

    private func spawnDetached(_ arguments: [String]) throws {
        var pid: pid_t = 0
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(0x80))   // POSIX_SPAWN_SETSID: outlives the runner
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, arguments[0], nil, &attributes, argv, environ)
        if result != 0 { throw ScenarioError(code: .runFailed, message: "cannot start the pause watchdog: \(String(cString: strerror(result)))") }
    }
}
