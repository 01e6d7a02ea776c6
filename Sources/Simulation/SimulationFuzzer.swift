import Foundation
import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel

/// `settlenet sim fuzz`: scenarios drawn at random from seeds (a load, and kills, pauses, link
/// faults and partitions at random times on random nodes and links), each simulated and checked: every ledger reconciles (nothing
/// lost, doubled, mismatched or unresolved, clearing balanced, balances right), nothing is left
/// in doubt, every amount identity holds. A failing seed is written as a scenario file, shrunk
/// where it still fails without a fault or with a shorter load, and printed with the one
/// command that replays it.
public enum SimulationFuzzer {
    public struct Options: Sendable {
        public var seeds: Int
        public var firstSeed: UInt64 = 1
        public var topology: String = "Topologies/minimal.yaml"
        /// Stop drawing new seeds after this long (wall clock).
        public var minutes: Double?
        /// Where failing scenarios are written.
        public var outputDirectory: String = "run/fuzz"
        public var build: String

        public init(seeds: Int, build: String) {
            self.seeds = seeds
            self.build = build
        }
    }

    /// What one seed's run broke, or nil.
    public struct Failure: Sendable {
        public var seed: UInt64
        public var scenarioFile: String
        public var problems: [String]
    }

    public struct Summary: Sendable {
        public var runs: Int
        public var settlements: Int
        public var kills: Int
        public var failures: [Failure]
    }

    /// The scenario a seed draws: 4–12 s of load at 50–400 settlements a second over every route
    /// class, and 0–6 faults: kills, pauses, clock jumps, faulty links (delay, jitter, loss,
    /// duplicates, corruption) and partitions.
    public static func scenario(seed: UInt64, topology: Topology, topologyPath: String, keepFaults: Set<Int>? = nil) -> String {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 0xF022)
        func uniform(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        let duration = Int64(uniform(4...12)) * 1_000
        let rate = uniform(50...400)
        var weights = (0..<4).map { _ in uniform(1...10) }
        let total = Double(weights.reduce(0, +))
        let shares = weights.map { String(format: "%.3f", Double($0) / total) }
        let nodes = topology.nodes.map(\.id.value)
        let links = topology.nodes.compactMap { node in node.parent.map { (node.id.value, $0.value) } }
        var faults: [String] = []
        for place in 0..<uniform(0...6) {
            let at = uniform(500...Int(max(600, duration - 500)))
            let node = nodes[uniform(0...nodes.count - 1)]
            let (child, parent) = links[uniform(0...links.count - 1)]
            let fault = switch random.next() % 6 {
            case 0: "  - { at: \(at)ms, pause: \"\(node)\", for: \(uniform(100...3_000))ms }"
            case 1: "  - { at: \(at)ms, link: \"\(child)-\(parent)\", delay: \(uniform(0...200))ms, jitter: \(uniform(0...50))ms, "
                    + "loss: \(Double(uniform(0...20)) / 100), duplicate: \(Double(uniform(0...10)) / 100), "
                    + "corrupt: \(Double(uniform(0...10)) / 100), for: \(uniform(200...4_000))ms }"
            case 2: "  - { at: \(at)ms, partition: [\"\(child)\", \"\(parent)\"]\(random.next() % 2 == 0 ? ", direction: one-way" : ""), for: \(uniform(200...4_000))ms }"
            case 3: "  - { at: \(at)ms, clock_jump: \"\(node)\", by: \(random.next() % 2 == 0 ? "-" : "")\(uniform(1...60))s }"
            default: "  - { at: \(at)ms, kill: \"\(node)\", restart_after: \(uniform(100...2_000))ms }"
            }
            if keepFaults?.contains(place) ?? true { faults.append(fault) }
        }
        // A failing disk, drawn after the rest so that a seed's other faults stay what they were.
        if random.next() % 3 == 0 {
            let place = 6   // after the six others at most
            let at = uniform(500...Int(max(600, duration - 500)))
            let fault = "  - { at: \(at)ms, disk_fail: \"\(nodes[uniform(0...nodes.count - 1)])\", for: \(uniform(100...2_000))ms }"
            if keepFaults?.contains(place) ?? true { faults.append(fault) }
        }
        return """
            # Drawn by `settlenet sim fuzz` from seed \(seed).
            name: fuzz-\(seed)
            topology: \(topologyPath)
            seed: \(seed)
            duration: \(duration)ms
            load:
              settlements:
                executor: constant-arrival-rate
                rate: \(rate)
                mix:
                  route: { local: \(shares[0]), intra_city: \(shares[1]), intra_province: \(shares[2]), cross_province: \(shares[3]) }
                  inpatient: \(String(format: "%.2f", Double(uniform(0...40)) / 100))
                  reversal: \(String(format: "%.2f", Double(uniform(0...10)) / 100))
                  unfiled_offsite: \(String(format: "%.2f", Double(uniform(0...5)) / 100))
                max_in_flight: 20000
            \(faults.isEmpty ? "" : "faults:\n" + faults.joined(separator: "\n"))

            """
    }

    /// What a report breaks of the invariants.
    public static func problems(_ report: RunReport) -> [String] {
        var problems: [String] = []
        if let reconciliation = report.reconciliation {
            if !reconciliation.passed {
                problems.append("reconciliation failed: lost \(reconciliation.lost), duplicated \(reconciliation.duplicated), mismatched \(reconciliation.mismatched), unresolved \(reconciliation.unresolved), balances wrong \(reconciliation.balancesWrong), clearing balanced \(reconciliation.clearingBalanced)")
            }
        } else {
            problems.append("no reconciliation")
        }
        if report.settlements.unresolved > 0 { problems.append("\(report.settlements.unresolved) settlements still in doubt at the end") }
        if report.settlements.unanswered > 0 { problems.append("\(report.settlements.unanswered) settlements never answered") }
        if report.settlements.identityViolations > 0 { problems.append("\(report.settlements.identityViolations) amount identities broken") }
        return problems
    }

    public static func run(_ options: Options, log: @escaping (String) -> Void) throws(ScenarioError) -> Summary {
        let topology: Topology
        do { topology = try TopologyLoader.load(path: options.topology) } catch {
            throw ScenarioError(code: .invalidScenario, message: "topology problems:\n\(error)")
        }
        let topologyPath = URL(fileURLWithPath: options.topology).standardizedFileURL.path
        let work = "\(options.outputDirectory)/.work-\(getpid())"
        do { try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true) } catch {
            throw ScenarioError(code: .runFailed, message: "cannot create \(work): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: work) }
        let started = Date()
        var summary = Summary(runs: 0, settlements: 0, kills: 0, failures: [])

        /// Simulates one drawn scenario; its report, or the error that stopped it.
        func simulate(_ text: String, seed: UInt64, name: String) -> (RunReport?, String) {
            let file = "\(work)/\(name).yaml"
            do { try text.write(toFile: file, atomically: true, encoding: .utf8) } catch { return (nil, "cannot write \(file): \(error)") }
            var simulation = SimulationOptions(scenarioPath: file, build: options.build)
            simulation.outputDirectory = "\(work)/\(name)"
            defer { try? FileManager.default.removeItem(atPath: "\(work)/\(name)") }
            do {
                return (try SimulationRunner.run(simulation, log: { _ in }, progress: { _ in }).report, "")
            } catch {
                return (nil, error.message)
            }
        }
        func failing(_ text: String, seed: UInt64, name: String) -> [String]? {
            let (report, error) = simulate(text, seed: seed, name: name)
            guard let report else { return ["the simulation stopped: \(error)"] }
            let found = problems(report)
            return found.isEmpty ? nil : found
        }

        for offset in 0..<options.seeds {
            if let minutes = options.minutes, Date().timeIntervalSince(started) >= minutes * 60 {
                log("stopping after \(String(format: "%.1f", minutes)) minutes")
                break
            }
            let seed = options.firstSeed &+ UInt64(offset)
            let text = scenario(seed: seed, topology: topology, topologyPath: topologyPath)
            let (report, error) = simulate(text, seed: seed, name: "seed-\(seed)")
            summary.runs += 1
            let found = report.map(problems) ?? ["the simulation stopped: \(error)"]
            if let report {
                summary.settlements += report.settlements.attempted
                summary.kills += report.faults.filter { $0.kind == "kill" }.count
            }
            log("seed \(seed): \(report.map { "\($0.settlements.attempted) settlements, \($0.faults.count) faults" } ?? "stopped"): \(found.isEmpty ? "ok" : found.joined(separator: "; "))")
            guard !found.isEmpty else { continue }

            // Shrink: each fault left out in turn, kept out while the scenario still fails.
            var kept = Set(0..<7)
            var shrunk = text
            for place in 0..<7 where kept.contains(place) {
                let fewer = kept.subtracting([place])
                let candidate = scenario(seed: seed, topology: topology, topologyPath: topologyPath, keepFaults: fewer)
                if candidate != shrunk, failing(candidate, seed: seed, name: "shrink-\(seed)") != nil {
                    kept = fewer
                    shrunk = candidate
                }
            }
            let file = "\(options.outputDirectory)/seed-\(seed).yaml"
            do { try shrunk.write(toFile: file, atomically: true, encoding: .utf8) } catch {
                log("cannot write \(file): \(error)")
            }
            summary.failures.append(Failure(seed: seed, scenarioFile: file, problems: found))
            log("seed \(seed) FAILED: \(found.joined(separator: "; "))\n  replay: settlenet sim \(file)")
        }
        return summary
    }
}
