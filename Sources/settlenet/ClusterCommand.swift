import ArgumentParser
import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start, inspect, restart and stop a cluster of node processes.",
        discussion: """
            Every command names the cluster by its data directory: cluster.json, the node ledgers and \
            logs/<id>.log live there.
            """,
        subcommands: [Up.self, Status.self, Metrics.self, Probe.self, Restart.self, Down.self, Logs.self, Export.self, Ready.self]
    )

    struct DataDirOption: ParsableArguments {
        @Option(help: "The cluster's data directory.") var dataDir: String
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the nodes (one process per node, or packed) and wait until every node has signed in.",
            discussion: """
                The topology is validated first: a mistake stops the launch before any process starts. \
                If a node does not sign in within --timeout seconds, everything started is stopped and \
                the names of the missing nodes are printed with their log tails (exit code 1). \
                Use --base-port to run a second cluster beside the first.

                --pack puts several nodes into one process for large topologies. Packed nodes keep their \
                own ledgers, sign-in, endpoints and logs. A node and its parent in the same process hand \
                messages to each other in memory, as the same frames with their checksums; every other \
                link is TCP. `cluster status` shows the hosting process. Restarting or killing a packed \
                node restarts or kills its whole process.
                  settlenet cluster up --topology Topologies/national.yaml --data-dir run/national --pack province-tier --timeout 120

                --host starts only the nodes the topology places on that host (`hosts:` in the file; \
                nodes without a host are on host `default`): run it on each machine with the same file.

                A secured topology (`security: { curve: true }`, e.g. Topologies/minimal-secure.yaml) encrypts \
                every link with CURVE and admits only known keys. Its keys come from --keys DIR, else the \
                directory the topology names, else DATA_DIR/keys, where `cluster up` makes any that are missing.
                  settlenet cluster up --topology Topologies/minimal-secure.yaml --data-dir run/secure
                """
        )
        @Option(help: "The topology file.") var topology: String
        @OptionGroup var data: DataDirOption
        @Option(help: "Move every endpoint to this base port (default: the topology's base_port).") var basePort: Int?
        @Option(help: "Seconds to wait for every node to sign in (default: 30 plus 0.25 per node started).") var timeout: Double?
        @Option(help: ArgumentHelp("How to pack nodes into processes: \(Packing.help).", valueName: "mode")) var pack: String = "none"
        @Option(help: "Start only the nodes placed on this host of the topology.") var host: String?
        @Option(help: "Key directory of a secured topology (default: the one it names, else DATA_DIR/keys, made if missing).") var keys: String?
        @Flag(help: "Let scenarios run with --attach crash these nodes at points of their commit cycle (crash faults, docs/FAULTS.md).")
        var crashPoints = false

        func validate() throws {
            guard Packing(pack) != nil else { throw ValidationError("--pack \(pack): expected \(Packing.help)") }
        }

        func run() throws {
            var loaded: Topology
            do { loaded = try TopologyLoader.load(path: topology) } catch {
                throw SettleNetError(.command, "topology problems, nothing started:\n\(error)")
            }
            if let basePort { loaded = loaded.withBasePort(basePort) }
            let cluster = Cluster(dataDirectory: data.dataDir, log: { print($0) })
            let started = Date()
            do {
                let record = try cluster.up(topology: loaded, executable: currentExecutable(), timeoutSeconds: timeout,
                                            packing: Packing(pack)!, host: host, keys: keys, crashPoints: crashPoints)
                let processes = Set(record.nodes.map(\.pid)).count
                print("cluster up: \(record.nodes.count) nodes in \(processes) processes signed in after \(String(format: "%.1f", Date().timeIntervalSince(started))) s (base port \(loaded.basePort), data in \(data.dataDir))")
            } catch {
                throw SettleNetError(.command, "\(error)")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every node's tier, hosting process, pid, up, signed in and messages handled.")
        @OptionGroup var data: DataDirOption
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() throws {
            let rows: [NodeStatusRow]
            do { rows = try Cluster(dataDirectory: data.dataDir).status() } catch { throw SettleNetError(.command, "\(error)") }
            if json {
                let encoder = JSONEncoder.settlenet()
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            if rows.isEmpty { print("no nodes running (cluster is down)"); return }
            let header = ["node", "tier", "process", "pid", "up", "signed in", "state", "messages", "pending", "endpoint"]
            let table = rows.map { [$0.node, $0.tier, $0.process, String($0.pid), $0.up ? "yes" : "no", $0.signedIn ? "yes" : "no",
                                    $0.state, String($0.messagesHandled), String($0.pending), $0.endpoint] }
            printTable(header: header, rows: table)
            let up = rows.filter(\.up).count
            print("\(up) of \(rows.count) nodes up in \(Set(rows.map(\.pid)).count) processes, \(rows.filter(\.signedIn).count) signed in")
        }
    }

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle one bill on every route class between the provinces of a running cluster.",
            discussion: """
                For every provincial unit: a local, an intra-city and an intra-province settlement (where it \
                has the counties for them), and a cross-province one to the next province of a ring drawn \
                from --seed, so each province is once the place of treatment and once of insurance. Prints \
                each answer and a summary per route class. Exit code 0 when every probe settled, 1 otherwise.
                  settlenet cluster probe --data-dir run/national
                """
        )
        @OptionGroup var target: ClusterTarget
        @Option(help: "Seed of the ring and of the counties picked.") var seed: UInt64 = 1
        @Option(help: "Seconds to wait for each answer.") var timeout: Double = 15
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() throws {
            let topology = try target.load()
            let probes = RouteProbe.plan(topology, seed: seed)
            let outcomes: [RouteProbe.Outcome]
            let keys = try target.hospitalKeys(for: topology)
            do { outcomes = try RouteProbe.run(probes, topology: topology, timeoutMs: Int(timeout * 1000), hospitalKeys: keys) } catch { throw SettleNetError(.command, "\(error)") }
            if json {
                let encoder = JSONEncoder.settlenet()
                print(String(decoding: try encoder.encode(outcomes), as: UTF8.self))
            } else {
                printTable(header: ["route", "treatment", "insured", "settled", "fund paid (fen)", "latency ms", "error"],
                           rows: outcomes.map { [$0.route, $0.treatment, $0.insured, $0.settled ? "yes" : "no", String($0.fundPayFen),
                                                 String(format: "%.1f", $0.latencyMs), $0.error ?? ""] })
                for route in RouteClass.allCases {
                    let mine = outcomes.filter { $0.route == route.rawValue }
                    let latencies = mine.map(\.latencyMs).sorted()
                    print("\(route.rawValue): \(mine.filter(\.settled).count) of \(mine.count) settled, latency median \(String(format: "%.1f", latencies.isEmpty ? 0 : latencies[latencies.count / 2])) ms")
                }
            }
            if outcomes.isEmpty || outcomes.contains(where: { !$0.settled }) { throw ExitCode(1) }
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop one node gracefully and start it again (with the nodes packed into its process).",
            discussion: """
                Waits until every restarted node has signed in to its parent and holds the catalog. A packed node restarts its whole process, so the wait grows with it: by default 30 s plus 0.25 s per node restarted (a packed process of 136 counties: 64 s). If the wait runs out the process keeps running; the message says how to follow it.

                  settlenet cluster restart --data-dir run/shandong --node 370211 --timeout 120
                """
        )
        @OptionGroup var data: DataDirOption
        @Option(help: "The node to restart, e.g. 370000.") var node: String
        @Option(help: "Seconds to wait for the restarted nodes to sign in (default: 30 plus 0.25 per node restarted).") var timeout: Double?

        func validate() throws {
            if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds, not \(timeout)") }
        }

        func run() throws {
            let restarted: [String]
            do {
                restarted = try Cluster(dataDirectory: data.dataDir, log: { print($0) }).restart(node: node, timeoutSeconds: timeout)
            } catch { throw SettleNetError(.command, "\(error)") }
            let mates = restarted.filter { $0 != node }
            print("node \(node) restarted and signed in\(mates.isEmpty ? "" : " with the \(mates.count) nodes of its process")")
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop every node gracefully; kill stragglers after --grace seconds.",
            discussion: "Leaves no process behind. Ledgers and logs stay in the data directory."
        )
        @OptionGroup var data: DataDirOption
        @Option(help: "Seconds to wait for a graceful stop before SIGKILL.") var grace: Double = 10

        func run() throws {
            let cluster = Cluster(dataDirectory: data.dataDir, log: { print($0) })
            let count = (try? cluster.record().nodes.count) ?? 0
            let killed: [String]
            do { killed = try cluster.down(graceSeconds: grace) } catch { throw SettleNetError(.command, "\(error)") }
            print("cluster down: \(count) nodes stopped\(killed.isEmpty ? "" : ", \(killed.count) killed after \(Int(grace)) s: \(killed.joined(separator: ", "))")")
        }
    }

    struct Logs: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the last lines of a node's log.")
        @OptionGroup var data: DataDirOption
        @Option(help: "The node, e.g. 370211.") var node: String
        @Option(help: "How many lines.") var lines: Int = 40

        func run() throws {
            let path = "\(data.dataDir)/logs/\(node).log"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw SettleNetError(.command, "no log for node \(node) at \(path)")
            }
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines) { print(line) }
        }
    }
}

func printTable(header: [String], rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}
