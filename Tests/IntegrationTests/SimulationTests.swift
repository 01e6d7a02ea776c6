import Foundation
import GRDB
import NetworkTopology
import Reconciliation
import Scenario
import SettlementModel
@testable import Simulation
import Testing

/// `settlenet sim`: the network simulated in one process on virtual time, replayed exactly.
@Suite struct SimulationTests {
    /// report.json as a dictionary, without the fields it names as the wall clock's.
    private func reportWithoutWallClock(_ directory: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/report.json"))
        var report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var simulation = try #require(report["simulation"] as? [String: Any])
        let wallClock = try #require(simulation["wall_clock_fields"] as? [String])
        #expect(Set(wallClock) == ["machine", "simulation.wall_s", "simulation.speedup"])
        for path in wallClock {
            if path.hasPrefix("simulation.") { simulation[String(path.dropFirst("simulation.".count))] = nil } else { report[path] = nil }
        }
        report["simulation"] = simulation
        return report
    }

    private func canonical(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// Eight kills under load, across every tier. Each crash loses what its node committed and
    /// no sync covered yet; the restarted node resolves what it had in flight.
    static let kills = """
        name: sim-kills
        topology: \(repositoryRoot)/Topologies/minimal.yaml
        seed: 77
        duration: 6s
        load:
          settlements:
            executor: constant-arrival-rate
            rate: 400
            mix:
              route: { local: 0.1, intra_city: 0.2, intra_province: 0.3, cross_province: 0.4 }
              inpatient: 0.2
              reversal: 0.05
            max_in_flight: 5000
        faults:
          - { at: 1003ms, kill: "410102", restart_after: 700ms }
          - { at: 1507ms, kill: "370100", restart_after: 600ms }
          - { at: 2011ms, kill: "000000", restart_after: 500ms }
          - { at: 2513ms, kill: "370102", restart_after: 800ms }
          - { at: 3017ms, kill: "410300", restart_after: 400ms }
          - { at: 3519ms, kill: "370000", restart_after: 700ms }
          - { at: 4023ms, kill: "410303", restart_after: 600ms }
          - { at: 4527ms, kill: "410000", restart_after: 500ms }
        thresholds:
          settlements.unresolved: "== 0"
          reconciliation.lost: "== 0"
        """

    @Test func aFaultyScenarioReplaysByteForByteAndItsCrashesReconcile() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-replay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try Self.kills.write(toFile: "\(base)/kills.yaml", atomically: true, encoding: .utf8)
        var reports: [[String: Any]] = []
        for (run, seed) in [("a", "77"), ("b", "77"), ("other-seed", "78")] {
            let result = try settlenet(["sim", "\(base)/kills.yaml", "--seed", seed, "--out", "\(base)/\(run)"])
            #expect(result.status == 0, "\(result.output)\(result.error)")
            reports.append(try reportWithoutWallClock("\(base)/\(run)"))
        }
        let (first, second, otherSeed) = (reports[0], reports[1], reports[2])
        #expect(try canonical(first) == canonical(second))
        // It is the seed that decides: another one plans, settles and records otherwise.
        #expect(try canonical(first) != canonical(otherSeed))
        let simulation = try #require(first["simulation"] as? [String: Any])
        let otherSimulation = try #require(otherSeed["simulation"] as? [String: Any])
        #expect(simulation["ledgers_digest"] as? String != otherSimulation["ledgers_digest"] as? String)

        // The crashes lost commits no sync had covered, and still every ledger agrees, nothing
        // is left in doubt, and the load went through every route class.
        let faults = try #require(first["faults"] as? [[String: Any]])
        #expect(faults.count == 8 && faults.allSatisfy { $0["end_s"] is Double })
        #expect(faults.reduce(0) { $0 + ($1["lost_log_frames"] as? Int ?? 0) } > 0)
        let reconciliation = try #require(first["reconciliation"] as? [String: Any])
        #expect(reconciliation["passed"] as? Bool == true)
        let settlements = try #require(first["settlements"] as? [String: Any])
        #expect(settlements["unresolved"] as? Int == 0)
        #expect((settlements["succeeded"] as? Int ?? 0) > 1_500)
        #expect((settlements["resolved_settled"] as? Int ?? 0) + (settlements["resolved_refused"] as? Int ?? 0) > 0)
        let routes = try #require(settlements["by_route"] as? [String: Any])
        #expect(Set(routes.keys) == ["local", "intra_city", "intra_province", "cross_province"])
    }

    /// Events of the same instant come out in the order they were scheduled: the order a replay
    /// depends on.
    @Test func theAgendaKeepsTimeOrderAndWithinAnInstantTheOrderOfScheduling() {
        var agenda = EventQueue<Int>()
        let times: [Int64] = [30, 10, 20, 10, 30, 10, 0]
        for (index, time) in times.enumerated() { agenda.schedule(index, atUs: time) }
        var order: [Int] = []
        while let (_, event) = agenda.next() { order.append(event) }
        #expect(order == [6, 1, 3, 5, 2, 0, 4])
    }

    /// The smoke scenario on real node processes and simulated: the same outcomes by route class
    /// and by error code, the same reversals, the same reconciliation verdict. (Latencies differ:
    /// the model is a model.)
    @Test func aScenarioSimulatedHasTheOutcomesOfTheSameScenarioOnRealProcesses() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-agree-\(UUID().uuidString)").path
        defer {
            _ = try? settlenet(["cluster", "down", "--data-dir", "\(base)/real/cluster", "--grace", "5"])
            try? FileManager.default.removeItem(atPath: base)
        }
        let real = try settlenet(["scenario", "run", "Scenarios/smoke.yaml", "--out", "\(base)/real"])
        #expect(real.status == 0, "\(real.output)\(real.error)")
        let simulated = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/sim"])
        #expect(simulated.status == 0, "\(simulated.output)\(simulated.error)")
        func report(_ run: String) throws -> RunReport {
            try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)/report.json")))
        }
        let (onProcesses, inSimulation) = (try report("real"), try report("sim"))
        #expect(onProcesses.simulation == nil && inSimulation.simulation != nil)
        #expect(onProcesses.planDigest == inSimulation.planDigest)
        func outcomes(_ report: RunReport) -> [String: [Int]] {
            report.settlements.byRoute.mapValues { [$0.attempted, $0.succeeded, $0.failed] }
        }
        #expect(outcomes(onProcesses) == outcomes(inSimulation))
        #expect(onProcesses.errors.byCode == inSimulation.errors.byCode)
        #expect(onProcesses.reversals.succeeded == inSimulation.reversals.succeeded
                && onProcesses.reversals.failed == inSimulation.reversals.failed)
        #expect(onProcesses.reconciliation?.passed == true && inSimulation.reconciliation?.passed == true)
        #expect(onProcesses.settlements.attempted > 500)
    }

    /// A short bounded run of the fuzzer, as CI's: a few seeds with kills and pauses, every
    /// invariant checked.
    @Test func aShortFuzzRunHoldsEveryInvariant() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-fuzz-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let result = try settlenet(["sim", "fuzz", "--seeds", "3", "--first-seed", "1000", "--out", base])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        #expect(result.output.contains("3 seeds") && result.output.contains("every invariant held"))
        #expect(result.error.components(separatedBy: ": ok").count == 4)
    }

    /// What the fuzzer calls a failure: each broken invariant of a report, named.
    @Test func theFuzzerNamesEachInvariantAReportBreaks() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-problems-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let result = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", base])
        #expect(result.status == 0)
        var report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/report.json")))
        #expect(SimulationFuzzer.problems(report).isEmpty)
        report.reconciliation?.passed = false
        report.reconciliation?.lost = 2
        report.settlements.unresolved = 1
        report.settlements.identityViolations = 3
        let problems = SimulationFuzzer.problems(report)
        #expect(problems.count == 3)
        #expect(problems.contains { $0.contains("reconciliation failed: lost 2") })
        #expect(problems.contains { $0.contains("1 settlements still in doubt") })
        #expect(problems.contains { $0.contains("3 amount identities broken") })
    }

    /// A node killed near the end of the load is started again before the ledgers are read
    /// (its restart was once left in the agenda, and the digest read a closed ledger and
    /// crashed: `sim fuzz`, seed 1099). One killed for good is read from what its ledger kept.
    @Test func nodesKilledAtTheEndAreStartedAgainOrReadFromTheirLedgers() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-late-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try """
            name: late-kills
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: 3
            duration: 2s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 100
                mix:
                  route: { local: 1 }
                max_in_flight: 1000
            faults:
              - { at: 1900ms, kill: "370100", restart_after: 30s }
              - { at: 1950ms, kill: "410300" }
            """.write(toFile: "\(base)/late.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["sim", "\(base)/late.yaml", "--out", "\(base)/out"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/out/report.json")))
        #expect(report.faults.count == 2)
        #expect(report.faults[0].endedS.map { $0 > 30 } == true)                // started again, 30 s later
        #expect(report.faults[1].endedS == nil && report.faults[1].note == "not started again")
        #expect(report.simulation?.ledgersDigest.isEmpty == false)
        #expect(report.reconciliation?.passed == true)
    }

    /// A simulation leaves nothing open behind it: the fuzzer runs hundreds in one process, and
    /// its nodes once kept their ledgers' files open until it ran out of descriptors.
    @Test func aSimulationClosesEveryFileItOpened() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-files-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        /// Descriptors of this process open on a file of this test's runs.
        func openFiles() throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"))?.hasPrefix(base) == true
            }.count
        }
        func simulate(_ run: Int) throws {
            var options = SimulationOptions(scenarioPath: "\(repositoryRoot)/Scenarios/crash-province.yaml", build: "test")
            options.outputDirectory = "\(base)/\(run)"
            options.topologyOverride = "\(repositoryRoot)/Topologies/minimal.yaml"
            _ = try SimulationRunner.run(options, log: { _ in }, progress: { _ in })
        }
        try simulate(0)
        try simulate(1)
        // The log files stay open (one handler a run); the 15 ledgers' files of each run do not.
        #expect(try openFiles() <= 2)
    }

    /// The model's parameters: a slower disk makes every settlement slower, and the report says
    /// on which model it ran.
    @Test func theModelCanBeSetAndTheReportSaysWhichItRanOn() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-model-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (run, model) in [("default", [String]()), ("slow-disk", ["--model", "commit_us=5000", "--model", "commit_jitter_us=0"])] {
            let result = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/\(run)"] + model)
            #expect(result.status == 0, "\(result.output)\(result.error)")
        }
        func report(_ run: String) throws -> RunReport {
            try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)/report.json")))
        }
        let (fast, slow) = (try report("default"), try report("slow-disk"))
        #expect(fast.simulation?.model["commit_us"] == SimulationModel().commitUs)
        #expect(slow.simulation?.model["commit_us"] == 5_000 && slow.simulation?.model["commit_jitter_us"] == 0)
        // A local settlement waits for one commit, at its county: 5 ms more than the default's.
        let local = try #require(slow.settlements.byRoute["local"]?.latencyMs.p50)
        #expect(local >= 5 && local > (fast.settlements.byRoute["local"]?.latencyMs.p50 ?? .infinity))
        let markdown = try String(contentsOfFile: "\(base)/slow-disk/report.md", encoding: .utf8)
        #expect(markdown.contains("Simulated") && markdown.contains("commit_us 5000"))
    }

    /// Each pair of tiers has its own link: slow links between the provinces and the national
    /// node (a wide-area network) slow only what crosses provinces, by the four hops it makes
    /// over them, and every other pair keeps `link_us`.
    @Test func eachPairOfTiersHasItsOwnLink() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-pairs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (run, model) in [("default", [String]()),
                             ("wan", ["--model", "province_national_link_us=5000", "--model", "province_national_link_jitter_us=0"])] {
            let result = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/\(run)"] + model)
            #expect(result.status == 0, "\(result.output)\(result.error)")
        }
        func report(_ run: String) throws -> RunReport {
            try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)/report.json")))
        }
        let (lan, wan) = (try report("default"), try report("wan"))
        #expect(wan.simulation?.model["province_national_link_us"] == 5_000)
        #expect(wan.simulation?.model["city_province_link_us"] == SimulationModel().linkUs)
        func p50(_ report: RunReport, _ route: String) throws -> Double { try #require(report.settlements.byRoute[route]?.latencyMs.p50) }
        // Up and down on each side: four hops of 5 ms instead of 80 µs.
        let (lanCross, wanCross) = (try p50(lan, "cross_province"), try p50(wan, "cross_province"))
        #expect(wanCross - lanCross > 18 && wanCross - lanCross < 22, "cross-province p50 \(lanCross) -> \(wanCross) ms")
        for route in ["local", "intra_city", "intra_province"] {
            let (before, after) = (try p50(lan, route), try p50(wan, route))
            #expect(abs(after - before) < 1, "\(route) p50 \(before) -> \(after) ms")
        }
    }

    /// Link faults and partitions, as on real processes: their decisions are drawn from the
    /// scenario's seed, traced, and counted in the report; every ledger still agrees.
    @Test func faultyLinksAndPartitionsAreSimulatedAndCounted() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-links-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for scenario in ["flaky-links", "partition"] {
            let result = try settlenet(["sim", "Scenarios/\(scenario).yaml", "--out", "\(base)/\(scenario)"])
            #expect(result.status == 0, "\(result.output)\(result.error)")
        }
        func report(_ run: String) throws -> RunReport {
            try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)/report.json")))
        }
        let flaky = try report("flaky-links"), partition = try report("partition")
        let delayed = try #require(flaky.faults.first?.effects)
        #expect(delayed.messages > 0 && delayed.delayed > 0 && delayed.dropped > 0)
        #expect(try #require(flaky.faults.last?.effects).corrupted > 0)
        for fault in partition.faults {
            let effects = try #require(fault.effects)
            #expect(effects.messages > 0 && effects.dropped == effects.messages)
        }
        #expect(flaky.reconciliation?.passed == true && partition.reconciliation?.passed == true)
        #expect(flaky.settlements.unresolved == 0 && partition.settlements.unresolved == 0)
    }

    /// Uploads with dirty data, simulated and on real processes: the same records accepted at
    /// each tier and the same detections by rule.
    @Test func uploadsSimulatedAreScreenedAsOnRealProcesses() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-uploads-\(UUID().uuidString)").path
        defer {
            _ = try? settlenet(["cluster", "down", "--data-dir", "\(base)/real/cluster", "--grace", "5"])
            try? FileManager.default.removeItem(atPath: base)
        }
        let real = try settlenet(["scenario", "run", "Scenarios/dirty-data.yaml", "--out", "\(base)/real"])
        #expect(real.status == 0, "\(real.output)\(real.error)")
        let simulated = try settlenet(["sim", "Scenarios/dirty-data.yaml", "--out", "\(base)/sim"])
        #expect(simulated.status == 0, "\(simulated.output)\(simulated.error)")
        func report(_ run: String) throws -> RunReport {
            try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/\(run)/report.json")))
        }
        let (onProcesses, inSimulation) = (try report("real"), try report("sim"))
        let (realUploads, simUploads) = (try #require(onProcesses.uploads), try #require(inSimulation.uploads))
        #expect(simUploads.recordsSent > 10_000 && simUploads.batchesFailed == 0)
        #expect(realUploads.acceptedProvincial == simUploads.acceptedProvincial)
        #expect(realUploads.acceptedNational == simUploads.acceptedNational)
        let (realDirty, simDirty) = (try #require(onProcesses.dirtyData), try #require(inSimulation.dirtyData))
        #expect(realDirty.byRule.mapValues(\.detected) == simDirty.byRule.mapValues(\.detected))
        #expect(simDirty.byRule.values.contains { $0.detected > 0 })
        #expect(inSimulation.reconciliation?.uploadsBalanced == true && inSimulation.reconciliation?.passed == true)
    }

    /// A machine's clock that jumps, forward under a relay and back under two counties, one of
    /// them killed after its jump and started again on the new time: a running node's timers run
    /// on the monotonic clock from its start (`WallClock`), so no jump fires them early or late,
    /// and every ledger agrees with nothing left in doubt. Real processes cannot have it done to
    /// one node: the scenario runner refuses it.
    @Test func clocksThatJumpStillLeaveEveryLedgerAgreeing() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-clock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try """
            name: clock-jumps
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: 11
            duration: 8s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 300
                mix:
                  route: { local: 0.1, intra_city: 0.2, intra_province: 0.3, cross_province: 0.4 }
                  reversal: 0.05
                max_in_flight: 5000
            faults:
              - { at: 2s, clock_jump: "370100", by: 30s }
              - { at: 4s, clock_jump: "410303", by: -20s }
              - { at: 5s, kill: "410303", restart_after: 1s }
              - { at: 6s, clock_jump: "000000", by: 9s }
            """.write(toFile: "\(base)/jumps.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["sim", "\(base)/jumps.yaml", "--out", "\(base)/out"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/out/report.json")))
        #expect(report.faults.map(\.kind) == ["clock_jump", "clock_jump", "kill", "clock_jump"] && report.faults.allSatisfy { $0.startedS != nil })
        #expect(report.reconciliation?.passed == true && report.settlements.unresolved == 0)
        let real = try settlenet(["scenario", "run", "\(base)/jumps.yaml", "--out", "\(base)/real"])
        #expect(real.status == 2 && real.error.contains("jumps.yaml:14") && real.error.contains("settlenet sim"), "\(real.error)")
    }

    /// Disks that fail for a while under a relay, the insured county, the origin county and the
    /// national node, under load: each commit there fails, what the node was to decide is refused
    /// (SN-E3004), what it was to pass on unrecorded goes on as unknown (SN-E3002), and the
    /// origin resolves it by correction once the disk works again. Every ledger agrees and
    /// nothing is left in doubt. (Before, answers went on unrecorded, and reconciliation counted
    /// 236 settlements lost at the relays.) Real processes refuse the fault.
    @Test func disksThatFailLeaveEveryLedgerAgreeing() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-disk-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try """
            name: disk-fail
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: 3
            duration: 10s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 300
                mix:
                  route: { local: 0.25, intra_city: 0.25, intra_province: 0.25, cross_province: 0.25 }
                  reversal: 0.05
                  inpatient: 0.1
                max_in_flight: 5000
            faults:
              - { at: 2s, disk_fail: "370100", for: 2s }
              - { at: 4s, disk_fail: "410102", for: 1500ms }
              - { at: 6s, disk_fail: "370211", for: 1s }
              - { at: 7s, disk_fail: "000000", for: 1s }
            """.write(toFile: "\(base)/disk.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["sim", "\(base)/disk.yaml", "--out", "\(base)/out"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/out/report.json")))
        #expect(report.faults.map(\.kind) == Array(repeating: "disk_fail", count: 4) && report.faults.allSatisfy { $0.endedS != nil })
        #expect(report.errors.byCode[ErrorCode.busy.rawValue] ?? 0 > 0, "decisions refused while the disk failed")
        #expect(report.errors.byCode[ErrorCode.timeout.rawValue] ?? 0 > 0, "outcomes passed on as unknown")
        #expect(report.settlements.reversed + report.settlements.resolvedSettled + report.settlements.resolvedRefused > 0)
        #expect(report.reconciliation?.passed == true && report.settlements.unresolved == 0)
        let real = try settlenet(["scenario", "run", "\(base)/disk.yaml", "--out", "\(base)/real"])
        #expect(real.status == 2 && real.error.contains("disk.yaml:15") && real.error.contains("settlenet sim"), "\(real.error)")
    }

    /// The ledgers a simulation kept, reconciled whole and a province at a time (as a simulated
    /// day's are), damaged first: the same verdict, the same settlements checked, the damage
    /// found either way.
    @Test func aReconciliationByProvinceGivesTheVerdictOfTheWhole() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-provinces-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let result = try settlenet(["sim", "\(repositoryRoot)/Scenarios/smoke.yaml", "--out", "\(base)/out", "--keep-ledgers", "\(base)/ledgers"])
        #expect(result.status == 0, "\(result.output)\(result.error)")
        let layout = DataLayout(root: "\(base)/ledgers")
        let damaged = try DatabaseQueue(path: layout.ledgerPath(DivisionCode("410102")!))
        try damaged.write { db in
            try db.execute(sql: "DELETE FROM settlements WHERE rowid = (SELECT min(rowid) FROM settlements WHERE state = 'settled')")
            try db.execute(sql: "UPDATE persons SET balance_fen = balance_fen - 7 WHERE psn_no = (SELECT min(psn_no) FROM persons)")
        }
        try damaged.close()
        let topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        let reconciler = Reconciler(topology: topology)
        let whole = reconciler.check(try ClusterSnapshot.read(topology: topology, dataDirectory: "\(base)/ledgers"))
        let byProvince = try reconciler.checkByProvince(dataDirectory: "\(base)/ledgers")
        #expect(byProvince == whole)
        #expect(whole.checked > 500 && !whole.lost.isEmpty && !whole.balancesWrong.isEmpty, "\(ReconciliationText.verdict(whole))")
    }

    /// What `sim fuzz` found at seed 5505, shrunk: a lossy link below county 370103 leaves
    /// settlements in doubt there, then the county's machine clock is stepped back 52 s. Its
    /// corrections were timed on its clock and went out 52 s late, after the hospitals had
    /// stopped asking: 18 settlements were counted in doubt at the end.
    @Test func aClockSteppedBackDoesNotHoldCorrectionsBack() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-5505-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try """
            name: fuzz-5505
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: 5505
            duration: 4000ms
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 324
                mix:
                  route: { local: 0.208, intra_city: 0.250, intra_province: 0.292, cross_province: 0.250 }
                  inpatient: 0.09
                  reversal: 0.10
                  unfiled_offsite: 0.04
                max_in_flight: 20000
            faults:
              - { at: 870ms, link: "370103-370100", delay: 191ms, jitter: 13ms, loss: 0.2, duplicate: 0.1, corrupt: 0.1, for: 736ms }
              - { at: 2570ms, clock_jump: "370103", by: -52s }
            """.write(toFile: "\(base)/seed-5505.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["sim", "\(base)/seed-5505.yaml", "--out", "\(base)/out"])
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/out/report.json")))
        // The link left settlements in doubt for the county to resolve: the case the fix is for.
        #expect((report.faults.first?.effects?.dropped ?? 0) > 0, "\(report.faults)")
        #expect(report.settlements.unresolved == 0 && report.reconciliation?.passed == true, "\(result.output)")
    }
}
