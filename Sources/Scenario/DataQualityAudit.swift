import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

/// Reads every node's ledger to account for an upload run: per-tier counts (received,
/// accepted, rejected by rule), what reached the national store, and what was refused there.
/// The hospitals' answers say what the county, city and provincial tiers refused; only the
/// ledgers know what the national tier did, after the answers had left.
public struct DataQualityAudit {
    let topology: Topology
    let layout: DataLayout

    public init(topology: Topology, dataDirectory: String) {
        self.topology = topology
        layout = DataLayout(root: dataDirectory)
    }

    func ledger(_ id: DivisionCode) throws -> Ledger { try Ledger(path: layout.ledgerPath(id)) }

    /// The national node's ledger: the national store and the ticket registry.
    func nationalLedger() throws -> Ledger? {
        try topology.nodes.first { $0.parent == nil }.map { try ledger($0.id) }
    }

    /// Every node's upload counters now.
    public func counts() throws -> [DivisionCode: [String: Int]] {
        var all: [DivisionCode: [String: Int]] = [:]
        for node in topology.nodes { all[node.id] = try ledger(node.id).read { try $0.uploadCounts() } }
        return all
    }

    /// Waits until the provincial tiers have handed every record to the national store.
    public func waitForNationalStore(timeoutS: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeoutS)
        let provinces = topology.nodes.filter { $0.tier == .province }
        while true {
            let pending = try provinces.reduce(0) { $0 + (try ledger($1.id).read { try $0.outboxPending() }) }
            if pending == 0 { return true }
            if Date() >= deadline { return false }
            usleep(100_000)
        }
    }

    public func figures(before: [DivisionCode: [String: Int]], sinceMs: Int64, sent: UploadMeasurement,
                        loadSeconds: Double) throws -> (UploadFigures, DirtyDataFigures) {
        let after = try counts()
        var byTier: [String: TierDataFigures] = [:]
        var detectedByRule: [String: Int] = [:]
        var accountingExact = true
        for node in topology.nodes {
            let tier = DataTier(node.tier).rawValue
            let now = after[node.id] ?? [:], then = before[node.id] ?? [:]
            func delta(_ name: String) -> Int { (now[name] ?? 0) - (then[name] ?? 0) }
            let received = delta("received"), accepted = delta("accepted")
            var rejected = 0
            for rule in UploadRules.all {
                let count = delta(rule.id)
                rejected += count
                detectedByRule[rule.id, default: 0] += count
            }
            let exact = received == accepted + rejected
            accountingExact = accountingExact && exact
            var figures = byTier[tier] ?? TierDataFigures(received: 0, accepted: 0, rejected: 0, rate: 0, accountingExact: true)
            figures.received += received
            figures.accepted += accepted
            figures.rejected += rejected
            figures.accountingExact = figures.accountingExact && exact
            byTier[tier] = figures
        }
        for (tier, var figures) in byTier {
            figures.rate = figures.received == 0 ? 0 : round4(Double(figures.rejected) / Double(figures.received))
            byTier[tier] = figures
        }
        let registry = try nationalLedger()
        let national = try registry?.read { try $0.storedUploadKeys(sinceMs: sinceMs) } ?? []
        // A record identity sent both clean and dirty (a duplicate copied by the same hospital)
        // counts as clean: the store holds one copy either way.
        let leaked = national.filter { key in
            let identity = UploadMeasurement.key(key.setlID, key.fixmedinsCode)
            return sent.dirtyKeys.contains(identity) && !sent.cleanKeys.contains(identity)
        }.count
        let nationalRejects = try registry?.read { try $0.uploadRejectKeys(sinceMs: sinceMs) } ?? []
        let cleanRejectedNationally = nationalRejects.filter { reject in
            let identity = UploadMeasurement.key(reject.setlID, reject.fixmedinsCode)
            return sent.cleanKeys.contains(identity) && !sent.dirtyKeys.contains(identity)
        }.count
        let falseRejects = sent.cleanRejected + cleanRejectedNationally
        let detected = detectedByRule.values.reduce(0, +)
        var byRule: [String: RuleDataFigures] = [:]
        for rule in UploadRules.all {
            byRule[rule.id] = RuleDataFigures(injected: sent.injectedByRule[rule.id] ?? 0, detected: detectedByRule[rule.id] ?? 0,
                                              tier: rule.tier.rawValue, checks: rule.checks)
        }
        let dirty = DirtyDataFigures(
            injected: sent.dirtySent, detected: detected, leaked: leaked, falseRejects: falseRejects,
            detectedAsExpected: sent.rejectedAsExpected + nationalRejects.count - cleanRejectedNationally,
            injectedRate: sent.recordsSent == 0 ? 0 : round4(Double(sent.dirtySent) / Double(sent.recordsSent)),
            detectedRate: sent.recordsSent == 0 ? 0 : round4(Double(detected) / Double(sent.recordsSent)),
            leakRate: national.isEmpty ? 0 : round4(Double(leaked) / Double(national.count)),
            falseRejectRate: sent.cleanSent == 0 ? 0 : round4(Double(falseRejects) / Double(sent.cleanSent)),
            byTier: byTier, byRule: byRule, byKind: sent.injectedByKind, accountingExact: accountingExact)
        let uploads = UploadFigures(
            batches: sent.batchesSent, batchesDropped: sent.batchesDropped, batchesFailed: sent.batchesFailed,
            batchesUnanswered: sent.batchesUnanswered, recordsSent: sent.recordsSent,
            acceptedProvincial: sent.recordsAcceptedProvincial, acceptedNational: byTier["national"]?.accepted ?? 0,
            throughputRecordsPerS: round2(Double(sent.recordsSent) / max(0.001, loadSeconds)),
            batchLatencyMs: ReportBuilder.summary(sent.latency))
        return (uploads, dirty)
    }

    func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
    func round4(_ value: Double) -> Double { (value * 10_000).rounded() / 10_000 }
}

extension DataQualityAudit {
    /// Waits (up to `timeoutS`) until no node has ticket events still to deliver, then reads the
    /// national registry's tickets opened since `sinceMs`.
    public func tickets(sinceMs: Int64, timeoutS: Double) throws -> TicketFigures {
        let deadline = Date().addingTimeInterval(timeoutS)
        while Date() < deadline {
            let queued = try topology.nodes.reduce(0) { $0 + (try ledger($1.id).read { try $0.ticketOutbox().count }) }
            if queued == 0 { break }
            usleep(100_000)
        }
        let all = try nationalLedger()?.read { try $0.tickets() }.filter { $0.openedAtMs >= sinceMs } ?? []
        var closeTimes = Measurement.makeHistogram()
        for ticket in all { if let closed = ticket.closedAtMs { _ = closeTimes.record(UInt64(max(1, (closed - ticket.openedAtMs) * 1_000))) } }
        var byKind: [String: Int] = [:], reasons: [String: Int] = [:]
        for ticket in all {
            byKind[ticket.kind.rawValue, default: 0] += 1
            if ticket.state != .closed { reasons["\(ticket.kind.rawValue): \(ticket.reason)", default: 0] += 1 }
        }
        return TicketFigures(opened: all.count, acknowledged: all.filter { $0.acknowledgedAtMs != nil }.count,
                             closed: all.filter { $0.state == .closed }.count, openAtEnd: all.filter { $0.state != .closed }.count,
                             timeToCloseMs: ReportBuilder.summary(closeTimes), byKind: byKind, openReasons: reasons)
    }

    /// Tickets open in the registry at each of `endSeconds` (seconds from `sinceMs`): the backlog.
    public func ticketBacklog(sinceMs: Int64, endSeconds: [Int]) throws -> [Int] {
        let all = try nationalLedger()?.read { try $0.tickets() }.filter { $0.openedAtMs >= sinceMs } ?? []
        return endSeconds.map { second in
            let end = sinceMs + Int64(second) * 1_000
            return all.filter { $0.openedAtMs < end && ($0.closedAtMs ?? .max) >= end }.count
        }
    }
}
