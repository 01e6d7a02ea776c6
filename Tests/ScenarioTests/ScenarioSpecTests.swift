import Foundation
import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite struct ScenarioSpecTests {
    /// The example of issue 3, exactly as written there.
    static let issueExample = """
        name: cross-province-peak
        topology: Topologies/minimal.yaml
        seed: 20221122
        duration: 60s
        load:
          settlements:
            executor: ramping-arrival-rate      # or constant-arrival-rate with `rate:`
            stages:
              - { duration: 10s, target: 200 }  # settlements per second
              - { duration: 40s, target: 1000 }
              - { duration: 10s, target: 0 }
            mix:
              route: { local: 0.5, intra_city: 0.2, intra_province: 0.2, cross_province: 0.1 }
              inpatient: 0.2
              reversal: 0.01
              unfiled_offsite: 0.02             # people not filed for off-site care: definite refusals
            max_in_flight: 5000
        thresholds:
          settlements.latency_ms.p99: "< 200"
          settlements.error_rate: "< 0.05"
        """

    @Test func theIssueExampleParsesAsWritten() throws {
        let spec = try ScenarioLoader.parse(Self.issueExample, file: "example.yaml")
        #expect(spec.name == "cross-province-peak")
        #expect(spec.seed == 20_221_122)
        #expect(spec.durationMs == 60_000)
        let load = try #require(spec.settlements)
        #expect(load.executor == .rampingArrivalRate(startRate: 0, stages: [
            .init(durationMs: 10_000, target: 200), .init(durationMs: 40_000, target: 1_000), .init(durationMs: 10_000, target: 0),
        ]))
        #expect(load.mix.routes == [.local: 0.5, .intraCity: 0.2, .intraProvince: 0.2, .crossProvince: 0.1])
        #expect(load.mix.unfiledOffsite == 0.02)
        #expect(load.maxInFlight == 5_000)
        #expect(spec.thresholds.map(\.path) == ["settlements.latency_ms.p99", "settlements.error_rate"])
        #expect(spec.thresholds.first?.comparison == .less && spec.thresholds.first?.limit == 200)
    }

    @Test func everyShippedScenarioIsValidAndFindsItsTopology() throws {
        let folder = "\(repositoryRoot)/Scenarios"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
        #expect(Set(files).isSuperset(of: ["smoke.yaml", "steady.yaml", "peak.yaml", "cross-province.yaml"]))
        for file in files {
            let spec = try ScenarioLoader.load(path: "\(folder)/\(file)")
            #expect(spec.resolvedTopologyPath(workingDirectory: repositoryRoot) != nil, "\(file): topology not found")
        }
    }

    func problems(_ text: String) -> [String] {
        do {
            _ = try ScenarioLoader.parse(text, file: "s.yaml")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func unknownKeysAndBadValuesNameTheKeyAndLine() {
        let text = Self.issueExample
            .replacingOccurrences(of: "max_in_flight: 5000", with: "max_inflight: 5000")
            .replacingOccurrences(of: "inpatient: 0.2", with: "inpatient: 1.5")
            .replacingOccurrences(of: "{ duration: 40s, target: 1000 }", with: "{ duration: 40 seconds, target: 1000 }")
        let found = problems(text)
        #expect(found.contains { $0.hasPrefix("s.yaml:17: field load.settlements.max_inflight: unknown key") }, "\(found)")
        #expect(found.contains("s.yaml:14: field load.settlements.mix.inpatient: \"1.5\" is not a number from 0.0 to 1.0"), "\(found)")
        #expect(found.contains { $0.hasPrefix("s.yaml:10: field load.settlements.stages[1].duration: \"40 seconds\"") }, "\(found)")
    }

    @Test func badExecutorsThresholdsAndMissingPartsAreReported() {
        #expect(problems(Self.issueExample.replacingOccurrences(of: "ramping-arrival-rate", with: "closed-model"))
            .contains { $0.contains("load.settlements.executor: \"closed-model\" is not constant-arrival-rate or ramping-arrival-rate") })
        #expect(problems(Self.issueExample.replacingOccurrences(of: "\"< 200\"", with: "\"about 200\""))
            .contains { $0.contains("thresholds.settlements.latency_ms.p99: expected a condition like") })
        #expect(problems(Self.issueExample.replacingOccurrences(of: "settlements.error_rate:", with: "speed.error_rate:"))
            .contains { $0.contains("thresholds.speed.error_rate: not a field of report.json") })
        #expect(problems("name: x\ntopology: t.yaml\nduration: 5s\n").contains { $0.contains("field load: required but missing") })
        #expect(problems("name: x\ntopology: t.yaml\nload:\n  settlements:\n    executor: constant-arrival-rate\n    rate: 10\n")
            .contains { $0.contains("field duration: required for a constant-arrival-rate load") })
    }

    @Test func theGovernanceLoopIsOnWithAFixProbabilityAndItsKeysAreChecked() throws {
        let shipped = try ScenarioLoader.load(path: "\(repositoryRoot)/Scenarios/governance.yaml")
        let loop = try #require(shipped.uploads?.governance)
        #expect(loop.fixProbability == 0.06 && loop.residualShare == 0.4)
        #expect(try ScenarioLoader.load(path: "\(repositoryRoot)/Scenarios/dirty-data.yaml").uploads?.governance == nil)
        let base = """
            name: g
            topology: Topologies/minimal.yaml
            duration: 5s
            load:
              uploads:
                executor: constant-arrival-rate
                rate: 5
                batch_size: 10
                dirty:
                  rate: 0.25
                  KEYS
            """
        #expect(problems(base.replacingOccurrences(of: "KEYS", with: "fix_probability: 1.5"))
            .contains { $0.contains("load.uploads.dirty.fix_probability: \"1.5\" is not a number from 0.0 to 1.0") })
        #expect(problems(base.replacingOccurrences(of: "KEYS", with: "residual_share: 0.5"))
            .contains { $0.hasPrefix("s.yaml:11: field load.uploads.dirty.residual_share: only meaningful with dirty.fix_probability") })
        #expect(problems(base.replacingOccurrences(of: "KEYS", with: "fix_probabilty: 0.5"))
            .contains { $0.contains("load.uploads.dirty.fix_probabilty: unknown key") })
        let defaults = try ScenarioLoader.parse(base.replacingOccurrences(of: "KEYS", with: "fix_probability: 0.2"), file: "s.yaml")
        #expect(defaults.uploads?.governance == UploadLoad.Governance(fixProbability: 0.2, residualShare: 0))
    }

    @Test func linkFaultsAndPartitionsParseAsTheIssueWritesThem() throws {
        let text = """
            name: faults
            topology: Topologies/minimal.yaml
            seed: 9
            duration: 60s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 10
                mix:
                  route: { local: 1 }
            faults:
              - { at: 10s, kill: "370000", restart_after: 3s }
              - { at: 20s, pause: "410102", for: 4s }
              - { at: 25s, link: "370200-370000", delay: 50ms, jitter: 20ms, loss: 0.05, duplicate: 0.01, for: 10s }
              - { at: 40s, partition: ["410000", "000000"], for: 5s }
              - { at: 50s, partition: ["370211", "370200"], direction: one-way, for: 3s }
              - { at: 55s, link: "410300-410000", corrupt: 0.01, for: 5s }
              - { at: 58s, link: "410000-410300", delay: 1s, direction: one-way, for: 2s }
            """
        let spec = try ScenarioLoader.parse(text, file: "f.yaml")
        #expect(spec.faults.count == 7)
        #expect(spec.faults[6].action == .link(.init(a: "410000", b: "410300", forMs: 2_000, delayMs: 1_000, oneWay: true)))
        #expect(spec.faults[2].action == .link(.init(a: "370200", b: "370000", forMs: 10_000, delayMs: 50, jitterMs: 20, loss: 0.05,
                                                     duplicate: 0.01, corrupt: 0)))
        #expect(spec.faults[3].action == .partition(from: "410000", to: "000000", oneWay: false, forMs: 5_000))
        #expect(spec.faults[4].action == .partition(from: "370211", to: "370200", oneWay: true, forMs: 3_000))
        #expect(spec.faults[5].node == "410300-410000")
        let broken = text.replacingOccurrences(of: "direction: one-way", with: "direction: sideways")
            .replacingOccurrences(of: "corrupt: 0.01", with: "corrupt: 2")
            .replacingOccurrences(of: "link: \"370200-370000\"", with: "link: \"370200\"")
        let found = problems(broken)
        #expect(found.contains { $0.contains("direction: \"sideways\" is not both or one-way") }, "\(found)")
        #expect(found.contains { $0.contains("corrupt: \"2\" is not a number from 0.0 to 1.0") }, "\(found)")
        #expect(found.contains { $0.contains("faults[2].link: expected two different node ids") }, "\(found)")
        #expect(problems(text.replacingOccurrences(of: "corrupt: 0.01, ", with: ""))
            .contains { $0.contains("a link fault needs at least one of delay, loss, duplicate, corrupt") })
    }

    /// `crash:` a node at a point of its commit cycle, at a given pass or one the seed draws.
    @Test func crashFaultsParseWithTheirPointAndPass() throws {
        let text = """
            name: crashes
            topology: Topologies/minimal.yaml
            seed: 9
            duration: 10s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 10
                mix:
                  route: { local: 1 }
            faults:
              - { at: 1s, crash: "410102", point: in_commit, after: 3, restart_after: 200ms }
              - { at: 2s, crash: "000000", point: after_send }
            """
        let spec = try ScenarioLoader.parse(text, file: "c.yaml")
        #expect(spec.faults.map(\.action) == [.crash(node: "410102", point: .inCommit, after: 3, restartAfterMs: 200),
                                               .crash(node: "000000", point: .afterSend, after: nil, restartAfterMs: nil)])
        #expect(spec.faults.map(\.kind) == ["crash", "crash"])
        let found = problems(text.replacingOccurrences(of: "point: in_commit, after: 3", with: "point: mid_commit, after: 0"))
        #expect(found.contains { $0.contains("s.yaml:12") && $0.contains("point: \"mid_commit\" is not a crash point: before_commit, in_commit, after_sync, after_send") }, "\(found)")
        #expect(found.contains { $0.contains("after:") }, "\(found)")
        #expect(problems(text.replacingOccurrences(of: ", point: after_send", with: "")).contains { $0.contains("point") })
    }

    @Test func theSameSeedGivesTheSameLinkFaultEntries() throws {
        let flaky = FaultSpec.Action.link(.init(a: "370200", b: "370000", forMs: 1_000, loss: 0.1))
        let first = FaultInjector.linkEntries(flaky, index: 2, seed: 9, nowMs: 0)
        #expect(first == FaultInjector.linkEntries(flaky, index: 2, seed: 9, nowMs: 0))
        #expect(first.map(\.from) == ["370200", "370000"] && first[0].seed != first[1].seed)
        #expect(first.map(\.seed) != FaultInjector.linkEntries(flaky, index: 2, seed: 10, nowMs: 0).map(\.seed))
        let oneWay = FaultInjector.linkEntries(.partition(from: "370211", to: "370200", oneWay: true, forMs: 500), index: 0, seed: 9, nowMs: 7)
        #expect(oneWay.count == 1 && oneWay[0].loss == 1 && oneWay[0].from == "370211" && oneWay[0].endMs == 507)
        // A one-way link fault acts only on what its first node sends to the second.
        let slowAnswers = FaultInjector.linkEntries(.link(.init(a: "410100", b: "410102", forMs: 900, delayMs: 1_000, oneWay: true)),
                                                    index: 0, seed: 9, nowMs: 0)
        #expect(slowAnswers.map(\.from) == ["410100"] && slowAnswers.map(\.to) == ["410102"] && slowAnswers[0].delayMs == 1_000)
    }

    @Test func thresholdConditionsParseEveryOperator() {
        #expect(ThresholdSpec(path: "a", condition: "<= 0.05")?.comparison == .lessOrEqual)
        #expect(ThresholdSpec(path: "a", condition: ">=10")?.limit == 10)
        #expect(ThresholdSpec(path: "a", condition: "== 0")?.comparison == .equal)
        #expect(ThresholdSpec(path: "a", condition: "> 1e3")?.limit == 1_000)
        #expect(ThresholdSpec(path: "a", condition: "< x") == nil)
        #expect(ThresholdSpec(path: "a", condition: "≈ 3") == nil)
    }

    @Test func durationsParse() {
        #expect(ScenarioLoader.parseDuration("60s") == 60_000)
        #expect(ScenarioLoader.parseDuration("500ms") == 500)
        #expect(ScenarioLoader.parseDuration("1m30s") == 90_000)
        #expect(ScenarioLoader.parseDuration("1h") == 3_600_000)
        #expect(ScenarioLoader.parseDuration("10") == nil)
        #expect(ScenarioLoader.parseDuration("10 s") == nil)
        // Past Int64's milliseconds: no duration, not a trap (found by Scripts/fuzz.sh scenario,
        // Fuzz/corpus/scenario/duration-overflow.yaml).
        #expect(ScenarioLoader.parseDuration("0000000000000000005367210658404470325s") == nil)
        #expect(ScenarioLoader.parseDuration("2562047788015216h") == nil)
        #expect(ScenarioLoader.parseDuration("9223372036854775807ms1ms") == nil)
        #expect(ScenarioLoader.parseDuration("9223372036854775807ms") == Int64.max)
        // The input as the fuzzer found it (not valid UTF-8 throughout: read as the loader reads bytes).
        let data = FileManager.default.contents(atPath: "\(repositoryRootForScenarioTests)/Fuzz/corpus/scenario/duration-overflow.yaml")
        #expect(data != nil)
        let found = problems(String(decoding: data ?? Data(), as: UTF8.self))
        #expect(found.contains { $0.contains("duration") }, "the file's huge duration is a problem that names the field: \(found)")
    }
}

private let repositoryRootForScenarioTests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite struct ArrivalScheduleTests {
    @Test func aConstantRateGivesExactlyRateTimesDurationEvenlySpaced() {
        let schedule = ArrivalSchedule(executor: .constantArrivalRate(ratePerS: 200), durationMs: 3_000)
        let times = Array(schedule)
        #expect(times.count == 600)
        #expect(schedule.expectedArrivals == 600)
        #expect(times.first == 2_500)                 // the first half-interval in
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 == 5_000 })
        #expect(times.allSatisfy { $0 >= 0 && $0 < 3_000_000 })
    }

    @Test func aRampFollowsTheIntegralOfTheRate() {
        // 0 -> 100/s over 10 s: 500 arrivals, 125 of them in the first half (a quarter of the area).
        let schedule = ArrivalSchedule(executor: .rampingArrivalRate(startRate: 0, stages: [.init(durationMs: 10_000, target: 100)]),
                                       durationMs: 10_000)
        let times = Array(schedule)
        #expect(times.count == 500)
        #expect(times.filter { $0 < 5_000_000 }.count == 125)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
        // The rate per second rises: each second holds more arrivals than the one before.
        let perSecond = (0..<10).map { second in times.filter { $0 / 1_000_000 == Int64(second) }.count }
        #expect(zip(perSecond, perSecond.dropFirst()).allSatisfy { $0 < $1 }, "\(perSecond)")
        #expect(schedule.rate(atUs: 5_000_000) == 50)
    }

    @Test func theIssueExampleScheduleHoldsItsArea() throws {
        let spec = try ScenarioLoader.parse(ScenarioSpecTests.issueExample, file: "example.yaml")
        let schedule = ArrivalSchedule(executor: spec.settlements!.executor, durationMs: spec.durationMs)
        // 10 s ramp to 200 (1,000) + 40 s ramp 200 -> 1000 (24,000) + 10 s down to 0 (5,000).
        #expect(schedule.expectedArrivals == 30_000)
        #expect(Array(schedule).count == 30_000)
    }

    @Test func aLoadCutShortByDurationStopsThere() {
        let schedule = ArrivalSchedule(executor: .rampingArrivalRate(startRate: 100, stages: [.init(durationMs: 10_000, target: 100)]),
                                       durationMs: 2_000)
        #expect(Array(schedule).count == 200)
    }

    @Test func theSameSeedPlansTheSameRequestsAndAnotherSeedDoesNot() throws {
        let topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        let spec = try ScenarioLoader.parse(ScenarioSpecTests.issueExample, file: "example.yaml")
        func plans(_ seed: UInt64) throws -> [PlannedSettlement] {
            var planner = try LoadPlanner(topology: topology, load: spec.settlements!, seed: seed)
            return (0..<2_000).map { _ in planner.next() }
        }
        let first = try plans(7), again = try plans(7), other = try plans(8)
        #expect(first == again)
        #expect(first != other)
        // The mix is honoured: about half local, refusals only off-site.
        let local = first.filter { $0.route == .local }.count
        #expect(local > 850 && local < 1_150, "\(local) local of 2000")
        #expect(first.filter(\.expectRefusal).allSatisfy { $0.route != .local })
        let routing = topology.routingTable
        #expect(first.allSatisfy { routing.routeClass(treatment: $0.origin, insured: $0.insured) == $0.route })
        #expect(first.allSatisfy { $0.bill.problem == nil && $0.psnNo.hasPrefix($0.insured.value) })
    }
}

@Suite struct ThresholdTests {
    let report: JSONValue = .object([
        "settlements": .object([
            "error_rate": .number(0.02),
            "latency_ms": .object(["p99": .number(180)]),
            "by_route": .object(["local": .object(["latency_ms": .object(["p50": .number(3)])])]),
        ]),
        "errors": .object(["by_code": .object(["SN-E2002": .number(4)])]),
        "passed": .bool(true),
    ])

    @Test func thresholdsReadTheReportByDottedPath() {
        let specs = [
            ThresholdSpec(path: "settlements.latency_ms.p99", condition: "< 200")!,
            ThresholdSpec(path: "settlements.error_rate", condition: "<= 0.01")!,
            ThresholdSpec(path: "settlements.by_route.local.latency_ms.p50", condition: "== 3")!,
            ThresholdSpec(path: "errors.by_code.SN-E2002", condition: ">= 4")!,
            ThresholdSpec(path: "errors.by_code.SN-E3002", condition: "== 0")!,
            ThresholdSpec(path: "settlements.nothing_here", condition: "< 1")!,
            ThresholdSpec(path: "passed", condition: "== 1")!,
        ]
        let results = Thresholds.evaluate(specs, against: report)
        #expect(results.map(\.passed) == [true, false, true, true, true, false, true])
        #expect(results[0].value == 180)
        #expect(results[4].value == 0)      // no such error happened: its count is 0
        #expect(results[5].value == nil)    // a path that names nothing fails, never passes by default
        #expect(results[6].value == 1)      // a boolean reads as 1 or 0
    }

    @Test func booleansAndNumbersStayApartWhenDecoded() throws {
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"a": true, "b": 1, "c": 0.5}"#.utf8))
        #expect(decoded == .object(["a": .bool(true), "b": .number(1), "c": .number(0.5)]))
    }
}

/// `simulation:`: the simulated world's parameters a scenario sets for `settlenet sim`.
@Suite struct SimulationSectionTests {
    static let base = """
        name: m
        topology: Topologies/minimal.yaml
        duration: 1s
        load:
          settlements:
            executor: constant-arrival-rate
            rate: 10
            mix:
              route: { local: 1 }
            max_in_flight: 10

        """

    @Test func theParametersItSetsAreRead() throws {
        let spec = try ScenarioLoader.parse(Self.base + "simulation:\n  commit_us: 900\n  link_jitter_us: 0\n", file: "m.yaml")
        #expect(spec.simulationModel == ["commit_us": 900, "link_jitter_us": 0])
        #expect(try ScenarioLoader.parse(Self.base, file: "m.yaml").simulationModel.isEmpty)
    }

    @Test func anUnknownParameterOrABadValueIsAnErrorNamingTheField() {
        for (text, field) in [("simulation:\n  comit_us: 3\n", "simulation.comit_us"), ("simulation:\n  commit_us: -1\n", "simulation.commit_us"),
                              ("simulation:\n  link_us: fast\n", "simulation.link_us")] {
            #expect(throws: FileProblems.self) { try ScenarioLoader.parse(Self.base + text, file: "m.yaml") }
            do {
                _ = try ScenarioLoader.parse(Self.base + text, file: "m.yaml")
            } catch {
                #expect("\(error)".contains("m.yaml:") && "\(error)".contains(field), "\(error)")
            }
        }
    }
}
