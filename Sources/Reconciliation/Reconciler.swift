import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

/// What every node's ledger holds, read once: the input of the checks.
public struct ClusterSnapshot: Sendable {
    public struct Node: Sendable {
        /// Settlement transits this tier recorded, by msgid.
        public var transits: [String: SettlementView] = [:]
        /// Insured county: the settlements it decided, by msgid, and every person's balance.
        public var decided: [String: SettlementView] = [:]
        public var balances: [String: Int64] = [:]
        /// Hospital's county: settlements whose outcome it is still resolving (2601).
        public var openResolutions = 0
        /// Reversals whose outcome this tier never learned.
        public var unknownReversals: [String] = []
        /// Upload counters ('received', 'accepted', rule ids) and the size of the store.
        public var uploadCounts: [String: Int] = [:]
        public var storedRecords = 0
        /// Rejected records this tier keeps (upload_rejects): one for every reject it counted.
        public var rejectRows = 0

        public init() {}
    }

    public var nodes: [DivisionCode: Node]

    public init(nodes: [DivisionCode: Node]) { self.nodes = nodes }

    /// Reads every node's ledger under `dataDirectory` (safe while a cluster runs: WAL readers
    /// never block a node). A node without a ledger file counts as empty.
    public static func read(topology: Topology, dataDirectory: String) throws -> ClusterSnapshot {
        let layout = DataLayout(root: dataDirectory)
        var nodes: [DivisionCode: Node] = [:]
        for spec in topology.nodes {
            let ledger = try Ledger(path: layout.ledgerPath(spec.id))
            nodes[spec.id] = try ledger.read { tx in
                var node = Node()
                for transit in try tx.settlementTransits() { node.transits[transit.msgid] = transit }
                node.unknownReversals = try tx.unknownReversals()
                if spec.tier == .county {
                    for settlement in try tx.decidedSettlements() { node.decided[settlement.msgid] = settlement }
                    node.balances = try tx.balances()
                    node.openResolutions = try tx.resolutionCounts().open
                }
                node.uploadCounts = try tx.uploadCounts()
                node.storedRecords = try tx.count(table: .uploadClaims)
                node.rejectRows = try tx.count(table: .uploadRejects)
                return node
            }
        }
        return ClusterSnapshot(nodes: nodes)
    }
}

/// The verdict on money and data, in the spirit of reconciliation (3201/3202) and clearing
/// (3260/3261): nothing lost, nothing doubled, every ledger agreeing.
public struct ReconciliationResult: Codable, Sendable, Equatable {
    /// Settlements (by msgid) looked at.
    public var checked: Int
    /// The hospital's county holds it as settled or reversed and the insured county has no record
    /// of it, or a tier of its path has no record of what the insured county decided.
    public var lost: [String]
    /// The insured county holds money moved for a msgid the hospital's county knows nothing of,
    /// or more than one insured county holds it.
    public var duplicated: [String]
    /// Amounts, settlement id or final state differ between the tiers.
    public var mismatched: [String]
    /// Left in an intermediate state: unknown at some tier, or still being resolved.
    public var unresolved: [String]
    /// Persons whose balance is not initial balance minus the net of their settled account
    /// payments (person numbers masked: county prefix only).
    public var balancesChecked: Int
    public var balancesWrong: [String]
    /// Cross-province net positions by province, from the national tier's records (fen; what the
    /// province's fund is owed, negative when it owes), and whether they sum to zero and every
    /// province's own records confirm its position.
    public var clearingPositions: [String: Int64]
    public var clearingBalanced: Bool
    public var clearingDisputes: [String]
    /// received = accepted + rejected at every node, and the national store holds exactly what
    /// the national tier accepted.
    public var uploadsBalanced: Bool
    public var uploadProblems: [String]

    /// Each kind of problem with its items, in the order people read them.
    public var problemLists: [(name: String, items: [String])] {
        [("lost", lost), ("duplicated", duplicated), ("mismatched", mismatched), ("unresolved", unresolved),
         ("balances", balancesWrong), ("clearing", clearingDisputes), ("uploads", uploadProblems)]
    }

    public var passed: Bool {
        lost.isEmpty && duplicated.isEmpty && mismatched.isEmpty && unresolved.isEmpty && balancesWrong.isEmpty
            && clearingBalanced && uploadsBalanced
    }

    enum CodingKeys: String, CodingKey {
        case checked, lost, duplicated, mismatched, unresolved
        case balancesChecked = "balances_checked"
        case balancesWrong = "balances_wrong"
        case clearingPositions = "clearing_positions"
        case clearingBalanced = "clearing_balanced"
        case clearingDisputes = "clearing_disputes"
        case uploadsBalanced = "uploads_balanced"
        case uploadProblems = "upload_problems"
    }
}

/// The checks, pure: a snapshot in, a verdict out.
public struct Reconciler: Sendable {
    public let topology: Topology

    public init(topology: Topology) { self.topology = topology }

    public func check(_ snapshot: ClusterSnapshot) -> ReconciliationResult {
        let routing = topology.routingTable
        var lost: Set<String> = [], duplicated: Set<String> = [], mismatched: Set<String> = [], unresolved: Set<String> = []

        // Every record of each msgid, read once: where it was decided (normally exactly one
        // insured county) and what each tier holds of it.
        var decidedAt: [String: [DivisionCode]] = [:]
        var seenAt: [String: [DivisionCode: SettlementView]] = [:]
        for (id, node) in snapshot.nodes {
            for msgid in node.decided.keys { decidedAt[msgid, default: []].append(id) }
            for (msgid, transit) in node.transits { seenAt[msgid, default: [:]][id] = transit }
        }
        let all = Set(decidedAt.keys).union(seenAt.keys)

        for msgid in all {
            let places = decidedAt[msgid] ?? []
            if places.count > 1 { duplicated.insert(msgid); continue }
            let insuredID = places.first
            let decision = insuredID.flatMap { snapshot.nodes[$0]?.decided[msgid] }
            let seen = seenAt[msgid] ?? [:]
            // The route: from any record of it (every record names both ends).
            let anyTransit = seen.values.first
            guard let treatment = DivisionCode(decision?.treatment ?? anyTransit?.treatment ?? ""),
                  let insured = insuredID ?? DivisionCode(anyTransit?.insured ?? "") else { mismatched.insert(msgid); continue }
            let path = routing.path(from: treatment, to: insured)
            let atOrigin = seen[treatment]

            if seen.values.contains(where: { $0.state == "unknown" }) {
                unresolved.insert(msgid)
                continue
            }
            guard let decision else {
                // Never decided by the insured county: fine only if it was refused on the way.
                if let atOrigin, atOrigin.state == "refused" { continue }
                lost.insert(msgid)
                continue
            }
            guard atOrigin != nil else {
                // Money moved (or was refused) at the insured county without the hospital's county knowing.
                if decision.state != "refused" { duplicated.insert(msgid) } else { lost.insert(msgid) }
                continue
            }
            // A tombstone (a correction arrived before the settlement): the settlement never took
            // effect, and the tiers beyond where it was lost hold nothing of it.
            let tombstone = decision.state == "refused" && decision.errCode == ErrorCode.cancelledByCorrection.rawValue
            for tier in path {
                guard let record = seen[tier] else {
                    if !tombstone { lost.insert(msgid) }
                    continue
                }
                if record.state != decision.state { mismatched.insert(msgid); continue }
                // A tier that gave up waiting (or the hospital's county, answered by the resolution)
                // learned only the final state, by the correction: its amounts stay unknown.
                let sawTheAnswer = record.errCode.isEmpty
                if decision.state != "refused" && sawTheAnswer && (record.setlID != decision.setlID || record.medfeeSumamt != decision.medfeeSumamt
                        || record.fundPaySumamt != decision.fundPaySumamt || record.acctPay != decision.acctPay) {
                    mismatched.insert(msgid)
                }
            }
        }
        for node in snapshot.nodes.values { unresolved.formUnion(node.unknownReversals) }
        for (id, node) in snapshot.nodes where node.openResolutions > 0 {
            unresolved.insert("\(node.openResolutions) settlement(s) still being resolved at \(id)")
        }

        let (balancesChecked, balancesWrong) = checkBalances(snapshot)
        let clearing = checkClearing(snapshot)
        let uploadProblems = checkUploads(snapshot)
        return ReconciliationResult(
            checked: all.count, lost: lost.sorted(), duplicated: duplicated.sorted(), mismatched: mismatched.sorted(),
            unresolved: unresolved.sorted(), balancesChecked: balancesChecked, balancesWrong: balancesWrong,
            clearingPositions: clearing.positions, clearingBalanced: clearing.disputes.isEmpty, clearingDisputes: clearing.disputes,
            uploadsBalanced: uploadProblems.isEmpty, uploadProblems: uploadProblems)
    }

    /// Each person's balance = initial balance - account payments of settlements still settled
    /// (a reversal gives the payment back).
    func checkBalances(_ snapshot: ClusterSnapshot) -> (checked: Int, wrong: [String]) {
        var checked = 0
        var wrong: [String] = []
        for county in topology.counties {
            guard let node = snapshot.nodes[county.id] else { continue }
            let population = SyntheticPopulation(county: county.id, size: topology.population(of: county.id)?.size ?? 0)
            var paid: [String: Int64] = [:]
            for settlement in node.decided.values where settlement.state == "settled" {
                paid[settlement.psnNo, default: 0] += settlement.acctPay
            }
            for (psnNo, balance) in node.balances.sorted(by: { $0.key < $1.key }) {
                checked += 1
                guard let index = population.index(of: psnNo) else {
                    wrong.append("\(PersonalData.mask(psnNo)) at \(county.id): not a person of its population")
                    continue
                }
                let expected = population.person(index).initialBalanceFen - (paid[psnNo] ?? 0)
                if balance != expected {
                    wrong.append("\(PersonalData.mask(psnNo)) at \(county.id): balance \(balance) fen, expected \(expected)")
                }
            }
        }
        return (checked, wrong)
    }

    /// Cross-province clearing: for every settlement still settled whose two counties lie in
    /// different provinces, the insured province's fund owes the treatment province the fund
    /// payment. The national tier's positions must sum to zero, and each province's own
    /// records must give it the same position.
    func checkClearing(_ snapshot: ClusterSnapshot) -> (positions: [String: Int64], disputes: [String]) {
        func positions(of transits: Dictionary<String, SettlementView>.Values) -> [String: Int64] {
            var positions: [String: Int64] = [:]
            for transit in transits where transit.state == "settled" {
                guard let from = province(of: transit.insured), let to = province(of: transit.treatment), from != to else { continue }
                positions[to.value, default: 0] += transit.fundPaySumamt
                positions[from.value, default: 0] -= transit.fundPaySumamt
            }
            return positions
        }
        guard let root = topology.nodes.first(where: { $0.parent == nil }), let national = snapshot.nodes[root.id] else {
            return ([:], ["no national ledger"])
        }
        let cleared = positions(of: national.transits.values)
        var disputes: [String] = []
        let total = cleared.values.reduce(0, +)
        if total != 0 { disputes.append("national positions sum to \(total) fen, not 0") }
        for spec in topology.nodes where spec.tier == .province {
            let own = positions(of: snapshot.nodes[spec.id]?.transits.values ?? [:].values)[spec.id.value] ?? 0
            let national = cleared[spec.id.value] ?? 0
            if own != national { disputes.append("province \(spec.id) confirms \(own) fen, the national tier has \(national)") }
        }
        return (cleared, disputes)
    }

    /// At every node received = accepted + rejected; the national store holds what the national
    /// tier accepted, no more, no less.
    func checkUploads(_ snapshot: ClusterSnapshot) -> [String] {
        var problems: [String] = []
        for spec in topology.nodes {
            guard let counts = snapshot.nodes[spec.id]?.uploadCounts else { continue }
            let received = counts["received"] ?? 0, accepted = counts["accepted"] ?? 0
            let rejected = counts.filter { $0.key.hasPrefix("DQ-") }.values.reduce(0, +)
            if received != accepted + rejected {
                problems.append("node \(spec.id): received \(received) != accepted \(accepted) + rejected \(rejected)")
            }
            // Every reject counted is kept, for its correction and its ticket to find.
            if let rows = snapshot.nodes[spec.id]?.rejectRows, rows != rejected {
                problems.append("node \(spec.id): \(rejected) rejects counted, \(rows) recorded")
            }
            if spec.parent == nil, let stored = snapshot.nodes[spec.id]?.storedRecords, stored != accepted {
                problems.append("national store holds \(stored) records, the national tier accepted \(accepted)")
            }
        }
        return problems
    }

    func province(of county: String) -> DivisionCode? {
        let routing = topology.routingTable
        return DivisionCode(county).flatMap { routing.ancestors(of: $0).first { routing.tier(of: $0) == .province } }
    }
}
