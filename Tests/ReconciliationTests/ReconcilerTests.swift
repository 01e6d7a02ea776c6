import Foundation
import NetworkTopology
import Persistence
import Reconciliation
import SettlementCore
import SettlementModel
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The checks on hand-made ledgers: a consistent cluster passes, and each kind of damage is
/// caught and named by its msgid, so we know the reconciliation can fail.
@Suite struct ReconcilerTests {
    let topology: Topology
    let reconciler: Reconciler
    let cross = "H37021100001202611230000000001"    // 370211 -> 410102, settled
    let local = "H41010200001202611230000000002"    // 410102 -> 410102, settled then reversed
    let person: SyntheticPerson

    init() throws {
        topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        reconciler = Reconciler(topology: topology)
        person = SyntheticPopulation(county: DivisionCode("410102")!, size: topology.population(of: DivisionCode("410102")!)!.size).person(0)
    }

    func view(_ msgid: String, from treatment: String, role: String, state: String, fund: Int64 = 6_000, acct: Int64 = 1_500,
              errCode: String = "") -> SettlementView {
        let settled = state != "refused"
        return SettlementView(msgid: msgid, infno: "2207", role: role, treatment: treatment, insured: "410102", state: state,
                              errCode: errCode, setlID: settled ? "41010200000000000001" : "", medfeeSumamt: settled ? 10_000 : 0,
                              fundPaySumamt: settled ? fund : 0, acctPay: settled ? acct : 0, psnNo: "")
    }

    /// A cross-province settlement recorded on all seven tiers of its path, a local one settled
    /// and reversed, the person's balance down by the one still settled, no uploads.
    func consistent() -> ClusterSnapshot {
        var nodes: [DivisionCode: ClusterSnapshot.Node] = [:]
        for spec in topology.nodes { nodes[spec.id] = ClusterSnapshot.Node() }
        let path = topology.routingTable.path(from: DivisionCode("370211")!, to: DivisionCode("410102")!)
        for (index, tier) in path.enumerated() {
            let role = index == 0 ? "origin" : (index == path.count - 1 ? "insured" : "relay")
            nodes[tier]!.transits[cross] = view(cross, from: "370211", role: role, state: "settled")
        }
        let county = DivisionCode("410102")!
        nodes[county]!.transits[local] = view(local, from: "410102", role: "local", state: "reversed", acct: 700)
        var decided = view(cross, from: "370211", role: "insured", state: "settled")
        decided.psnNo = person.psnNo
        nodes[county]!.decided[cross] = decided
        var reversed = view(local, from: "410102", role: "insured", state: "reversed", acct: 700)
        reversed.psnNo = person.psnNo
        nodes[county]!.decided[local] = reversed
        nodes[county]!.balances[person.psnNo] = person.initialBalanceFen - 1_500
        return ClusterSnapshot(nodes: nodes)
    }

    @Test func aConsistentClusterReconciles() {
        let result = reconciler.check(consistent())
        #expect(result.passed, "\(ReconciliationText.verdict(result))")
        #expect(result.checked == 2 && result.balancesChecked == 1)
        // The settlement is Henan's fund paying for care in Shandong: positions sum to zero.
        #expect(result.clearingPositions == ["370000": 6_000, "410000": -6_000])
    }

    @Test func aDeletedRowIsLost() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("410102")!]!.decided[cross] = nil
        #expect(reconciler.check(snapshot).lost == [cross])
        var missingTier = consistent()
        missingTier.nodes[DivisionCode("000000")!]!.transits[cross] = nil
        #expect(reconciler.check(missingTier).lost == [cross])
    }

    @Test func aDoubledRowIsDuplicated() {
        var snapshot = consistent()
        let doubled = "H37021100001202611230000000099"
        var copy = snapshot.nodes[DivisionCode("410102")!]!.decided[cross]!
        copy.msgid = doubled
        copy.setlID = "41010200000000000002"
        snapshot.nodes[DivisionCode("410102")!]!.decided[doubled] = copy
        let result = reconciler.check(snapshot)
        #expect(result.duplicated == [doubled])
        // The money left the account twice, and the balance says so.
        #expect(result.balancesWrong.count == 1)
        // Decided by two insured counties at once: duplicated too.
        var twice = consistent()
        twice.nodes[DivisionCode("410103")!]!.decided[cross] = twice.nodes[DivisionCode("410102")!]!.decided[cross]
        #expect(reconciler.check(twice).duplicated == [cross])
    }

    @Test func aChangedAmountIsMismatchedAndDisputedInClearing() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("370000")!]!.transits[cross]!.fundPaySumamt = 5_999
        let result = reconciler.check(snapshot)
        #expect(result.mismatched == [cross])
        #expect(!result.clearingBalanced && result.clearingDisputes == ["province 370000 confirms 5999 fen, the national tier has 6000"])
        var state = consistent()
        state.nodes[DivisionCode("410100")!]!.transits[cross]!.state = "reversed"
        #expect(reconciler.check(state).mismatched == [cross])
    }

    @Test func aTierThatGaveUpWaitingOnlyNeedsTheFinalState() {
        // The city timed out (SN-E3002) before the late answer came; the correction reversal then
        // passed it: it knows the settlement was reversed, not its amounts.
        var snapshot = consistent()
        for id in snapshot.nodes.keys where snapshot.nodes[id]!.transits[cross] != nil { snapshot.nodes[id]!.transits[cross]!.state = "reversed" }
        snapshot.nodes[DivisionCode("410102")!]!.decided[cross]!.state = "reversed"
        snapshot.nodes[DivisionCode("410102")!]!.balances[person.psnNo] = person.initialBalanceFen
        snapshot.nodes[DivisionCode("410100")!]!.transits[cross] = view(cross, from: "370211", role: "relay", state: "reversed",
                                                                        fund: 0, acct: 0, errCode: ErrorCode.timeout.rawValue)
        snapshot.nodes[DivisionCode("410100")!]!.transits[cross]!.medfeeSumamt = 0
        snapshot.nodes[DivisionCode("410100")!]!.transits[cross]!.setlID = ""
        #expect(reconciler.check(snapshot).passed)
        // A tier that did see the answer must hold its amounts.
        snapshot.nodes[DivisionCode("410100")!]!.transits[cross]!.errCode = ""
        #expect(reconciler.check(snapshot).mismatched == [cross])
    }

    @Test func anUnknownOutcomeOrAnOpenResolutionIsUnresolved() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("410100")!]!.transits[cross]!.state = "unknown"
        #expect(reconciler.check(snapshot).unresolved == [cross])
        var reversal = consistent()
        reversal.nodes[DivisionCode("370211")!]!.unknownReversals = ["H37021100001202611230000000005"]
        #expect(reconciler.check(reversal).unresolved == ["H37021100001202611230000000005"])
        var open = consistent()
        open.nodes[DivisionCode("370211")!]!.openResolutions = 2
        #expect(reconciler.check(open).unresolved == ["2 settlement(s) still being resolved at 370211"])
    }

    @Test func aWrongBalanceIsNamedWithoutThePersonNumber() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("410102")!]!.balances[person.psnNo]! += 1
        let wrong = reconciler.check(snapshot).balancesWrong
        #expect(wrong.count == 1 && wrong[0].hasPrefix("410102**************"))
        #expect(!wrong[0].contains(person.psnNo))
    }

    @Test func refusalsOnTheWayAndTombstonesNeedNoInsuredRecordOnEveryTier() {
        var snapshot = consistent()
        let busy = "H37021100001202611230000000003"
        snapshot.nodes[DivisionCode("370211")!]!.transits[busy] = view(busy, from: "370211", role: "origin", state: "refused",
                                                                       errCode: ErrorCode.busy.rawValue)
        // A correction reached the insured county first: the settlement is refused there, and only
        // the tiers it had passed know it (as refused, after the correction went by).
        let cancelled = "H37021100001202611230000000004"
        for tier in ["370211", "370200"] {
            snapshot.nodes[DivisionCode(tier)!]!.transits[cancelled] = view(cancelled, from: "370211", role: tier == "370211" ? "origin" : "relay",
                                                                             state: "refused")
        }
        var tombstone = view(cancelled, from: "370211", role: "insured", state: "refused", errCode: ErrorCode.cancelledByCorrection.rawValue)
        tombstone.psnNo = person.psnNo
        snapshot.nodes[DivisionCode("410102")!]!.decided[cancelled] = tombstone
        let result = reconciler.check(snapshot)
        #expect(result.passed, "\(ReconciliationText.verdict(result))")
        // But money the hospital's county believes settled cannot be missing at the insured county.
        snapshot.nodes[DivisionCode("370211")!]!.transits[busy]!.state = "settled"
        #expect(reconciler.check(snapshot).lost == [busy])
    }

    @Test func uploadCountsThatDoNotAddUpAreReported() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("370211")!]!.uploadCounts = ["received": 10, "accepted": 7, "DQ-R101": 2]
        snapshot.nodes[DivisionCode("000000")!]!.uploadCounts = ["received": 5, "accepted": 5]
        snapshot.nodes[DivisionCode("000000")!]!.storedRecords = 4
        let result = reconciler.check(snapshot)
        #expect(!result.uploadsBalanced)
        #expect(Set(result.uploadProblems) == ["node 370211: received 10 != accepted 7 + rejected 2",
                                               "national store holds 4 records, the national tier accepted 5",
                                               "node 370211: 2 rejects counted, 0 recorded"])
    }

    /// A reject counted but not kept cannot be corrected, and its ticket never closes.
    @Test func rejectsCountedButNotKeptAreReported() {
        var snapshot = consistent()
        snapshot.nodes[DivisionCode("000000")!]!.uploadCounts = ["received": 100, "accepted": 90, "DQ-R204": 10]
        snapshot.nodes[DivisionCode("000000")!]!.storedRecords = 90
        snapshot.nodes[DivisionCode("000000")!]!.rejectRows = 9
        #expect(reconciler.check(snapshot).uploadProblems == ["node 000000: 10 rejects counted, 9 recorded"])
        snapshot.nodes[DivisionCode("000000")!]!.rejectRows = 10
        #expect(reconciler.check(snapshot).uploadsBalanced)
    }
}

/// A reconciliation a province at a time (ledgers too large to hold at once: a simulated day)
/// gives the verdict of the whole, damage included.
@Suite struct ReconciliationByProvinceTests {
    /// Each province's nodes read on their own, the national tier last: the same result as the
    /// whole, for a cluster with a changed amount on a cross-province settlement (mismatched,
    /// disputed in clearing), a local settlement whose insured county holds another state
    /// (mismatched, inside one province), and a wrong balance.
    @Test func provinceByProvinceGivesTheVerdictOfTheWhole() throws {
        let whole = try ReconcilerTests()
        var damaged = whole.consistent()
        let insured = DivisionCode("410102")!, national = DivisionCode("000000")!
        damaged.nodes[national]!.transits[whole.cross]!.fundPaySumamt += 1
        damaged.nodes[insured]!.decided[whole.local]!.state = "settled"
        damaged.nodes[insured]!.balances[whole.person.psnNo]! -= 7
        let expected = whole.reconciler.check(damaged)
        #expect(expected.mismatched == [whole.cross, whole.local].sorted())
        #expect(!expected.clearingDisputes.isEmpty && !expected.balancesWrong.isEmpty)

        var groupsRead: [[String]] = []
        let byProvince = try whole.reconciler.checkByProvince { specs in
            groupsRead.append(specs.map(\.id.value))
            return ClusterSnapshot(nodes: damaged.nodes.filter { id, _ in specs.contains { $0.id == id } })
        }
        #expect(byProvince == expected)
        // Every node read once, a province at a time, the national tier on its own.
        #expect(groupsRead.flatMap { $0 }.sorted() == whole.topology.nodes.map(\.id.value).sorted())
        #expect(groupsRead.count == whole.topology.nodes.filter { $0.tier == .province }.count + 1)
        #expect(groupsRead.last == ["000000"])
    }
}
