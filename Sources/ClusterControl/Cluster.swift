import Foundation
import LinkSecurity
import SettlementModel
import NetworkTopology

/// What `cluster up` started, kept in `DIR/cluster.json` so that later commands find it.
public struct ClusterRecord: Codable, Sendable {
    public struct NodeProcess: Codable, Sendable {
        public var id: String
        public var tier: String
        public var pid: Int32
        public var startedAtMs: Int64
        /// The process hosting the node (its own id when not packed); nodes of one process share the pid.
        public var process: String?
    }

    public var topology: String
    public var basePort: Int
    public var executable: String
    public var nodes: [NodeProcess]
    /// How nodes were packed into processes (`cluster up --pack`); nil for one per node.
    public var packing: String?
    /// The host whose nodes this cluster started (`cluster up --host`); nil for every node.
    public var host: String?
    /// The key directory of a secured cluster (absolute); nil for plaintext links.
    public var keys: String?
    /// Started with `--crash-points`: its nodes can be armed by a scenario's `crash` faults.
    public var crashPoints: Bool?

    /// The nodes sharing a process with `id`, itself included.
    func processMates(of id: String) -> [Int] {
        guard let own = nodes.first(where: { $0.id == id }) else { return [] }
        let name = own.process ?? own.id
        return nodes.indices.filter { (nodes[$0].process ?? nodes[$0].id) == name }
    }
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
    /// The process hosting the node: its name (the node's id when not packed).
    public var process: String
}

/// Starts, inspects, restarts and stops the node processes of one cluster.
public struct Cluster {
    public let layout: DataLayout
    public var log: (String) -> Void

    public init(dataDirectory: String, log: @escaping (String) -> Void = { _ in }) {
        layout = DataLayout(root: dataDirectory)
        self.log = log
    }

    /// The data directory as its nodes are started with it: absolute, so that a node process
    /// names its cluster whatever directory it was started from.
    var absoluteRoot: String { URL(fileURLWithPath: layout.root).standardizedFileURL.path }

    /// Whether `pid` is this cluster's process of node `id`. A pid alone is not enough: the
    /// process it named may have exited and the pid gone to another process, even to the same
    /// node of another cluster on this machine, which a stop must never touch.
    func isOurNode(_ pid: pid_t, id: String) -> Bool {
        Processes.isNode(pid, nodeID: id, dataDirectory: absoluteRoot)
    }

    /// Whether `pid` is a live node process of this cluster (any of its nodes).
    public func isRunningNode(pid: Int32) -> Bool {
        Processes.isNode(pid, nodeID: nil, dataDirectory: absoluteRoot)
    }

    // MARK: up

    /// How long to wait for `nodes` starting nodes to sign in when the operator names no limit.
    /// A packed process of 136 county nodes is ready 3 s after a restart on an idle 2-core
    /// machine; the 30 s floor and a quarter second per node leave room for a machine several
    /// times slower or busy with other work, and only bound how long a real failure takes to report.
    public static func defaultSignInTimeout(nodes: Int) -> Double { 30 + 0.25 * Double(nodes) }

    /// `up` on the topology's own base port if `preferOwn` and it is free, else on random free
    /// ones: another cluster starting at the same moment may find the same ports free and take
    /// them first, and then this tries others (up to 5 times). Returns the topology as placed.
    @discardableResult
    public func upOnFreePorts(topology: Topology, executable: String, packing: Packing = .none, keys: String? = nil,
                              preferOwn: Bool = true, crashPoints: Bool = false) throws -> (topology: Topology, record: ClusterRecord) {
        var attempt = 0
        while true {
            attempt += 1
            guard let port = Cluster.freeBasePort(for: topology, preferOwn: preferOwn && attempt == 1) else {
                throw SettleNetError(.cluster, "no free base port for the \(topology.nodes.count) nodes of \(topology.file) on \(topology.host); free some ports and run again")
            }
            let placed = topology.withBasePort(port)
            log("launching \(topology.name) (\(topology.nodes.count) nodes, base port \(port), packed \(packing), data in \(layout.root))")
            do {
                return (placed, try up(topology: placed, executable: executable, packing: packing, keys: keys, crashPoints: crashPoints))
            } catch let error as SettleNetError where error.isPortConflict && attempt < 5 {
                log("base port \(port) was taken meanwhile by another process; trying another")
            }
        }
    }

    /// Starts the nodes (one process per node, or packed as `packing` says; only those placed on
    /// `host` when given) and waits until every one has signed in. On failure it stops whatever
    /// it started and throws with the nodes that did not sign in and their log tails.
    /// `timeoutSeconds` nil: `defaultSignInTimeout` for the nodes started.
    ///
    /// A secured topology's nodes take their keys from `keys`, else the directory the topology
    /// names, else DATA_DIR/keys, where any missing keys are made first (so a secured cluster
    /// starts with no extra step).
    ///
    /// `crashPoints`: the nodes can be armed to crash at a point of their commit cycle (a
    /// scenario's `crash` faults); off, they neither hook their ledgers' writes nor read the file.
    @discardableResult
    public func up(topology: Topology, executable: String, timeoutSeconds: Double? = nil,
                   packing: Packing = .none, host: String? = nil, keys: String? = nil, crashPoints: Bool = false) throws -> ClusterRecord {
        if let existing = try? record(), existing.nodes.contains(where: { isOurNode($0.pid, id: $0.id) }) {
            throw SettleNetError(.cluster, "a cluster is already running in \(layout.root); run `settlenet cluster down --data-dir \(layout.root)` first")
        }
        let selected = try Cluster.nodes(of: topology, onHost: host)
        let busy = selected.compactMap { spec -> String? in
            let address = bindAddress(topology, spec.id)
            if let port = topology.port(of: spec.id), !PortProbe.isFree(host: address, port: port) { return "\(spec.id) (port \(port))" }
            if let port = topology.metricsPort(of: spec.id), !PortProbe.isFree(host: address, port: port) { return "\(spec.id) (metrics port \(port))" }
            return nil
        }
        if !busy.isEmpty {
            throw SettleNetError(.cluster, "ports already in use for nodes \(busy.prefix(20).joined(separator: ", "))\(busy.count > 20 ? " and \(busy.count - 20) more" : ""); pick another --base-port",
                               isPortConflict: true)
        }
        if let warning = Cluster.ephemeralOverlap(ports: selected.compactMap { topology.port(of: $0.id) }, basePort: topology.basePort) {
            log(warning)
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: layout.logsDirectory, withIntermediateDirectories: true)
        let topologyPath = URL(fileURLWithPath: topology.file).standardizedFileURL.path
        var started = ClusterRecord(topology: topologyPath, basePort: topology.basePort, executable: executable, nodes: [],
                                    packing: packing == .none ? nil : packing.description, host: host)
        if crashPoints { started.crashPoints = true }
        if topology.isSecured {
            started.keys = try prepareKeys(topology: topology, explicit: keys, nodes: selected).root
        }
        let groups = packing.groups(of: selected, in: topology)
        do {
            // Parents first, so children find their parent already bound (they retry anyway).
            for group in groups {
                for id in group.nodes { try? fm.removeItem(atPath: layout.statusPath(id)) }
                let pid = try spawn(group, record: started)
                let now = nowMs()
                for id in group.nodes {
                    started.nodes.append(.init(id: id.value, tier: topology.node(id)!.tier.rawValue, pid: pid, startedAtMs: now,
                                               process: packing == .none ? nil : group.name))
                }
            }
            try save(started)
            let timeout = timeoutSeconds ?? Cluster.defaultSignInTimeout(nodes: started.nodes.count)
            log("started \(started.nodes.count) nodes in \(groups.count) processes; waiting up to \(Int(timeout)) s for sign-in")
            try waitForSignIn(started.nodes, timeoutSeconds: timeout,
                              advice: "Everything started was stopped. On a busy or slow machine give cluster up a longer --timeout (now \(String(format: "%g", timeout)) s); otherwise the log tails below say what went wrong.")
        } catch {
            stop(started.nodes, graceSeconds: 3)
            var emptied = started
            emptied.nodes = []
            try? save(emptied)
            throw error
        }
        return started
    }

    /// The key directory a secured cluster uses, with a key for every node it starts. Only the
    /// cluster's own DATA_DIR/keys is filled in; a directory named by the operator is checked,
    /// never written (its keys may be shared with other hosts).
    private func prepareKeys(topology: Topology, explicit: String?, nodes: [NodeSpec]) throws -> KeyDirectory {
        let directory = KeyDirectory.location(topology: topology, explicit: explicit.map(Cluster.absolute),
                                              dataDirectory: Cluster.absolute(layout.root))
        if explicit == nil && topology.security?.keysDirectory == nil {
            let made = try directory.generate(for: KeyDirectory.names(in: topology))
            if made.created > 0 { log("made \(made.created) CURVE key pairs in \(directory.root)") }
        }
        for spec in nodes {
            do { _ = try NodeKeys(id: spec.id, topology: topology, keys: directory) } catch {
                throw SettleNetError(.cluster, "node \(spec.id): \(error)")
            }
        }
        return directory
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// The nodes placed on `host` (every node when nil); `default` names the nodes without a host.
    public static func nodes(of topology: Topology, onHost host: String?) throws -> [NodeSpec] {
        guard let host else { return topology.nodes }
        let names = Set(topology.nodes.map { $0.host ?? "default" })
        guard names.contains(host) else {
            throw SettleNetError(.cluster, "no node of \(topology.file) is placed on host \(host); its hosts are \(names.sorted().joined(separator: ", "))")
        }
        return topology.nodes.filter { ($0.host ?? "default") == host }
    }

    private func bindAddress(_ topology: Topology, _ id: DivisionCode) -> String {
        let address = topology.address(of: id) ?? topology.host
        return Topology.isIPAddress(address) && address != "*" ? address : "0.0.0.0"
    }

    /// Starts one process for `group`. A lone node's output is its log; a packed process's own
    /// output (start-up failures) goes to logs/process-<name>.log and its nodes log to their own files.
    private func spawn(_ group: Packing.Group, record: ClusterRecord) throws -> pid_t {
        var arguments = [record.executable, "node", "--topology", record.topology, "--data-dir", absoluteRoot,
                         "--base-port", String(record.basePort)]
        for id in group.nodes { arguments += ["--id", id.value] }
        if let keys = record.keys { arguments += ["--keys", keys] }
        if record.crashPoints == true { arguments.append("--crash-points") }
        let logPath = group.nodes.count == 1 ? layout.logPath(group.nodes[0]) : layout.processLogPath(group.name)
        return try Processes.spawn(arguments, logPath: logPath)
    }

    /// `advice`: what the operator can do when the wait runs out, printed with the failure.
    private func waitForSignIn(_ nodes: [ClusterRecord.NodeProcess], timeoutSeconds: Double, advice: String) throws {
        let started = Date()
        let deadline = started.addingTimeInterval(timeoutSeconds)
        var waiting = nodes
        var lastProgress = started
        // Large clusters: poll less often, so the wait does not compete with the booting nodes.
        let interval: useconds_t = nodes.count > 200 ? 250_000 : 50_000
        while true {
            // One liveness check per process, not per node.
            var alive: [Int32: Bool] = [:]
            for node in waiting where alive[node.pid] == nil { alive[node.pid] = isOurNode(node.pid, id: node.id) }
            let dead = waiting.filter { alive[$0.pid] == false }
            if !dead.isEmpty {
                let logs = tails(dead)
                // A port free when checked can be taken before the node binds it (another cluster starting).
                throw SettleNetError(.cluster, "node processes exited during start-up: \(dead.map(\.id).prefix(20).joined(separator: ", "))\(dead.count > 20 ? " and \(dead.count - 20) more" : "")\n"
                                   + logs, isPortConflict: logs.contains("cannot bind"))
            }
            waiting = waiting.filter { node in
                let status = readStatus(node.id)
                // Ready, and reported by this very process rather than an earlier one.
                guard let status, status.pid == node.pid else { return true }
                return !status.isReady
            }
            if waiting.isEmpty { return }
            if Date() >= deadline {
                throw SettleNetError(.cluster, "\(waiting.count) of \(nodes.count) nodes did not sign in within \(String(format: "%g", timeoutSeconds)) s: \(waiting.map(\.id).prefix(20).joined(separator: ", "))\(waiting.count > 20 ? " and \(waiting.count - 20) more" : "")\n"
                                   + advice + "\n" + tails(waiting))
            }
            if Date().timeIntervalSince(lastProgress) >= 5 {
                lastProgress = Date()
                log("\(nodes.count - waiting.count) of \(nodes.count) nodes signed in after \(Int(lastProgress.timeIntervalSince(started))) s")
            }
            usleep(interval)
        }
    }

    /// The last lines of the nodes' logs, and of their processes' own logs when packed.
    private func tails(_ nodes: [ClusterRecord.NodeProcess]) -> String {
        var paths: [String] = []
        for node in nodes.prefix(5) {
            if let process = node.process, !paths.contains(layout.processLogPath(process)) { paths.append(layout.processLogPath(process)) }
            if let code = DivisionCode(node.id) { paths.append(layout.logPath(code)) }
        }
        return paths.map { path in
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log)"
            let lines = text.split(separator: "\n").suffix(8).map { "    \($0)" }.joined(separator: "\n")
            return "--- \(path) (last lines)\n\(lines)"
        }.joined(separator: "\n")
    }

    // MARK: status

    public func record() throws -> ClusterRecord {
        guard let data = FileManager.default.contents(atPath: layout.clusterFile) else {
            throw SettleNetError(.cluster, "no cluster in \(layout.root) (\(layout.clusterFile) does not exist); start one with `settlenet cluster up`")
        }
        do {
            return try JSONDecoder().decode(ClusterRecord.self, from: data)
        } catch {
            throw SettleNetError(.cluster, "\(layout.clusterFile) is damaged: \(error)")
        }
    }

    private func save(_ record: ClusterRecord) throws {
        let encoder = JSONEncoder.settlenet()
        let data = try encoder.encode(record)
        let temporary = layout.clusterFile + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, layout.clusterFile) == 0 else {
            throw SettleNetError(.cluster, "cannot write \(layout.clusterFile)")
        }
    }

    public func readStatus(_ id: String) -> NodeStatus? {
        guard let code = DivisionCode(id) else { return nil }
        // A node rewrites its file in place: a read that met a write is read again.
        for _ in 0..<3 {
            guard let data = FileManager.default.contents(atPath: layout.statusPath(code)) else { return nil }
            if let status = try? JSONDecoder().decode(NodeStatus.self, from: data) { return status }
        }
        return nil
    }

    public func status() throws -> [NodeStatusRow] {
        var alive: [Int32: Bool] = [:]
        return try record().nodes.map { node in
            let up = alive[node.pid] ?? isOurNode(node.pid, id: node.id)
            alive[node.pid] = up
            let status = readStatus(node.id)
            let current = status?.pid == node.pid ? status : nil
            // A running node on a full disk refuses new work: that is what its operator must see.
            let state = current?.diskFullSinceMs != nil && current?.state == "running" ? "disk_full" : current?.state ?? "starting"
            return NodeStatusRow(node: node.id, tier: node.tier, pid: node.pid, up: up,
                                 signedIn: up && (current?.signedIn ?? false), state: up ? state : "down",
                                 messagesHandled: current?.messagesHandled ?? 0, pending: current?.pending ?? 0,
                                 endpoint: current?.endpoint ?? "", process: node.process ?? node.id)
        }
    }

    // MARK: restart

    /// Restarts the process hosting `id` (with the nodes packed beside it) and waits for their
    /// sign-in; returns the ids restarted.
    @discardableResult
    public func restart(node id: String, timeoutSeconds: Double? = nil) throws -> [String] {
        var current = try record()
        let mates = current.processMates(of: id)
        guard !mates.isEmpty else {
            throw SettleNetError(.cluster, "node \(id) is not part of the cluster in \(layout.root) (nodes: \(current.nodes.prefix(30).map(\.id).joined(separator: ", "))\(current.nodes.count > 30 ? ", ..." : ""))")
        }
        // The topology must still load before the node is stopped: a broken file would leave it down.
        let topology = try TopologyLoader.load(path: current.topology)
        stop(mates.map { current.nodes[$0] }, graceSeconds: 10)
        for index in mates { try? FileManager.default.removeItem(atPath: layout.statusPath(DivisionCode(current.nodes[index].id)!)) }
        try respawn(&current, indices: mates)
        let timeout = timeoutSeconds ?? Cluster.defaultSignInTimeout(nodes: mates.count)
        let pid = current.nodes[mates[0]].pid
        let deadline = Date().addingTimeInterval(timeout)
        try waitForSignIn(mates.map { current.nodes[$0] }, timeoutSeconds: timeout, advice: """
            The restarted process keeps running (pid \(pid)): its nodes may still sign in. Follow them with \
            `settlenet cluster status --data-dir \(layout.root)`, wait with \
            `settlenet cluster ready --data-dir \(layout.root) --node \(id) --wait 120`, or restart with a longer --timeout \
            (now \(String(format: "%g", timeout)) s).
            """)
        try waitForChildren(of: mates.map { current.nodes[$0] }, in: current, topology: topology, until: deadline)
        return mates.map { current.nodes[$0].id }
    }

    /// Waits until every running child of the restarted nodes has signed in to them again (its
    /// link is back): until then a restarted node cannot route to it. Within the restart's time.
    private func waitForChildren(of restarted: [ClusterRecord.NodeProcess], in record: ClusterRecord, topology: Topology,
                                 until deadline: Date) throws {
        let running = Dictionary(record.nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // How many children of each restarted node are running: decided once, then only status files are read.
        let expected: [(parent: String, children: Int)] = restarted.compactMap { node in
            guard let id = DivisionCode(node.id) else { return nil }
            let children = topology.children(of: id).filter { child in
                running[child.id.value].map { isOurNode($0.pid, id: $0.id) } ?? false
            }.count
            return children > 0 ? (node.id, children) : nil
        }
        while true {
            let waiting = expected.compactMap { parent, children -> (parent: String, children: Int, signedIn: Int)? in
                let signedIn = readStatus(parent)?.childrenSignedIn ?? 0
                return signedIn < children ? (parent, children, signedIn) : nil
            }
            guard let first = waiting.first else { return }
            if Date() >= deadline {
                let listed = waiting.prefix(10).map { "\($0.parent) (\($0.signedIn) of \($0.children) children)" }.joined(separator: ", ")
                throw SettleNetError(.cluster, "restarted and signed in, but not every child signed in to it again: \(listed). "
                                   + "Those children cannot be reached through it yet; see their logs, e.g. "
                                   + "`settlenet cluster logs --data-dir \(layout.root) --node \(first.parent)` and its children's.")
            }
            usleep(50_000)
        }
    }

    // MARK: faults

    /// The pid of a node's current process, if it runs.
    public func pid(of id: String) throws -> Int32? {
        try record().nodes.first { $0.id == id && isOurNode($0.pid, id: $0.id) }?.pid
    }

    /// SIGKILL a node's process: no graceful stop, as a crash would. A packed process takes the
    /// nodes beside it down too.
    public func kill(node id: String) throws {
        guard let pid = try pid(of: id) else { throw SettleNetError(.cluster, "node \(id) is not running in \(layout.root)") }
        Processes.signal(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while isOurNode(pid, id: id) && Date() < deadline { usleep(10_000) }
    }

    /// Starts a node that is not running (after a kill), without waiting for its sign-in.
    public func start(node id: String) throws {
        var current = try record()
        let mates = current.processMates(of: id)
        guard let first = mates.first else {
            throw SettleNetError(.cluster, "node \(id) is not part of the cluster in \(layout.root)")
        }
        guard !isOurNode(current.nodes[first].pid, id: id) else { return }
        try respawn(&current, indices: mates)
    }

    /// Starts the process of the nodes at `indices` (one process's nodes) again and saves its new pid.
    private func respawn(_ record: inout ClusterRecord, indices: [Int]) throws {
        let first = record.nodes[indices[0]]
        let group = Packing.Group(name: first.process ?? first.id, nodes: indices.map { DivisionCode(record.nodes[$0].id)! })
        let pid = try spawn(group, record: record)
        for index in indices {
            record.nodes[index].pid = pid
            record.nodes[index].startedAtMs = nowMs()
        }
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
        // One signal per process: packed nodes share theirs.
        var processes: [Int32: [ClusterRecord.NodeProcess]] = [:]
        for node in nodes { processes[node.pid, default: []].append(node) }
        let live = processes.filter { isOurNode($0.key, id: $0.value[0].id) }
        for pid in live.keys { Processes.signal(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(graceSeconds)
        var remaining = live
        while !remaining.isEmpty && Date() < deadline {
            usleep(20_000)
            remaining = remaining.filter { isOurNode($0.key, id: $0.value[0].id) }
        }
        for (pid, hosted) in remaining {
            log("node process \(hosted[0].process ?? hosted[0].id) (pid \(pid)) did not stop in \(Int(graceSeconds)) s: killing it")
            Processes.signal(pid, SIGKILL)
        }
        let killDeadline = Date().addingTimeInterval(5)
        while remaining.contains(where: { isOurNode($0.key, id: $0.value[0].id) }) && Date() < killDeadline {
            usleep(20_000)
        }
        return remaining.values.flatMap { $0.map(\.id) }.sorted()
    }

    private func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

// MARK: readiness (cluster ready, exported readiness probes)

extension Cluster {
    /// Why node `id` is not ready, or nil when it is: its status file says it signed in and holds
    /// the catalog, and the process that wrote it is alive.
    public func whyNotReady(_ id: String) -> String? {
        guard DivisionCode(id) != nil else { return "not a 6-digit division code" }
        guard let status = readStatus(id) else { return "no status file" }
        guard Processes.isAlive(status.pid) else { return "its process \(status.pid) is not running" }
        guard status.signedIn else { return "not signed in" }
        guard status.isReady else { return "no catalog yet" }
        return nil
    }

    /// The nodes of `ids` that are not ready (see `whyNotReady`), in the order given.
    public func notReady(nodes ids: [String]) -> [String] {
        ids.filter { whyNotReady($0) != nil }
    }

    /// Waits up to `timeoutSeconds` (polling every 200 ms) for every node of `ids` to be ready;
    /// returns those still not ready with the reason (empty when all are).
    public func waitUntilReady(nodes ids: [String], timeoutSeconds: Double) -> [(id: String, reason: String)] {
        let deadline = Date().addingTimeInterval(max(0, timeoutSeconds))
        var waiting = ids
        while true {
            let missing = waiting.compactMap { id in whyNotReady(id).map { (id: id, reason: $0) } }
            if missing.isEmpty || Date() >= deadline { return missing }
            waiting = missing.map(\.id)
            usleep(200_000)
        }
    }
}

/// Asks the operating system whether a TCP port can be bound.
enum PortProbe {
    static func isFree(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        // As libzmq binds: connections of a cluster just stopped linger in TIME_WAIT and must not
        // make its ports look taken.
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
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
    /// This machine's ephemeral port range (`ip_local_port_range`), from which outgoing
    /// connections take their local ports.
    public static func ephemeralPorts() -> ClosedRange<Int> {
        let bounds = ((try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "")
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        return bounds.count == 2 && bounds[0] <= bounds[1] ? bounds[0]...bounds[1] : 32_768...60_999
    }

    /// A warning when nodes' ports lie in the ephemeral range: an outgoing connection of any
    /// process (a node dialling its parent, a driver) may take one of them before its node binds
    /// it, and the node fails to start ("Address already in use").
    public static func ephemeralOverlap(ports: [Int], basePort: Int, range: ClosedRange<Int> = ephemeralPorts()) -> String? {
        let inside = ports.filter(range.contains)
        guard let low = inside.min(), let high = inside.max() else { return nil }
        return "warning: \(inside.count) node ports (\(low)-\(high)) lie in this machine's ephemeral port range "
            + "(\(range.lowerBound)-\(range.upperBound)), from which outgoing connections take ports: a node may find its port taken; "
            + "a --base-port of at most \(basePort - (high - range.lowerBound) - 1) keeps clear of it"
    }

    /// Where random base ports are drawn from: above the well-known and registered services most
    /// machines run, and below the kernel's ephemeral range. Outgoing connections take their
    /// local ports from that range, so a node bound inside it could find its port taken by any
    /// client on the machine (a test suite running beside it, say).
    static func candidateBases(span: Int) -> ClosedRange<Int> {
        let ephemeralStart = ephemeralPorts().lowerBound
        let below = 20_000...(ephemeralStart - span)
        return below.count >= 1_000 ? below : 20_000...(60_000 - span)
    }

    /// A base port with `count` free ports from it on `host`, drawn at random (for helpers such
    /// as the benchmark's relay chain that need ports of their own).
    public static func freePorts(_ count: Int, host: String = "127.0.0.1") -> Int? {
        for _ in 0..<200 {
            let base = Int.random(in: candidateBases(span: count))
            if (0..<count).allSatisfy({ PortProbe.isFree(host: host, port: base + $0) }) { return base }
        }
        return nil
    }

    /// A base port at which every node of `topology` can bind: the topology's own if free,
    /// otherwise a random one. Lets test suites and demos run side by side.
    public static func freeBasePort(for topology: Topology, preferOwn: Bool = true) -> Int? {
        // The nodes' ports, and their metrics endpoints' when the topology serves metrics.
        let offsets = Set(topology.nodes.map(\.portOffset) + topology.nodes.compactMap { spec in
            topology.metricsPortOffset.map { spec.portOffset + $0 }
        })
        let span = (offsets.max() ?? 0) + 1
        func allFree(_ base: Int) -> Bool {
            offsets.allSatisfy { PortProbe.isFree(host: topology.host, port: base + $0) }
        }
        if preferOwn && allFree(topology.basePort) { return topology.basePort }
        for _ in 0..<200 {
            let base = Int.random(in: candidateBases(span: span))
            if allFree(base) { return base }
        }
        return nil
    }
}
