import Foundation
import LinkSecurity
import Logging
import NetworkTopology
import SettlementModel
import Synchronization
import ZeroMQ

/// One OS process running one or more nodes.
///
/// A packed process runs each node on a thread of its own, with its own sockets, ledger,
/// sign-in and endpoint, exactly as if it were alone; the nodes share only the topology (and
/// its routing table), one ZeroMQ context (one I/O thread) and the stop signal. Messages
/// between two nodes of one process still go over TCP, so every message takes the same path
/// and the figures mean the same thing as unpacked.
public final class NodeHost {
    public let topology: Topology
    public let ids: [DivisionCode]
    let dataDirectory: String
    let makeLogger: @Sendable (DivisionCode) throws -> Logger
    /// Where the nodes' keys are when the topology is secured.
    let keys: KeyDirectory?

    /// `makeLogger` gives each node its logger (a packed node logs to its own file). `keys`:
    /// the key directory of a secured topology (default: `KeyDirectory.location`).
    public init(topology: Topology, ids: [DivisionCode], dataDirectory: String, keys: KeyDirectory? = nil,
                makeLogger: @escaping @Sendable (DivisionCode) throws -> Logger) throws {
        let unknown = ids.filter { topology.node($0) == nil }
        guard unknown.isEmpty else {
            throw NodeError("nodes \(unknown.map(\.value).joined(separator: ", ")) are not in \(topology.file)")
        }
        guard Set(ids).count == ids.count else { throw NodeError("a node is named twice: \(ids.map(\.value).joined(separator: ", "))") }
        self.topology = topology
        self.ids = ids
        self.dataDirectory = dataDirectory
        self.makeLogger = makeLogger
        self.keys = topology.isSecured ? keys ?? KeyDirectory.location(topology: topology, explicit: nil, dataDirectory: dataDirectory) : nil
    }

    /// Serves every node until SIGTERM/SIGINT. If one node fails, all are stopped and the
    /// first failure is thrown, so the process exits non-zero and `cluster up` reports it.
    public func run() throws {
        if ids.count > 1 { Context.raiseOpenFilesLimit() }   // sockets, connections, ledger files
        // Two sockets per node (four when secured: a handshake monitor is a pair of sockets),
        // and some to spare for libzmq's own and the ZAP handler's.
        let perNode = topology.isSecured ? 4 : 2
        let context = try Context(ioThreads: 1, maxSockets: Int32(max(1_023, ids.count * perNode + 64)))
        var loggers: [DivisionCode: Logger] = [:]
        for id in ids { loggers[id] = try makeLogger(id) }
        // Secured: one ZAP gate for the whole process, up before any node binds.
        var nodeKeys: [DivisionCode: NodeKeys] = [:]
        var gate: AdmissionGate?
        if let keys {
            do {
                for id in ids { nodeKeys[id] = try NodeKeys(id: id, topology: topology, keys: keys) }
            } catch {
                throw NodeError("keys of \(ids.count == 1 ? "node \(ids[0])" : "\(ids.count) nodes"): \(error)")
            }
            gate = try AdmissionGate(context: context, nodes: Array(nodeKeys.values), loggers: loggers)
        }
        defer { gate?.stop() }
        if ids.count == 1 {
            try NodeServer(topology: topology, id: ids[0], dataDirectory: dataDirectory, logger: loggers[ids[0]]!,
                           context: context, keys: nodeKeys[ids[0]]).run()
            return
        }
        let failures = Mutex<[String]>([])
        let finished = DispatchGroup()
        for id in ids {
            finished.enter()
            let thread = Thread { [topology, dataDirectory, loggers, nodeKeys] in
                defer { finished.leave() }
                do {
                    let server = try NodeServer(topology: topology, id: id, dataDirectory: dataDirectory,
                                                logger: loggers[id]!, context: context, pace: .packed, keys: nodeKeys[id])
                    try server.run()
                } catch {
                    failures.withLock { $0.append("node \(id): \(error)") }
                    StopSignal.request()
                }
            }
            thread.name = "node-\(id.value)"
            // Node loops are shallow; 1 MiB instead of 8 keeps thousands of threads cheap.
            thread.stackSize = 1 << 20
            thread.start()
        }
        finished.wait()
        let failed = failures.withLock { $0 }
        if !failed.isEmpty { throw NodeError(failed.joined(separator: "\n")) }
    }

}
