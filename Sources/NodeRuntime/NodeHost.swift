import Foundation
import LinkSecurity
import Logging
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel
import Telemetry
import ZeroMQ

/// One OS process running one or more nodes.
///
/// Every node keeps its own sockets, ledger, sign-in, endpoint, log, status and link faults,
/// exactly as if it were alone; the nodes of a packed process share the topology (and its
/// routing table), the stop signal and one reactor thread that steps them all, which speaks
/// ZMTP (in clear or under CURVE) on every link itself. A parent and a child in one
/// process hand messages over in memory (sealed with their checksum, through link faults and the
/// receiver's gate, as over TCP); TCP carries the rest: other processes, other hosts, hospitals.
public final class NodeHost {
    public let topology: Topology
    public let ids: [DivisionCode]
    let dataDirectory: String
    let makeLogger: @Sendable (DivisionCode) throws -> Logger
    /// Where the nodes' keys are when the topology is secured.
    let keys: KeyDirectory?
    /// The nodes can be armed to crash at a point of their commit cycle (`cluster up --crash-points`).
    let crashPoints: Bool

    /// `makeLogger` gives each node its logger (a packed node logs to its own file). `keys`:
    /// the key directory of a secured topology (default: `KeyDirectory.location`).
    public init(topology: Topology, ids: [DivisionCode], dataDirectory: String, keys: KeyDirectory? = nil,
                crashPoints: Bool = false, makeLogger: @escaping @Sendable (DivisionCode) throws -> Logger) throws {
        let unknown = ids.filter { topology.node($0) == nil }
        guard unknown.isEmpty else {
            throw SettleNetError(.node, "nodes \(unknown.map(\.value).joined(separator: ", ")) are not in \(topology.file)")
        }
        guard Set(ids).count == ids.count else { throw SettleNetError(.node, "a node is named twice: \(ids.map(\.value).joined(separator: ", "))") }
        self.topology = topology
        self.ids = ids
        self.dataDirectory = dataDirectory
        self.makeLogger = makeLogger
        self.keys = topology.isSecured ? keys ?? KeyDirectory.location(topology: topology, explicit: nil, dataDirectory: dataDirectory) : nil
        self.crashPoints = crashPoints
        // Before any ledger opens: a scenario's `crash` fault may ask for a crash in the middle of
        // a commit. Only when asked for: alternating bench runs had the hook's nodes at 7.6 % of
        // the transport against 9.0 % without, though it costs one atomic load per log write.
        if crashPoints, !Ledger.installCrashHook() {
            throw SettleNetError(.node, "cannot install the ledgers' crash hook (SQLite VFS)")
        }
    }

    /// Serves every node on this thread until SIGTERM/SIGINT. If one node fails, all are
    /// stopped and the failures thrown, so the process exits non-zero and `cluster up` reports it.
    public func run() throws {
        if ids.count > 1 { Context.raiseOpenFilesLimit() }   // connections, ledger files
        var loggers: [DivisionCode: Logger] = [:]
        for id in ids { loggers[id] = try makeLogger(id) }
        // Secured: each node's port admits the keys its NodeKeys name (CURVE on the native transport).
        var nodeKeys: [DivisionCode: NodeKeys] = [:]
        if let keys {
            do {
                for id in ids { nodeKeys[id] = try NodeKeys(id: id, topology: topology, keys: keys) }
            } catch {
                throw SettleNetError(.node, "keys of \(ids.count == 1 ? "node \(ids[0])" : "\(ids.count) nodes"): \(error)")
            }
        }
        let clock = WallClock()
        let pace: NodeShell.Pace = ids.count == 1 ? .single : .packed
        var shells: [NodeShell] = []
        do {
            for id in ids {
                let parentInProcess = topology.node(id)?.parent.map(ids.contains) ?? false
                shells.append(try NodeShell(topology: topology, id: id, dataDirectory: dataDirectory, logger: loggers[id]!,
                                            pace: pace, keys: nodeKeys[id], parentInProcess: parentInProcess,
                                            nowMs: clock.nowMs(), crashPoints: crashPoints))
            }
            for shell in shells { try shell.connectToParent() }
        } catch {
            for shell in shells { shell.abort() }
            throw error
        }
        let endpoint: MetricsEndpoint?
        do {
            endpoint = try serveMetrics(for: shells)
        } catch {
            for shell in shells { shell.abort() }
            throw error
        }
        defer { endpoint?.stop() }
        try Reactor(nodes: shells, pace: pace, clock: clock).run()
    }


    /// One Prometheus endpoint for every node of this process, at the first node's metrics port
    /// (`metrics_port` in the topology), each node's instruments labelled by node. Nil when the
    /// topology turns metrics off.
    func serveMetrics(for shells: [NodeShell]) throws -> MetricsEndpoint? {
        guard let first = ids.first, let port = topology.metricsPort(of: first) else { return nil }
        let metrics = ProcessMetrics()
        let kinds = TicketKind.allCases.map(\.rawValue)
        for shell in shells { shell.metrics = metrics.node(shell.id.value, tier: shell.spec.tier.rawValue, ticketKinds: kinds) }
        let address = topology.address(of: first) ?? topology.host
        let bind = Topology.isIPAddress(address) ? address : "*"
        let owner = ids.count == 1 ? "node \(first)" : "the process of nodes \(first) and \(ids.count - 1) more"
        let endpoint = try MetricsEndpoint.start(metrics, bindAddress: bind, port: port, advertisedHost: address == "*" ? topology.host : address,
                                                 owner: owner)
        for shell in shells { shell.metricsURL = endpoint.url }
        return endpoint
    }
}
