import Foundation
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

    @Test func theSameScenarioAndSeedGiveTheSameReportAndLedgers() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-replay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        var reports: [[String: Any]] = []
        for (run, seed) in [("a", "20221122"), ("b", "20221122"), ("other-seed", "7")] {
            let result = try settlenet(["sim", "Scenarios/smoke.yaml", "--seed", seed, "--out", "\(base)/\(run)"])
            #expect(result.status == 0, "\(result.error)")
            reports.append(try reportWithoutWallClock("\(base)/\(run)"))
        }
        let (first, second, otherSeed) = (reports[0], reports[1], reports[2])
        #expect(try canonical(first) == canonical(second))
        // It is the seed that decides: another one plans, settles and records otherwise.
        #expect(try canonical(first) != canonical(otherSeed))
        let simulation = try #require(first["simulation"] as? [String: Any])
        let otherSimulation = try #require(otherSeed["simulation"] as? [String: Any])
        #expect(simulation["ledgers_digest"] as? String != otherSimulation["ledgers_digest"] as? String)
        // It ran the load through every tier and the ledgers agree.
        let settlements = try #require(first["settlements"] as? [String: Any])
        #expect((settlements["succeeded"] as? Int ?? 0) > 500)
        let reconciliation = try #require(first["reconciliation"] as? [String: Any])
        #expect(reconciliation["passed"] as? Bool == true)
        let routes = try #require(settlements["by_route"] as? [String: Any])
        #expect(Set(routes.keys) == ["local", "intra_city", "intra_province", "cross_province"])
    }

    @Test func whatTheSimulationDoesNotCarryYetIsRefusedNamingTheField() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sim-refused-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let faults = try settlenet(["sim", "Scenarios/flaky-links.yaml", "--out", base])
        #expect(faults.status == 2)
        #expect(faults.error.contains("Scenarios/flaky-links.yaml:") && faults.error.contains("field faults"))
        let uploads = try settlenet(["sim", "Scenarios/dirty-data.yaml", "--out", base])
        #expect(uploads.status == 2)
        #expect(uploads.error.contains("field load.uploads"))
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
}
