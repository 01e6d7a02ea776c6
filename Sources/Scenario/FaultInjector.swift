import ClusterControl
import Foundation
import NetworkTopology

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

    enum CodingKeys: String, CodingKey {
        case kind, node, note
        case atS = "at_s"
        case startedS = "started_s"
        case endedS = "ended_s"
    }
}

/// Carries out a scenario's process faults on a launched cluster: pause (SIGSTOP, then SIGCONT)
/// and kill (SIGKILL, then an optional restart). A pause also starts a small detached process
/// that sends SIGCONT when the pause is up, so the fault expires by itself even if the runner
/// dies; `clearAll` ends every fault still active when the scenario ends.
public final class FaultInjector {
    private let cluster: Cluster
    private var pending: [(index: Int, spec: FaultSpec)]
    private var active: [(index: Int, endUs: Int64, pid: Int32?)] = []
    public private(set) var records: [FaultRecord]
    private let log: (String) -> Void

    public init(faults: [FaultSpec], cluster: Cluster, log: @escaping (String) -> Void) {
        self.cluster = cluster
        self.log = log
        pending = faults.enumerated().map { ($0, $1) }.sorted { $0.spec.atMs < $1.spec.atMs }
        records = faults.map { fault in
            switch fault.action {
            case .pause(let node, _): FaultRecord(kind: "pause", node: node, atS: Double(fault.atMs) / 1000, note: "")
            case .kill(let node, _): FaultRecord(kind: "kill", node: node, atS: Double(fault.atMs) / 1000, note: "")
            }
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
    }

    /// Ends every active fault (the scenario is over, or failed).
    public func clearAll(nowUs: Int64) {
        for entry in active { end(entry.index, nowUs: nowUs) }
        active.removeAll()
        for next in pending { records[next.index].note = "not started: the load ended first" }
        pending.removeAll()
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
        } else if record.kind == "kill" {
            do {
                try cluster.start(node: record.node)
                log("fault over: node \(record.node) restarted")
            } catch {
                records[index].note = "restart failed: \(error)"
            }
        }
        records[index].endedS = Double(nowUs) / 1e6
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
