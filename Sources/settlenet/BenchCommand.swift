import ArgumentParser
import Bench
import ClusterControl
import Foundation
import SettlementModel

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the network against the transport's own limit (Scripts/bench.sh runs it on a release build).",
        subcommands: [Run.self, RelayProcess.self, EchoProcess.self],
        defaultSubcommand: Run.self
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run the measurements (a wake-up's cost, then six) in one go, print a table and write bench.json.",
            discussion: """
                0. The machine: what a wake-up costs the thread woken (a 1 ms timed sleep, and a wake by a pipe), \
                the unit the load driver's own CPU is made of (about 2 s).
                1. Transport baseline: seven processes shaped like a cross-province settlement (six zmq_proxy relays \
                and an echo) forwarding messages of a settlement's size, --baseline-window in flight. Beside it the \
                durable chain: each relay fdatasyncs what it drained before passing answers back, the first its \
                requests too, the echo before echoing: the eight syncs in series a settlement waits for.
                2. Cross-province settlements on the real network (every ledger durable), closed loop, once per \
                --windows entry; the best error-free rate is compared with the baseline. Steps 1 and 2 take \
                turns --rounds times (A B A B ...); each figure is the median, printed with its spread.
                3. Latency at --latency-rate settlements a second, open model (the scenario runner), with \
                reconciliation of every ledger afterwards.
                4. Resident memory of every node process, sampled halfway through step 3.
                5. Uploads: clean batches, closed loop, timed until the national store holds every accepted record.
                6. Security: the secured twin of the topology (CURVE on every link, keys admitted per port, a key per institution) \
                launched beside it; step 2's closed loop at --security-window in flight, plaintext and secured \
                taking turns --security-rounds times; the ratio of the mean rates (0 rounds skips the step).

                Figures on a shared machine are noisy: compare ratios from one run, not absolute figures across runs. \
                Build in release first (Scripts/bench.sh does, optimizing across modules); a debug build measures the compiler, not SettleNet.

                Exit codes: 0 measured (targets met or not: see the table); 1 the benchmark could not run. \
                Example: .build/release/settlenet bench --out run/bench
                """
        )

        @Option(help: "Topology of the network measured.") var topology = "Topologies/minimal.yaml"
        @Option(help: "Directory for bench.json, the latency run's reports and the cluster's data.") var out = "run/bench"
        @Option(help: "Seconds measured per closed-loop step (after one second of warm-up).") var seconds: Double = 8
        @Option(help: "Messages in flight through the relay chain.") var baselineWindow = 256
        @Option(help: "In-flight windows tried for cross-province settlements, comma-separated.") var windows = "32,128,256"
        @Option(help: "Settlements per second for the latency step.") var latencyRate = 1_000
        @Option(help: "Seconds of the latency step.") var latencySeconds = 15
        @Option(help: "Upload batches in flight.") var uploadWindow = 8
        @Option(help: "Records per upload batch.") var uploadBatchSize = 1_000
        @Option(help: "In-flight window of the security step.") var securityWindow = 128
        @Option(help: "Rounds of plaintext and of secured settlements in the security step (0: skip it).") var securityRounds = 2
        @Option(help: "Rounds of steps 1 and 2, taking turns; each figure is their median.") var rounds = 3
        @Option(help: ArgumentHelp("The packings measured, comma-separated, each a cluster of its own: \(Packing.help). The first also carries the upload and security steps.", valueName: "modes"))
        var pack = "province,none"

        func validate() throws {
            guard !parsedWindows.isEmpty, parsedWindows.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--windows: expected positive integers separated by commas, got \"\(windows)\"")
            }
            guard seconds > 0, baselineWindow > 0, latencyRate > 0, latencySeconds > 1, uploadWindow > 0, uploadBatchSize > 0,
                  securityWindow > 0, securityRounds >= 0, rounds > 0 else {
                throw ValidationError("every figure of the benchmark must be positive (and --latency-seconds at least 2)")
            }
            guard FileManager.default.fileExists(atPath: topology) else { throw ValidationError("--topology: no file \(topology)") }
            _ = try parsedPackings()
        }

        func parsedPackings() throws -> [Packing] {
            let modes = try pack.split(separator: ",").map { mode in
                let text = mode.trimmingCharacters(in: .whitespaces)
                guard let packing = Packing(text) else { throw ValidationError("--pack: \"\(text)\" is not a packing; expected \(Packing.help)") }
                return packing
            }
            guard !modes.isEmpty, Set(modes.map(\.description)).count == modes.count else {
                throw ValidationError("--pack: expected one or more different packings separated by commas, got \"\(pack)\"")
            }
            return modes
        }

        var parsedWindows: [Int] { windows.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

        func run() throws {
            if buildConfiguration == "debug" {
                FileHandle.standardError.write(Data("warning: this is a debug build; figures will be several times lower than release\n".utf8))
            }
            var options = BenchRun.Options(topologyPath: topology, output: out, executable: currentExecutable(), build: buildConfiguration,
                                           seconds: seconds, baselineWindow: baselineWindow, windows: parsedWindows,
                                           latencyRate: latencyRate, latencySeconds: latencySeconds, uploadWindow: uploadWindow,
                                           uploadBatchSize: uploadBatchSize)
            options.securityWindow = securityWindow
            options.securityRounds = securityRounds
            options.rounds = rounds
            options.packings = try parsedPackings()
            let report: BenchReport
            do {
                report = try BenchRun.run(options) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            } catch {
                FileHandle.standardError.write(Data("error: the benchmark could not run: \(error)\n".utf8))
                throw ExitCode(1)
            }
            let encoder = JSONEncoder.settlenet()
            try encoder.encode(report).write(to: URL(fileURLWithPath: "\(out)/bench.json"))
            print(report.table)
            print("\nwritten: \(out)/bench.json")
        }
    }

    /// One relay of the transport baseline (started by `bench run`).
    struct RelayProcess: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "relay", abstract: "A zmq_proxy relay of the baseline chain.",
                                                        shouldDisplay: false)
        @Option(help: "ROUTER endpoint to bind.") var front: String
        @Option(help: "DEALER endpoint to connect.") var back: String
        @Option(help: "A file to append and fdatasync each batch of answers to before passing them on (the durable chain).")
        var journal: String?
        @Flag(help: "With --journal: requests too are appended and fdatasynced before they go on (the origin county's journal).")
        var syncRequests = false
        func run() throws {
            if let journal { try TransportBaseline.runDurableRelay(front: front, back: back, journal: journal, syncRequests: syncRequests) }
            else { try TransportBaseline.runRelay(front: front, back: back) }
        }
    }

    /// The far end of the transport baseline (started by `bench run`).
    struct EchoProcess: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "echo", abstract: "The echo at the end of the baseline chain.",
                                                        shouldDisplay: false)
        @Option(help: "ROUTER endpoint to bind.") var bind: String
        @Option(help: "A file to append and fdatasync each batch to before echoing it (the durable chain's far end).")
        var journal: String?
        func run() throws { try TransportBaseline.runEcho(bind: bind, journal: journal) }
    }
}
