import Foundation
import Logging
import SettlementCore
import SettlementModel

/// A message on its way out of a node: to which peer, its frames, and for a forwarded request
/// its msgid (to report a failed hand-off).
struct Outgoing {
    var peer: Peer
    var frames: [[UInt8]]
    var requestMsgid: String?
    /// An answer: the transaction code it answers ("" when not known), for the node's metrics.
    var txn: String? = nil
}

/// This node's outgoing links as the scenario's link faults shape them (docs/FAULTS.md): each
/// message to another node may be dropped, delayed, duplicated or get a byte flipped. Every
/// decision goes to the node's trace file, so a run can show what each fault did.
struct LinkFaultPort {
    let node: DivisionCode
    /// The cluster's link-fault file, and this node's decision trace.
    let faultsFile: String
    let tracePath: String
    private var faults = LinkFaultTable()
    private var stamp: Int64?
    private(set) var lastCheckMs: Int64 = 0
    /// Decisions not yet appended to the trace file.
    private var trace: [TracedDecision] = []
    /// Messages held back by a delay, with when they are due.
    private var delayed: [(dueMs: Int64, message: Outgoing)] = []

    init(node: DivisionCode, faultsFile: String, tracePath: String) {
        self.node = node
        self.faultsFile = faultsFile
        self.tracePath = tracePath
    }

    /// No fault in force on any of this node's links: messages go out as they are.
    var isClear: Bool { faults.isEmpty }

    /// The earliest delayed message's time, if any.
    var nextDueMs: Int64 { delayed.lazy.map(\.dueMs).min() ?? .max }

    /// Reads the link-fault file when it changed: the faults on this node's outgoing links. A
    /// missing or unreadable file means none.
    mutating func refresh(nowMs: Int64, logger: Logger) {
        lastCheckMs = nowMs
        let changed = modificationStamp(of: faultsFile)
        guard changed != stamp else { return }
        stamp = changed
        guard changed != nil, let data = FileManager.default.contents(atPath: faultsFile) else {
            faults.replace(with: [])
            return
        }
        do {
            let all = try JSONDecoder().decode([LinkFault].self, from: data)
            faults.replace(with: all.filter { $0.from == node.value })
            logger.info("link faults loaded", metadata: ["faults": "\(faults.faults.count)"])
        } catch {
            logger.warning("link-fault file unreadable; no link faults", metadata: ["file": "\(faultsFile)", "error": "\(error)"])
            faults.replace(with: [])
        }
    }

    /// The faults in force, given directly (a simulation's; no file): those on this node's
    /// outgoing links.
    mutating func replace(with all: [LinkFault]) {
        faults.replace(with: all.filter { $0.from == node.value })
    }

    /// What of a (sealed) message to node `peer` goes on the wire now: nothing when it is dropped
    /// or delayed, one copy, or two when duplicated, with a byte flipped when corrupted.
    mutating func shape(_ message: Outgoing, to peer: String, nowMs: Int64) -> [Outgoing] {
        guard !faults.isEmpty, let traced = faults.next(to: peer, nowMs: nowMs) else { return [message] }
        trace.append(traced)
        let decision = traced.decision
        if decision == .untouched { return [message] }
        if decision.dropped { return [] }   // lost on the wire: the sender cannot tell
        var faulty = message
        if let position = decision.corruptAt {
            // One byte flipped anywhere in the kind, body or checksum frames.
            let sizes = faulty.frames.map(\.count)
            var offset = position % max(1, sizes.reduce(0, +))
            for index in faulty.frames.indices where sizes[index] > 0 {
                if offset < sizes[index] { faulty.frames[index][offset] ^= 0xFF; break }
                offset -= sizes[index]
            }
        }
        let copies = Array(repeating: faulty, count: decision.duplicated ? 2 : 1)
        if decision.delayMs > 0 {
            let due = nowMs + Int64(decision.delayMs)
            delayed += copies.map { (due, $0) }
            return []
        }
        return copies
    }

    /// The delayed messages due by now, oldest first.
    mutating func due(nowMs: Int64) -> [Outgoing] {
        guard !delayed.isEmpty, nextDueMs <= nowMs else { return [] }
        let due = delayed.filter { $0.dueMs <= nowMs }
        delayed.removeAll { $0.dueMs <= nowMs }
        return due.sorted { $0.dueMs < $1.dueMs }.map(\.message)
    }

    /// Appends this round's decisions to the trace, one JSON line each: the trace is complete as
    /// soon as a fault is over.
    mutating func flushTrace(logger: Logger) {
        guard !trace.isEmpty else { return }
        let encoder = JSONEncoder.settlenet(pretty: false)
        var bytes: [UInt8] = []
        for entry in trace {
            if let line = try? encoder.encode(entry) { bytes += line; bytes.append(0x0A) }
        }
        trace.removeAll(keepingCapacity: true)
        let descriptor = open(tracePath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else {
            logger.warning("link-decision trace not writable", metadata: ["file": "\(tracePath)"])
            return
        }
        defer { close(descriptor) }
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}

/// When the file at `path` was last modified, in ns; nil when it does not exist. A file the
/// runner rewrites (link faults, crash points) is read again only when this changes.
func modificationStamp(of path: String) -> Int64? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
}
