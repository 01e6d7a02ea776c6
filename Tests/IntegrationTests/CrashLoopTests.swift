import ClusterControl
import Foundation
import GRDB
import NetworkTopology
import Scenario
import SettlementModel
import Testing

/// Issue 21, item 1: a crash at any instant. Under load, nodes crash (SIGKILL by their own
/// hand) at seeded points of their commit cycle: before a commit, in the middle of one (the log
/// torn after a frame's header), between the sync and the send, and just after the send. Each
/// starts again 200 ms later. After every crash the runner checks the crashed process's
/// ledgers (`PRAGMA integrity_check`) before the restart; at the end the network must reconcile
/// with nothing lost, doubled, mismatched or left in doubt, and no answer serial may have been
/// given twice. `SETTLENET_CRASHES=N` runs N crashes in each test instead of the default, and
/// `SETTLENET_KEEP_DATA=1` keeps the cluster's directory (ledgers, logs, report) to look into.
@Suite struct CrashLoopTests {
    static var crashes: Int? { ProcessInfo.processInfo.environment["SETTLENET_CRASHES"].flatMap { Int($0) } }

    /// A scenario of `count` crashes, one every `spacingMs`, of the `victims` in a seeded order
    /// (never the same node twice in a row, so that each has started again before it is armed),
    /// at the four points in turn, each at a seeded pass from 1 to 5.
    static func scenario(name: String, seed: UInt64, victims: [String], count: Int, spacingMs: Int) -> String {
        var state = seed
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        var faults: [String] = []
        var last = ""
        for index in 0..<count {
            var victim = victims[next() % victims.count]
            if victim == last { victim = victims[(victims.firstIndex(of: victim)! + 1) % victims.count] }
            last = victim
            let point = CrashPoint.allCases[index % CrashPoint.allCases.count].rawValue
            faults.append("  - { at: \(1_000 + index * spacingMs)ms, crash: \"\(victim)\", point: \(point), after: \(1 + next() % 5), restart_after: 200ms }")
        }
        return """
            name: \(name)
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: \(seed)
            duration: \(4_000 + count * spacingMs)ms
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 80
                mix:
                  route: { local: 0.1, intra_city: 0.2, intra_province: 0.3, cross_province: 0.4 }
                  inpatient: 0.2
                  reversal: 0.1
                max_in_flight: 5000
            faults:
            \(faults.joined(separator: "\n"))
            thresholds:
              settlements.unresolved: "== 0"
              settlements.unanswered: "== 0"
              reconciliation.lost: "== 0"
              reconciliation.duplicated: "== 0"
              reconciliation.mismatched: "== 0"
              reconciliation.unresolved: "== 0"
            """
    }

    /// One process per node: the insured and origin counties, a city, a province and the
    /// national node crash in turn.
    @Test func nodesCrashedAtEveryPointOfTheirCommitCycleLeaveEveryLedgerAgreeing() throws {
        try crashLoop(name: "crash-loop", pack: nil, victims: ["410102", "370211", "410100", "370000", "000000"],
                      count: Self.crashes ?? 120, seed: 2_101)
    }

    /// Province-tier packing: a crash takes a province's whole process (province, cities and
    /// counties) or the national node's down.
    @Test func packedProcessesCrashedAtEveryPointLeaveEveryLedgerAgreeing() throws {
        try crashLoop(name: "crash-loop-packed", pack: "province-tier", victims: ["410102", "370211", "000000"],
                      count: Self.crashes ?? 80, seed: 2_102)
    }

    /// Nodes not started for crash points watch for none: a scenario with crash faults refuses
    /// to run on them, before anything starts, and says how to start them.
    @Test func crashFaultsNeedNodesStartedWithCrashPoints() throws {
        let cluster = try TestCluster()
        defer { cluster.tearDown() }
        try cluster.start()
        let scenarioFile = "\(cluster.dataDirectory)/crash.yaml"
        try Self.scenario(name: "crash", seed: 1, victims: ["410102"], count: 1, spacingMs: 1_000)
            .write(toFile: scenarioFile, atomically: true, encoding: .utf8)
        let run = try settlenet(["scenario", "run", scenarioFile, "--attach", cluster.dataDirectory, "--out", "\(cluster.dataDirectory)/report"])
        #expect(run.status == 2 && run.error.contains("crash.yaml:") && run.error.contains("cluster up --crash-points"), "\(run.error)")
        #expect(!FileManager.default.fileExists(atPath: "\(cluster.dataDirectory)/report/report.json"))
    }

    private func crashLoop(name: String, pack: String?, victims: [String], count: Int, seed: UInt64) throws {
        let cluster = try TestCluster()
        defer { cluster.tearDown() }
        try cluster.start(["--crash-points"] + (pack.map { ["--pack", $0] } ?? []))
        let scenarioFile = "\(cluster.dataDirectory)/\(name).yaml"
        try Self.scenario(name: name, seed: seed, victims: victims, count: count, spacingMs: 1_000)
            .write(toFile: scenarioFile, atomically: true, encoding: .utf8)
        let run = try settlenet(["scenario", "run", scenarioFile, "--attach", cluster.dataDirectory, "--out", "\(cluster.dataDirectory)/report"])
        #expect(run.status == 0, "\(run.output.suffix(3_000))\(run.error.suffix(2_000))")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(cluster.dataDirectory)/report/report.json")))

        // Every crash happened at its point, left ledgers SQLite finds sound, and was followed by a restart.
        #expect(report.faults.count == count && report.faults.allSatisfy { $0.kind == "crash" })
        let atPoint = report.faults.filter { $0.note.contains("crashed") }
        #expect(atPoint.count == count, "crashed at their point: \(atPoint.count) of \(count); \(report.faults.filter { !$0.note.contains("crashed") }.map(\.note).prefix(5))")
        let unsound = report.faults.filter { $0.integrity != "ok" }
        #expect(unsound.isEmpty, "ledgers failing integrity_check after a crash: \(unsound.map { "\($0.node) at \($0.note): \($0.integrity ?? "not checked")" }.prefix(5))")
        #expect(report.faults.allSatisfy { $0.endedS != nil }, "a crashed node was not started again")
        for point in CrashPoint.allCases {
            #expect(atPoint.contains { $0.note.hasPrefix(point.rawValue) }, "no crash at \(point.rawValue)")
        }

        // The network agrees: nothing lost, doubled, mismatched or left in doubt.
        let reconciliation = try #require(report.reconciliation)
        #expect(reconciliation.passed && reconciliation.checked > count * 20, "checked \(reconciliation.checked)")
        #expect(report.settlements.unresolved == 0 && report.settlements.unanswered == 0)
        // A ledger refusing a setl_id it gave before would answer SN-E3004.
        #expect(report.errors.byCode[ErrorCode.busy.rawValue] == nil, "\(report.errors.byCode)")

        // No answer serial given twice: the answers every county stored name each its own.
        for county in cluster.topology.nodes where county.tier == .county {
            let queue = try DatabaseQueue(path: DataLayout(root: cluster.dataDirectory).ledgerPath(county.id))
            defer { try? queue.close() }
            let answers = try queue.read { db in try Data.fetchAll(db, sql: "SELECT response FROM settlements") }
            let serials = try answers.map { try WireResponse(serializedBytes: $0).infRefmsgid }
            #expect(Set(serials).count == serials.count, "county \(county.id): \(serials.count - Set(serials).count) answer serials given twice")
            let setlIDs = try queue.read { db in try String.fetchAll(db, sql: "SELECT setl_id FROM settlements WHERE setl_id != ''") }
            #expect(Set(setlIDs).count == setlIDs.count)
        }
    }
}
