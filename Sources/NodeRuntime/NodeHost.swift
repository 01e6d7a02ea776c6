import Foundation
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

    /// `makeLogger` gives each node its logger (a packed node logs to its own file).
    public init(topology: Topology, ids: [DivisionCode], dataDirectory: String,
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
    }

    /// Serves every node until SIGTERM/SIGINT. If one node fails, all are stopped and the
    /// first failure is thrown, so the process exits non-zero and `cluster up` reports it.
    public func run() throws {
        if ids.count == 1 {
            try NodeServer(topology: topology, id: ids[0], dataDirectory: dataDirectory, logger: makeLogger(ids[0])).run()
            return
        }
        NodeHost.raiseOpenFilesLimit()
        // Two sockets per node, and some to spare for libzmq's own.
        let context = try Context(ioThreads: 1, maxSockets: Int32(ids.count * 2 + 64))
        let failures = Mutex<[String]>([])
        let finished = DispatchGroup()
        for id in ids {
            finished.enter()
            let thread = Thread { [topology, dataDirectory, makeLogger] in
                defer { finished.leave() }
                do {
                    let server = try NodeServer(topology: topology, id: id, dataDirectory: dataDirectory,
                                                logger: makeLogger(id), context: context, pace: .packed)
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

    /// A process hosting many nodes holds many descriptors (sockets, connections, ledger
    /// files): take the hard limit the operator allows instead of the soft default.
    static func raiseOpenFilesLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
