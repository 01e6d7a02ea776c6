import Foundation
import SettlementModel
import NetworkTopology

/// What `cluster up` started, kept in `DIR/cluster.json` so that later commands find it.
public struct ClusterRecord: Codable, Sendable {
    public struct NodeProcess: Codable, Sendable {
        public var id: String
        public var tier: String
        public var pid: Int32
        public var startedAtMs: Int64
    }

    public var topology: String
    public var basePort: Int
    public var executable: String
    public var nodes: [NodeProcess]
}

/// One row of `cluster status`.
public struct NodeStatusRow: Codable, Sendable {
    public var node: String
    public var tier: String
    public var pid: Int32
    public var up: Bool
    public var signedIn: Bool
    public var state: String
    public var messagesHandled: Int64
    public var pending: Int
    public var endpoint: String
}

/// Starts, inspects, restarts and stops the node processes of one cluster.
public struct Cluster {
    public let layout: DataLayout
    public var log: (String) -> Void

    public init(dataDirectory: String, log: @escaping (String) -> Void = { _ in }) {
        layout = DataLayout(root: dataDirectory)
        self.log = log
    }

    // MARK: up

    /// Starts one process per node and waits until every node has signed in. On failure it
    /// stops whatever it started and throws with the nodes that did not sign in and their log tails.
    @discardableResult
    public func up(topology: Topology, executable: String, timeoutSeconds: Double = 30) throws -> ClusterRecord {
        if let existing = try? record(), existing.nodes.contains(where: { Processes.isNode($0.pid, nodeID: $0.id) }) {
            throw ClusterError("a cluster is already running in \(layout.root); run `settlenet cluster down --data-dir \(layout.root)` first")
        }
        let busy = topology.nodes.compactMap { spec -> String? in
            guard let port = topology.port(of: spec.id), !PortProbe.isFree(host: topology.host, port: port) else { return nil }
            return "\(spec.id) (port \(port))"
        }
        if !busy.isEmpty {
            throw ClusterError("ports already in use for nodes \(busy.joined(separator: ", ")); pick another --base-port")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: layout.logsDirectory, withIntermediateDirectories: true)
        let topologyPath = URL(fileURLWithPath: topology.file).standardizedFileURL.path
        var started = ClusterRecord(topology: topologyPath, basePort: topology.basePort, executable: executable, nodes: [])
        do {
            // Parents first, so children find their parent already bound (they retry anyway).
            for spec in topology.nodes.sorted(by: { $0.tier.depth < $1.tier.depth }) {
                try? fm.removeItem(atPath: layout.statusPath(spec.id))
                let pid = try Processes.spawn(nodeArguments(executable: executable, topologyPath: topologyPath,
                                                            id: spec.id, basePort: topology.basePort),
                                              logPath: layout.logPath(spec.id))
                started.nodes.append(.init(id: spec.id.value, tier: spec.tier.rawValue, pid: pid, startedAtMs: nowMs()))
            }
            try save(started)
            log("started \(started.nodes.count) node processes; waiting for sign-in")
            try waitForSignIn(started.nodes, timeoutSeconds: timeoutSeconds)
        } catch {
            stop(started.nodes, graceSeconds: 3)
            try? save(ClusterRecord(topology: topologyPath, basePort: topology.basePort, executable: executable, nodes: []))
            throw error
        }
        return started
    }

    private func nodeArguments(executable: String, topologyPath: String, id: DivisionCode, basePort: Int) -> [String] {
        [executable, "node", "--topology", topologyPath, "--id", id.value, "--data-dir", layout.root,
         "--base-port", String(basePort)]
    }

    private func waitForSignIn(_ nodes: [ClusterRecord.NodeProcess], timeoutSeconds: Double) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            var waiting: [ClusterRecord.NodeProcess] = []
            var dead: [ClusterRecord.NodeProcess] = []
            for node in nodes {
                if !Processes.isNode(node.pid, nodeID: node.id) { dead.append(node); continue }
                let status = readStatus(node.id)
                // Ready: signed in to its parent and holding the catalog (1301).
                if status?.pid != node.pid || status?.signedIn != true || status?.catalogVersion.isEmpty != false {
                    waiting.append(node)
                }
            }
            if !dead.isEmpty {
                throw ClusterError("node processes exited during start-up: \(dead.map(\.id).joined(separator: ", "))\n"
                                   + tails(dead.map(\.id)))
            }
            if waiting.isEmpty { return }
            if Date() >= deadline {
                throw ClusterError("nodes did not sign in within \(Int(timeoutSeconds)) s: \(waiting.map(\.id).joined(separator: ", "))\n"
                                   + tails(waiting.map(\.id)))
            }
            usleep(50_000)
        }
    }

    private func tails(_ ids: [String]) -> String {
        ids.prefix(5).map { id in
            let path = DivisionCode(id).map(layout.logPath) ?? ""
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log)"
            let lines = text.split(separator: "\n").suffix(8).map { "    \($0)" }.joined(separator: "\n")
            return "--- \(path) (last lines)\n\(lines)"
        }.joined(separator: "\n")
    }

    // MARK: status

    public func record() throws -> ClusterRecord {
        guard let data = FileManager.default.contents(atPath: layout.clusterFile) else {
            throw ClusterError("no cluster in \(layout.root) (\(layout.clusterFile) does not exist); start one with `settlenet cluster up`")
        }
        do {
            return try JSONDecoder().decode(ClusterRecord.self, from: data)
        } catch {
            throw ClusterError("\(layout.clusterFile) is damaged: \(error)")
        }
    }

    private func save(_ record: ClusterRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(record)
        let temporary = layout.clusterFile + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, layout.clusterFile) == 0 else {
            throw ClusterError("cannot write \(layout.clusterFile)")
        }
    }

    public func readStatus(_ id: String) -> NodeStatus? {
        guard let code = DivisionCode(id), let data = FileManager.default.contents(atPath: layout.statusPath(code)) else { return nil }
        return try? JSONDecoder().decode(NodeStatus.self, from: data)
    }

    public func status() throws -> [NodeStatusRow] {
        try record().nodes.map { node in
            let up = Processes.isNode(node.pid, nodeID: node.id)
            let status = readStatus(node.id)
            let current = status?.pid == node.pid ? status : nil
            return NodeStatusRow(node: node.id, tier: node.tier, pid: node.pid, up: up,
                                 signedIn: up && (current?.signedIn ?? false), state: up ? (current?.state ?? "starting") : "down",
                                 messagesHandled: current?.messagesHandled ?? 0, pending: current?.pending ?? 0,
                                 endpoint: current?.endpoint ?? "")
        }
    }

    // MARK: restart

    public func restart(node id: String, timeoutSeconds: Double = 30) throws {
        var current = try record()
        guard let index = current.nodes.firstIndex(where: { $0.id == id }) else {
            throw ClusterError("node \(id) is not part of the cluster in \(layout.root) (nodes: \(current.nodes.map(\.id).joined(separator: ", ")))")
        }
        // The topology must still load before the node is stopped: a broken file would leave it down.
        _ = try TopologyLoader.load(path: current.topology)
        stop([current.nodes[index]], graceSeconds: 10)
        try? FileManager.default.removeItem(atPath: layout.statusPath(DivisionCode(id)!))
        try respawn(&current, index: index)
        try waitForSignIn([current.nodes[index]], timeoutSeconds: timeoutSeconds)
    }

    // MARK: faults

    /// The pid of a node's current process, if it runs.
    public func pid(of id: String) throws -> Int32? {
        try record().nodes.first { $0.id == id && Processes.isNode($0.pid, nodeID: $0.id) }?.pid
    }

    /// SIGKILL a node's process: no graceful stop, as a crash would.
    public func kill(node id: String) throws {
        guard let pid = try pid(of: id) else { throw ClusterError("node \(id) is not running in \(layout.root)") }
        Processes.signal(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while Processes.isNode(pid, nodeID: id) && Date() < deadline { usleep(10_000) }
    }

    /// Starts a node that is not running (after a kill), without waiting for its sign-in.
    public func start(node id: String) throws {
        var current = try record()
        guard let index = current.nodes.firstIndex(where: { $0.id == id }) else {
            throw ClusterError("node \(id) is not part of the cluster in \(layout.root)")
        }
        guard !Processes.isNode(current.nodes[index].pid, nodeID: id) else { return }
        try respawn(&current, index: index)
    }

    /// Starts node `index` of `record` again and saves its new pid.
    private func respawn(_ record: inout ClusterRecord, index: Int) throws {
        let code = DivisionCode(record.nodes[index].id)!
        let pid = try Processes.spawn(nodeArguments(executable: record.executable, topologyPath: record.topology,
                                                    id: code, basePort: record.basePort),
                                      logPath: layout.logPath(code))
        record.nodes[index].pid = pid
        record.nodes[index].startedAtMs = nowMs()
        try save(record)
    }

    // MARK: down

    /// Stops every node gracefully (SIGTERM), kills stragglers after `graceSeconds`, and
    /// returns the ids of nodes that had to be killed.
    @discardableResult
    public func down(graceSeconds: Double = 10) throws -> [String] {
        let current = try record()
        let killed = stop(current.nodes, graceSeconds: graceSeconds)
        var emptied = current
        emptied.nodes = []
        try save(emptied)
        return killed
    }

    /// SIGTERM, wait, SIGKILL: returns the ids that needed SIGKILL. Leaves no process behind.
    @discardableResult
    func stop(_ nodes: [ClusterRecord.NodeProcess], graceSeconds: Double) -> [String] {
        let live = nodes.filter { Processes.isNode($0.pid, nodeID: $0.id) }
        for node in live { Processes.signal(node.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(graceSeconds)
        var remaining = live
        while !remaining.isEmpty && Date() < deadline {
            usleep(20_000)
            remaining = remaining.filter { Processes.isNode($0.pid, nodeID: $0.id) }
        }
        for node in remaining {
            log("node \(node.id) (pid \(node.pid)) did not stop in \(Int(graceSeconds)) s: killing it")
            Processes.signal(node.pid, SIGKILL)
        }
        let killDeadline = Date().addingTimeInterval(5)
        while remaining.contains(where: { Processes.isNode($0.pid, nodeID: $0.id) }) && Date() < killDeadline {
            usleep(20_000)
        }
        return remaining.map(\.id)
    }

    private func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// Asks the operating system whether a TCP port can be bound.
enum PortProbe {
    static func isFree(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host == "*" || host == "0.0.0.0" ? "0.0.0.0" : host)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }
}

extension Cluster {
    /// A base port at which every node of `topology` can bind: the topology's own if free,
    /// otherwise a random one. Lets test suites and demos run side by side.
    /// A base port with `count` free ports from it on `host`, drawn at random (for helpers such
    /// as the benchmark's relay chain that need ports of their own).
    public static func freePorts(_ count: Int, host: String = "127.0.0.1") -> Int? {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...(60_000 - count))
            if (0..<count).allSatisfy({ PortProbe.isFree(host: host, port: base + $0) }) { return base }
        }
        return nil
    }

    public static func freeBasePort(for topology: Topology, preferOwn: Bool = true) -> Int? {
        let span = (topology.nodes.map(\.portOffset).max() ?? 0) + 1
        func allFree(_ base: Int) -> Bool {
            (0..<span).allSatisfy { offset in
                !topology.nodes.contains { $0.portOffset == offset } || PortProbe.isFree(host: topology.host, port: base + offset)
            }
        }
        if preferOwn && allFree(topology.basePort) { return topology.basePort }
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...(60_000 - span))
            if allFree(base) { return base }
        }
        return nil
    }
}
