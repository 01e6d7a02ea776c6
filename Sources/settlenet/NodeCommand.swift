import ArgumentParser
import Foundation
import LinkSecurity
import Logging
import NodeRuntime
import SettlementModel
import NetworkTopology

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one node of a topology, or several packed into this process, in the foreground (cluster up starts these for you).",
        discussion: """
            Binds the node's endpoint from the topology, connects to its parent and signs in (9001), \
            serves its children and, at county tier, the hospitals of its county. Its ledger is \
            DATA_DIR/nodes/<id>/ledger.sqlite. SIGTERM or Ctrl-C stops it gracefully: new requests are \
            refused, answers in flight are passed on (up to 5 s), the ledger is flushed.

            Several --id options pack nodes into this one process (cluster up --pack does this): each \
            node keeps its own sockets, ledger, sign-in, endpoint and log (DATA_DIR/logs/<id>.log); one \
            thread steps them all in turn and reads and writes their connections itself. This process's own \
            output (start-up failures) goes to standard error.
            """
    )

    @Option(help: "The topology file.") var topology: String
    @Option(help: "The node's 6-digit division code, e.g. 370211; repeat to pack several nodes into this process.") var id: [String]
    @Option(help: "The cluster's data directory.") var dataDir: String
    @Option(help: "Override the topology's base_port (as cluster up --base-port does).") var basePort: Int?
    @Option(help: "Key directory of a secured topology (default: the one the topology names, else DATA_DIR/keys).") var keys: String?
    @Flag(help: "Let a scenario's crash faults arm this process to crash at a point of its commit cycle (cluster up --crash-points passes it).")
    var crashPoints = false

    func validate() throws {
        guard !id.isEmpty else { throw ValidationError("name at least one node with --id, e.g. --id 370211") }
        for text in id where DivisionCode(text) == nil {
            throw ValidationError("--id must be a 6-digit division code such as 370211, not \"\(text)\"")
        }
    }

    func run() throws {
        var loaded: Topology
        do {
            loaded = try TopologyLoader.load(path: topology)
        } catch {
            throw SettleNetError(.command, "topology problems:\n\(error)")
        }
        if let basePort { loaded = loaded.withBasePort(basePort) }
        let codes = id.compactMap(DivisionCode.init)
        if let missing = codes.first(where: { loaded.node($0) == nil }) {
            throw SettleNetError(.command, "node \(missing) is not in \(topology)")
        }
        StopSignal.install()
        let host: NodeHost
        if codes.count == 1 {
            let logger = makeLogger(label: "settlenet.node")
            host = try NodeHost(topology: loaded, ids: codes, dataDirectory: dataDir, keys: keyDirectory(loaded),
                                crashPoints: crashPoints, makeLogger: { _ in logger })
        } else {
            let layout = DataLayout(root: dataDir)
            try FileManager.default.createDirectory(atPath: layout.logsDirectory, withIntermediateDirectories: true)
            let level = logLevelFromEnvironment()
            host = try NodeHost(topology: loaded, ids: codes, dataDirectory: dataDir, keys: keyDirectory(loaded),
                                crashPoints: crashPoints, makeLogger: { code in
                Logger(label: "settlenet.node") { label in
                    (try? FileLogHandler(label: label, path: layout.logPath(code), level: level))
                        .map { $0 as LogHandler } ?? StreamLogHandler.standardError(label: label)
                }
            })
        }
        do { try host.run() } catch { throw SettleNetError(.command, "\(error)") }
    }

    private func keyDirectory(_ topology: Topology) -> KeyDirectory? {
        topology.isSecured ? KeyDirectory.location(topology: topology, explicit: keys, dataDirectory: dataDir) : nil
    }
}
