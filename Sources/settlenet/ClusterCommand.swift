import ArgumentParser
import ClusterControl
import Foundation
import NetworkTopology

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start, inspect, restart and stop a cluster of node processes.",
        discussion: """
            Every command names the cluster by its data directory: cluster.json, the node ledgers and
            logs/<id>.log live there.
            """,
        subcommands: [Up.self, Status.self, Restart.self, Down.self, Logs.self]
    )

    struct DataDirOption: ParsableArguments {
        @Option(help: "The cluster's data directory.") var dataDir: String
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start one process per node and wait until every node has signed in.",
            discussion: """
                The topology is validated first: a mistake stops the launch before any process starts.
                If a node does not sign in within --timeout seconds, everything started is stopped and
                the names of the missing nodes are printed with their log tails (exit code 1).
                Use --base-port to run a second cluster beside the first.
                """
        )
        @Option(help: "The topology file.") var topology: String
        @OptionGroup var data: DataDirOption
        @Option(help: "Move every endpoint to this base port (default: the topology's base_port).") var basePort: Int?
        @Option(help: "Seconds to wait for every node to sign in.") var timeout: Double = 30

        func run() throws {
            var loaded: Topology
            do { loaded = try TopologyLoader.load(path: topology) } catch {
                throw Failure("topology problems, nothing started:\n\(error)")
            }
            if let basePort { loaded = loaded.withBasePort(basePort) }
            let cluster = Cluster(dataDirectory: data.dataDir, log: { print($0) })
            let started = Date()
            do {
                try cluster.up(topology: loaded, executable: currentExecutable(), timeoutSeconds: timeout)
            } catch {
                throw Failure("\(error)")
            }
            print("cluster up: \(loaded.nodes.count) nodes signed in after \(String(format: "%.1f", Date().timeIntervalSince(started))) s (base port \(loaded.basePort), data in \(data.dataDir))")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every node's tier, pid, up, signed in and messages handled.")
        @OptionGroup var data: DataDirOption
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() throws {
            let rows: [NodeStatusRow]
            do { rows = try Cluster(dataDirectory: data.dataDir).status() } catch { throw Failure("\(error)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            if rows.isEmpty { print("no nodes running (cluster is down)"); return }
            let header = ["node", "tier", "pid", "up", "signed in", "state", "messages", "pending", "endpoint"]
            let table = rows.map { [$0.node, $0.tier, String($0.pid), $0.up ? "yes" : "no", $0.signedIn ? "yes" : "no",
                                    $0.state, String($0.messagesHandled), String($0.pending), $0.endpoint] }
            printTable(header: header, rows: table)
            let up = rows.filter(\.up).count
            print("\(up) of \(rows.count) nodes up, \(rows.filter(\.signedIn).count) signed in")
        }
    }

    struct Restart: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop one node gracefully and start it again.")
        @OptionGroup var data: DataDirOption
        @Option(help: "The node to restart, e.g. 370000.") var node: String

        func run() throws {
            do { try Cluster(dataDirectory: data.dataDir, log: { print($0) }).restart(node: node) } catch { throw Failure("\(error)") }
            print("node \(node) restarted and signed in")
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
            do { killed = try cluster.down(graceSeconds: grace) } catch { throw Failure("\(error)") }
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
                throw Failure("no log for node \(node) at \(path)")
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
