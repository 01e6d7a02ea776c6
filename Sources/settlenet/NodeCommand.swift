import ArgumentParser
import Foundation
import NodeRuntime
import SettlementModel
import NetworkTopology

struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one node of a topology in the foreground (cluster up starts these for you).",
        discussion: """
            Binds the node's endpoint from the topology, connects to its parent and signs in (9001),
            serves its children and, at county tier, the hospitals of its county. Its ledger is
            DATA_DIR/nodes/<id>/ledger.sqlite. SIGTERM or Ctrl-C stops it gracefully: new requests are
            refused, answers in flight are passed on (up to 5 s), the ledger is flushed.
            """
    )

    @Option(help: "The topology file.") var topology: String
    @Option(help: "The node's 6-digit division code, e.g. 370211.") var id: String
    @Option(help: "The cluster's data directory.") var dataDir: String
    @Option(help: "Override the topology's base_port (as cluster up --base-port does).") var basePort: Int?

    func validate() throws {
        guard DivisionCode(id) != nil else {
            throw ValidationError("--id must be a 6-digit division code such as 370211, not \"\(id)\"")
        }
    }

    func run() throws {
        let logger = makeLogger(label: "settlenet.node")
        var loaded: Topology
        do {
            loaded = try TopologyLoader.load(path: topology)
        } catch {
            throw Failure("topology problems:\n\(error)")
        }
        if let basePort { loaded = loaded.withBasePort(basePort) }
        let code = DivisionCode(id)!
        guard loaded.node(code) != nil else {
            throw Failure("node \(id) is not in \(topology)")
        }
        StopSignal.install()
        let server = try NodeServer(topology: loaded, id: code, dataDirectory: dataDir, logger: logger)
        try server.run()
    }
}
