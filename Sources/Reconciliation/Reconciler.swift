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
            nodes[spec.id] = try Ledger(path: layout.ledgerPath(spec.id)).read { tx in try node(spec, tx) }
        }
        return ClusterSnapshot(nodes: nodes)
    }

    /// The same for some of the nodes whose ledgers no process has open (a simulation's, once
    /// stopped), each file read as it is (`Ledger.readClosed(path:)`): without what a node's
    /// open does, which would read it twice.
    public static func read(_ specs: [NodeSpec], dataDirectory: String) throws -> ClusterSnapshot {
        let layout = DataLayout(root: dataDirectory)
        var nodes: [DivisionCode: Node] = [:]
        for spec in specs {
            nodes[spec.id] = try Ledger.readClosed(path: layout.ledgerPath(spec.id)) { tx in try node(spec, tx) }
        }
        return ClusterSnapshot(nodes: nodes)
    }

    private static func node(_ spec: NodeSpec, _ tx: LedgerTransaction) throws -> Node {
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

    /// Moves every view of the msgids `leaving` picks (given a view and the node that holds it)
    /// out of this snapshot, into the snapshot returned.
    mutating func splitOff(where leaving: (SettlementView, DivisionCode) -> Bool) -> ClusterSnapshot {
        var msgids: Set<String> = []
        for (id, node) in nodes {
            for (msgid, view) in node.transits where leaving(view, id) { msgids.insert(msgid) }
            for (msgid, view) in node.decided where leaving(view, id) { msgids.insert(msgid) }
        }
        var split = ClusterSnapshot(nodes: [:])
        guard !msgids.isEmpty else { return split }
        for id in Array(nodes.keys) {
            var moved = Node()
            for msgid in nodes[id]!.transits.keys where msgids.contains(msgid) { moved.transits[msgid] = nodes[id]!.transits[msgid] }
            for msgid in nodes[id]!.decided.keys where msgids.contains(msgid) { moved.decided[msgid] = nodes[id]!.decided[msgid] }
            guard !moved.transits.isEmpty || !moved.decided.isEmpty else { continue }
            for msgid in moved.transits.keys { nodes[id]!.transits[msgid] = nil }
            for msgid in moved.decided.keys { nodes[id]!.decided[msgid] = nil }
            split.nodes[id] = moved
        }
        return split
    }

    /// Adds `other`'s settlement views (transits and decisions) to this snapshot's.
    mutating func addViews(of other: ClusterSnapshot) {
        for (id, node) in other.nodes {
            nodes[id, default: Node()].transits.merge(node.transits) { _, new in new }
            nodes[id, default: Node()].decided.merge(node.decided) { _, new in new }
        }
    }

    /// This snapshot without its settlement views: what the checks of the whole read.
    var totals: ClusterSnapshot {
        var totals = self
        for id in totals.nodes.keys {
            totals.nodes[id]!.transits = [:]
            totals.nodes[id]!.decided = [:]
        }
        return totals
    }
}

/// What the checks of some of the settlements found, and the sums the checks of the whole take
/// from them: a reconciliation of ledgers too large to hold at once adds these up part by part.
public struct PartialReconciliation: Sendable {
    var checked = 0
    var lost: Set<String> = [], duplicated: Set<String> = [], mismatched: Set<String> = [], unresolved: Set<String> = []
    /// Account payments of the settlements still settled, by insured county and person.
    var paid: [DivisionCode: [String: Int64]] = [:]
    /// Cross-province positions (fen, by province) from the national tier's records, and from
    /// each province's own.
    var nationalPositions: [String: Int64] = [:]
    var ownPositions: [DivisionCode: [String: Int64]] = [:]

    public init() {}

    public mutating func add(_ other: PartialReconciliation) {
        checked += other.checked
        lost.formUnion(other.lost)
        duplicated.formUnion(other.duplicated)
        mismatched.formUnion(other.mismatched)
        unresolved.formUnion(other.unresolved)
        for (county, persons) in other.paid { paid[county, default: [:]].merge(persons, uniquingKeysWith: +) }
        nationalPositions.merge(other.nationalPositions, uniquingKeysWith: +)
        for (province, positions) in other.ownPositions { ownPositions[province, default: [:]].merge(positions, uniquingKeysWith: +) }
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
    /// Each node's province (a province's own is itself); none for the national node.
    let provinceOf: [DivisionCode: DivisionCode]

    public init(topology: Topology) {
        self.topology = topology
        let routing = topology.routingTable
        var provinceOf: [DivisionCode: DivisionCode] = [:]
        for spec in topology.nodes {
            provinceOf[spec.id] = spec.tier == .province ? spec.id
                : routing.ancestors(of: spec.id).first { routing.tier(of: $0) == .province }
        }
        self.provinceOf = provinceOf
    }

    public func check(_ snapshot: ClusterSnapshot) -> ReconciliationResult {
        finish(partial(snapshot), totals: snapshot)
    }

    /// Reconciles the ledgers under `dataDirectory` a province at a time, each ledger read
    /// once: the same verdict as `check(ClusterSnapshot.read(...))` in the memory of the largest
    /// province, and of the settlements that cross provinces. A national day's rows at once
    /// would be about 40 GB. `progress` hears of each province done: how many, of how many.
    public func checkByProvince(dataDirectory: String, progress: (_ done: Int, _ of: Int) -> Void = { _, _ in }) throws -> ReconciliationResult {
        try checkByProvince(progress: progress) { try ClusterSnapshot.read($0, dataDirectory: dataDirectory) }
    }

    /// The same over any reader of some nodes' ledgers.
    ///
    /// Each province's subtree is read and its own settlements checked; the views of those
    /// whose route leaves the province are kept aside, and checked at the end with the nodes
    /// under no province (the national tier). Every view is checked, and counted in the sums
    /// of the whole (payments by person, clearing positions), exactly once.
    public func checkByProvince(progress: (_ done: Int, _ of: Int) -> Void = { _, _ in },
                                read: ([NodeSpec]) throws -> ClusterSnapshot) throws -> ReconciliationResult {
        var groups: [DivisionCode: [NodeSpec]] = [:], rest: [NodeSpec] = []
        for spec in topology.nodes {
            if let province = provinceOf[spec.id] { groups[province, default: []].append(spec) } else { rest.append(spec) }
        }
        var sum = PartialReconciliation()
        var totals = ClusterSnapshot(nodes: [:])
        var crossing = ClusterSnapshot(nodes: [:])
        for (done, province) in groups.keys.sorted().enumerated() {
            var snapshot = try read(groups[province]!)
            // A decision names only where the care was; the county that holds it is the insured one.
            crossing.addViews(of: snapshot.splitOff { view, holder in
                let treatment = DivisionCode(view.treatment).flatMap { provinceOf[$0] }
                let insured = view.insured.isEmpty ? provinceOf[holder] : DivisionCode(view.insured).flatMap { provinceOf[$0] }
                return treatment != province || insured != province
            })
            sum.add(partial(snapshot))
            totals.nodes.merge(snapshot.totals.nodes) { _, new in new }
            progress(done + 1, groups.count)
        }
        var last = try read(rest)
        totals.nodes.merge(last.totals.nodes) { _, new in new }
        last.addViews(of: crossing)
        sum.add(partial(last))
        return finish(sum, totals: totals)
    }

    /// The msgid-by-msgid checks of `snapshot`'s settlements, and the sums the whole's need.
    public func partial(_ snapshot: ClusterSnapshot) -> PartialReconciliation {
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
        var result = PartialReconciliation()
        result.checked = all.count
        result.lost = lost
        result.duplicated = duplicated
        result.mismatched = mismatched
        result.unresolved = unresolved
        for county in topology.counties {
            guard let node = snapshot.nodes[county.id] else { continue }
            var paid: [String: Int64] = [:]
            for settlement in node.decided.values where settlement.state == "settled" {
                paid[settlement.psnNo, default: 0] += settlement.acctPay
            }
            if !paid.isEmpty { result.paid[county.id] = paid }
        }
        if let root = topology.nodes.first(where: { $0.parent == nil }), let national = snapshot.nodes[root.id] {
            result.nationalPositions = positions(of: national.transits.values)
        }
        for spec in topology.nodes where spec.tier == .province {
            result.ownPositions[spec.id] = positions(of: snapshot.nodes[spec.id]?.transits.values ?? [:].values)
        }
        return result
    }

    /// The verdict: `partial`'s findings, with the checks of the whole (balances, clearing,
    /// uploads, what is still being resolved) from `totals`, a snapshot without its settlement views.
    public func finish(_ partial: PartialReconciliation, totals snapshot: ClusterSnapshot) -> ReconciliationResult {
        var unresolved = partial.unresolved
        for node in snapshot.nodes.values { unresolved.formUnion(node.unknownReversals) }
        for (id, node) in snapshot.nodes where node.openResolutions > 0 {
            unresolved.insert("\(node.openResolutions) settlement(s) still being resolved at \(id)")
        }

        let (balancesChecked, balancesWrong) = checkBalances(snapshot, paid: partial.paid)
        let clearing = checkClearing(partial, hasNational: topology.nodes.first(where: { $0.parent == nil }).flatMap { snapshot.nodes[$0.id] } != nil)
        let uploadProblems = checkUploads(snapshot)
        return ReconciliationResult(
            checked: partial.checked, lost: partial.lost.sorted(), duplicated: partial.duplicated.sorted(),
            mismatched: partial.mismatched.sorted(),
            unresolved: unresolved.sorted(), balancesChecked: balancesChecked, balancesWrong: balancesWrong,
            clearingPositions: clearing.positions, clearingBalanced: clearing.disputes.isEmpty, clearingDisputes: clearing.disputes,
            uploadsBalanced: uploadProblems.isEmpty, uploadProblems: uploadProblems)
    }

    /// Each person's balance = initial balance - account payments of settlements still settled
    /// (a reversal gives the payment back).
    func checkBalances(_ snapshot: ClusterSnapshot, paid paidByCounty: [DivisionCode: [String: Int64]]) -> (checked: Int, wrong: [String]) {
        var checked = 0
        var wrong: [String] = []
        for county in topology.counties {
            guard let node = snapshot.nodes[county.id] else { continue }
            let population = SyntheticPopulation(county: county.id, size: topology.population(of: county.id)?.size ?? 0)
            let paid = paidByCounty[county.id] ?? [:]
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
    func checkClearing(_ partial: PartialReconciliation, hasNational: Bool) -> (positions: [String: Int64], disputes: [String]) {
        guard hasNational else { return ([:], ["no national ledger"]) }
        let cleared = partial.nationalPositions
        var disputes: [String] = []
        let total = cleared.values.reduce(0, +)
        if total != 0 { disputes.append("national positions sum to \(total) fen, not 0") }
        for spec in topology.nodes where spec.tier == .province {
            let own = partial.ownPositions[spec.id]?[spec.id.value] ?? 0
            let national = cleared[spec.id.value] ?? 0
            if own != national { disputes.append("province \(spec.id) confirms \(own) fen, the national tier has \(national)") }
        }
        return (cleared, disputes)
    }

    /// Cross-province positions from one tier's transits still settled whose two counties lie in
    /// different provinces: the insured province's fund owes the treatment province the fund payment.
    func positions(of transits: Dictionary<String, SettlementView>.Values) -> [String: Int64] {
        var positions: [String: Int64] = [:]
        for transit in transits where transit.state == "settled" {
            guard let from = province(of: transit.insured), let to = province(of: transit.treatment), from != to else { continue }
            positions[to.value, default: 0] += transit.fundPaySumamt
            positions[from.value, default: 0] -= transit.fundPaySumamt
        }
        return positions
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
        DivisionCode(county).flatMap { provinceOf[$0] }
    }
}
