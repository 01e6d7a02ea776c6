import ArgumentParser
import Foundation
import Scenario

struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run load scenarios and report throughput, latency and errors.",
        subcommands: [Run.self, Compare.self]
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
                With --baseline run/smoke-before/report.json the earlier run is drawn dashed in every chart of \
                report.html, its headline figures compared in a table, and printed after the summary.
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
        @Option(help: "An earlier run's report.json, drawn dashed beside this run in report.html and compared figure by figure.")
        var baseline: String?

        func run() throws {
            let console = RunConsole()
            var options = ScenarioRunOptions(scenarioPath: file, topologyOverride: topology, seedOverride: seed,
                                             outputDirectory: out, attachDataDirectory: attach,
                                             executable: currentExecutable(), build: buildConfiguration)
            options.keys = keys
            do {
                options.baseline = try baseline.map(Baseline.load)
            } catch {
                throw console.failed(error)
            }
            let outcome: ScenarioRunner.Outcome
            do {
                outcome = try ScenarioRunner.run(options, log: console.log, progress: { p in
                    console.progress(String(format: "[%5.1fs/%.0fs] target %.0f/s  achieved %.0f/s  in flight %d  errors %d  dropped %d",
                                            p.elapsedS, p.durationS, p.targetRate, p.achievedRate, p.inFlight, p.errors, p.dropped))
                })
            } catch {
                throw console.failed(error)
            }
            try console.finish(outcome, junit: junit, baseline: options.baseline)
        }
    }
}

extension ScenarioCommand {
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two runs' report.json side by side, and fail on a regression beyond a limit.",
            discussion: """
                Prints every headline figure both reports have (throughput, latency percentiles, error, \
                drop and loss rates, upload throughput, dirty-data rates, reconciliation counts) with the \
                old value, the new one and the change, marking each change for the worse beyond \
                --max-regression as a REGRESSION. A figure that was 0 and got worse is always one.

                Exit codes: 0 no regression; 99 a regression; 2 a report cannot be read.

                Example: settlenet scenario compare run/base/report.json run/new/report.json --max-regression 5%
                """
        )

        @Argument(help: "The earlier run's report.json.") var old: String
        @Argument(help: "The later run's report.json.") var new: String
        @Option(help: "The largest change for the worse allowed, in percent (e.g. 10%).") var maxRegression: String = "10%"

        func run() throws {
            let text = maxRegression.hasSuffix("%") ? String(maxRegression.dropLast()) : maxRegression
            guard let percent = Double(text), percent >= 0, percent.isFinite else {
                throw ValidationError("--max-regression \(maxRegression): expected a percentage such as 10%")
            }
            func read(_ path: String) throws -> JSONValue {
                do {
                    return try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
                } catch {
                    FileHandle.standardError.write(Data("scenario compare: cannot read \(path) as a report: \(error.localizedDescription)\n".utf8))
                    throw ExitCode(2)
                }
            }
            let comparison = RunComparison(old: try read(old), new: try read(new), maxRegression: percent / 100)
            print(comparison.table(oldName: "old", newName: "new"))
            let regressions = comparison.regressions
            if regressions.isEmpty {
                print("no regression beyond \(maxRegression)")
            } else {
                print("\(regressions.count) regression(s) beyond \(maxRegression): \(regressions.map(\.figure.path).joined(separator: ", "))")
                throw ExitCode(99)
            }
        }
    }
}

#if DEBUG
let buildConfiguration = "debug"
#else
let buildConfiguration = "release"
#endif
