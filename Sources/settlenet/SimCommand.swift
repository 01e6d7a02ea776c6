import ArgumentParser
import Foundation
import NetworkTopology
import Scenario
import Simulation

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a scenario on a simulated network: every node in one process, on virtual time, replayed exactly from its seed.",
        discussion: """
            A command of its own rather than an option of `scenario run`: a simulation launches no cluster, \
            so it has none of the cluster's options (--attach, --keys, packing), and it grows its own \
            subcommands.
            """,
        subcommands: [Run.self, Fuzz.self],
        defaultSubcommand: Run.self
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulate the scenario's network and load, and write the scenario runner's reports.",
            discussion: """
                Every node of the topology runs with the same state machine, desks and SQLite ledger as a real \
                node; only the clock, the links, the disk and the scheduler are simulated (docs/SIMULATION.md:
                the model and its defaults; a scenario's simulation: section and --model set it). The hospitals, thresholds, reconciliation and reports are the \
                scenario runner's own; every figure is in virtual time, and report.json says it was simulated \
                and on which model.

                The same scenario and seed give a byte-identical report.json, but for the wall-clock fields it \
                lists (simulation.wall_clock_fields), and identical ledgers.

                Settlements and uploads (with dirty data and the governance loop); faults: kill, pause, link and \
                partition, as in scenario files, and clock_jump (with by:, negative for a jump back), which only \
                a simulation can do.

                Exit codes: 0 every threshold passed; 99 a threshold failed; 2 the scenario or topology file is \
                wrong (nothing simulated); 4 the simulation could not be carried out.

                Example: settlenet sim Scenarios/smoke.yaml --out run/sim-smoke
                """
        )

        @Argument(help: "The scenario file, e.g. Scenarios/smoke.yaml.") var file: String
        @Option(help: "Use this topology instead of the scenario's.") var topology: String?
        @Option(help: "Use this seed instead of the scenario's.") var seed: UInt64?
        @Option(help: "Directory for report.json, report.md and report.html (default run/reports/<name>-sim-<time>).") var out: String?
        @Option(name: .customLong("keep-ledgers"),
                help: "Keep the nodes' ledgers in this new directory, for `settlenet reconcile --data-dir` (default: removed).")
        var keepLedgers: String?
        @Option(help: "Also write each threshold and reconciliation check as a JUnit XML test case to this file, for CI.")
        var junit: String?
        @Option(help: "An earlier run's report.json (simulated or real), drawn dashed beside this run in report.html and compared figure by figure.")
        var baseline: String?
        @Option(name: .customLong("model"),
                help: "Set a parameter of the simulation model, in microseconds, over the scenario's simulation: section (repeatable), e.g. --model commit_us=2000.")
        var model: [String] = []

        func validate() throws {
            _ = try modelOverrides()
        }

        /// `--model KEY=MICROSECONDS`, each key one of the model's parameters.
        func modelOverrides() throws -> [String: Int64] {
            var overrides: [String: Int64] = [:]
            for setting in model {
                let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, ScenarioLoader.simulationKeys.contains(parts[0]), let value = Int64(parts[1]), value >= 0 else {
                    throw ValidationError("--model \(setting): expected KEY=MICROSECONDS, KEY one of \(ScenarioLoader.simulationKeys.sorted().joined(separator: ", "))")
                }
                overrides[parts[0]] = value
            }
            return overrides
        }

        func run() throws {
            try Self.hashDeterministically()
            let console = RunConsole()
            var options = SimulationOptions(scenarioPath: file, build: buildConfiguration)
            options.topologyOverride = topology
            options.seedOverride = seed
            options.outputDirectory = out
            options.keepLedgers = keepLedgers
            options.modelOverrides = try modelOverrides()
            do {
                options.baseline = try baseline.map(Baseline.load)
            } catch {
                throw console.failed(error)
            }
            let outcome: ScenarioRunner.Outcome
            do {
                outcome = try SimulationRunner.run(options, log: console.log, progress: { p in
                    let rate = p.wallS > 0 ? Double(p.events) / p.wallS : 0
                    let speed = p.wallS > 0 ? p.virtualS / p.wallS : 0
                    let left = speed > 0 ? max(0, p.durationS - p.virtualS) / speed : 0
                    console.progress(String(format: "[virtual %6.1fs/%.0fs] %.0f events/s  %.1fx real time  expected end in %.0f s",
                                            p.virtualS, p.durationS, rate, speed, left))
                })
            } catch {
                throw console.failed(error)
            }
            try console.finish(outcome, junit: junit, baseline: options.baseline)
        }

        /// A replay must walk every dictionary in the same order, and Swift seeds its hashing per
        /// process unless SWIFT_DETERMINISTIC_HASHING is set when the process starts: set, and
        /// this process started again in place.
        static func hashDeterministically() throws {
            guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
            setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
            let arguments = [currentExecutable()] + CommandLine.arguments.dropFirst()
            var pointers = arguments.map { strdup($0) }
            pointers.append(nil)
            execv(arguments[0], pointers)
            throw ValidationError("cannot start itself again with deterministic hashing: \(String(cString: strerror(errno)))")
        }
    }

    struct Fuzz: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simulate scenarios drawn from seeds, with random faults, and check every invariant.",
            discussion: """
                Each seed draws a scenario on the topology: 4-12 s of load at 50-400 settlements a second over \
                every route class, with reversals, and up to 6 faults at random times: kills (each node started \
                again after 0.1-2 s), pauses and clock jumps of random nodes, faulty links (delay, jitter, loss, \
                duplicates, corruption) and partitions between a random node and its parent. Each is simulated (as `settlenet sim`) and checked:
                every ledger reconciles (nothing lost, doubled, mismatched or unresolved; clearing balanced; \
                balances right), no settlement is left in doubt or unanswered, every amount identity holds.

                A failing seed is shrunk (each fault left out while it still fails), written to \
                --out/seed-N.yaml, and printed with the command that replays it: settlenet sim FILE.

                Exit codes: 0 every seed passed; 1 a seed failed; 2 the topology is wrong.

                Example: settlenet sim fuzz --seeds 50 --minutes 10
                """
        )

        @Option(help: "How many seeds to try.") var seeds: Int = 20
        @Option(name: .customLong("first-seed"), help: "The first seed; the others follow it.") var firstSeed: UInt64 = 1
        @Option(help: "The topology the scenarios run on.") var topology: String = "Topologies/minimal.yaml"
        @Option(help: "Stop drawing seeds after this many minutes.") var minutes: Double?
        @Option(help: "Where failing scenarios are written.") var out: String = "run/fuzz"

        func run() throws {
            try Run.hashDeterministically()
            var options = SimulationFuzzer.Options(seeds: seeds, build: buildConfiguration)
            options.firstSeed = firstSeed
            options.topology = topology
            options.minutes = minutes
            options.outputDirectory = out
            let summary: SimulationFuzzer.Summary
            do {
                summary = try SimulationFuzzer.run(options) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(error.code.rawValue)
            }
            print("\(summary.runs) seeds, \(summary.settlements) settlements, \(summary.kills) kills: \(summary.failures.isEmpty ? "every invariant held" : "\(summary.failures.count) failed")")
            for failure in summary.failures {
                print("seed \(failure.seed): \(failure.problems.joined(separator: "; "))\n  replay: settlenet sim \(failure.scenarioFile)")
            }
            if !summary.failures.isEmpty { throw ExitCode(1) }
        }
    }
}
