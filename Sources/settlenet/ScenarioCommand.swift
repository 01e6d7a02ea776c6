import ArgumentParser
import Foundation
import Scenario

struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run load scenarios and report throughput, latency and errors.",
        subcommands: [Run.self]
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Launch the scenario's cluster (or attach to one), drive its load, write the reports, shut down.",
            discussion: """
                Arrivals follow the open model: their send times are fixed by the rate and the seed, latency \
                counts from the intended send time, and arrivals beyond max_in_flight are counted as dropped. \
                Writes report.json, report.md and report.html into --out (default run/reports/<name>-<time>). \
                A live progress line goes to standard error; the summary table to standard output.

                Exit codes: 0 every threshold passed; 99 a threshold failed; 2 the scenario or topology file is \
                wrong (nothing started); 3 the cluster could not be launched or attached; 4 the run could not be \
                carried out (socket or file error).

                Example: settlenet scenario run Scenarios/smoke.yaml --out run/smoke
                """
        )

        @Argument(help: "The scenario file, e.g. Scenarios/smoke.yaml.") var file: String
        @Option(help: "Use this topology instead of the scenario's.") var topology: String?
        @Option(help: "Use this seed instead of the scenario's.") var seed: UInt64?
        @Option(help: "Directory for report.json, report.md and report.html.") var out: String?
        @Option(help: "Drive the cluster already running in this data directory instead of launching one.") var attach: String?
        @Option(help: "Also write each threshold and reconciliation check as a JUnit XML test case to this file, for CI.")
        var junit: String?
        @Option(help: "Key directory of a secured topology (default: the one it names, else the launched cluster's own, made on start).") var keys: String?

        func run() throws {
            let console = RunConsole()
            var options = ScenarioRunOptions(scenarioPath: file, topologyOverride: topology, seedOverride: seed,
                                             outputDirectory: out, attachDataDirectory: attach,
                                             executable: currentExecutable(), build: buildConfiguration)
            options.keys = keys
            let outcome: ScenarioRunner.Outcome
            do {
                outcome = try ScenarioRunner.run(options, log: console.log, progress: { p in
                    console.progress(String(format: "[%5.1fs/%.0fs] target %.0f/s  achieved %.0f/s  in flight %d  errors %d  dropped %d",
                                            p.elapsedS, p.durationS, p.targetRate, p.achievedRate, p.inFlight, p.errors, p.dropped))
                })
            } catch {
                throw console.failed(error)
            }
            try console.finish(outcome, junit: junit)
        }
    }
}

#if DEBUG
let buildConfiguration = "debug"
#else
let buildConfiguration = "release"
#endif
