/// Where a cluster keeps its files under its data directory:
///
///     DIR/cluster.json            what `cluster up` started (topology, base port, pids)
///     DIR/nodes/<id>/ledger.sqlite  the node's ledger (WAL)
///     DIR/nodes/<id>/status.json    the node's own report: pid, signed in, messages handled
///     DIR/nodes/<id>/link-decisions.jsonl  what the node's link faults did to its messages
///     DIR/logs/<id>.log           the node's log
///     DIR/logs/process-<name>.log  a packed process's own output (start-up failures)
///     DIR/keys/{public,secret}/<name>.key  CURVE keys of a secured cluster, when no other directory is named
public struct DataLayout: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    public var clusterFile: String { "\(root)/cluster.json" }
    public var logsDirectory: String { "\(root)/logs" }
    public var keysDirectory: String { "\(root)/keys" }
    public func nodeDirectory(_ id: DivisionCode) -> String { "\(root)/nodes/\(id.value)" }
    public func ledgerPath(_ id: DivisionCode) -> String { "\(nodeDirectory(id))/ledger.sqlite" }
    public func statusPath(_ id: DivisionCode) -> String { "\(nodeDirectory(id))/status.json" }
    public func logPath(_ id: DivisionCode) -> String { "\(logsDirectory)/\(id.value).log" }
    public func processLogPath(_ name: String) -> String { "\(logsDirectory)/process-\(name).log" }
    /// One JSON line per message a link fault decided, appended by the sending node.
    public func linkDecisionsPath(_ id: DivisionCode) -> String { "\(nodeDirectory(id))/link-decisions.jsonl" }
    /// The link faults in force (written by the scenario runner, read by every node).
    public var linkFaultsFile: String { "\(root)/link-faults.json" }
    /// The crash points armed (`CrashArming`, written by the scenario runner, read by every node).
    public var crashPointsFile: String { "\(root)/crash-points.json" }
}

/// Where in its commit cycle a node can be made to crash (SIGKILL), for a scenario's `crash`
/// fault: the instants where a crash could leave a ledger or a message half done.
public enum CrashPoint: String, CaseIterable, Codable, Sendable {
    /// A round's statements ran in its transaction; its COMMIT did not.
    case beforeCommit = "before_commit"
    /// In the middle of the commit: part of it written to the log, its last frame not.
    case inCommit = "in_commit"
    /// The round is durable (its sync done); its answers and requests not sent.
    case afterSync = "after_sync"
    /// Its answers and requests handed to the sockets, just sent.
    case afterSend = "after_send"
}

/// A crash point armed in one node process: it crashes the `after`-th time it passes `point`
/// (counting only passes with work: a round committed, answers to send). `pid` ties it to the
/// process it was armed in, so that the process started after the crash ignores it.
public struct CrashArming: Codable, Equatable, Sendable {
    public var node: String
    public var pid: Int32
    public var point: CrashPoint
    public var after: Int

    public init(node: String, pid: Int32, point: CrashPoint, after: Int) {
        self.node = node; self.pid = pid; self.point = point; self.after = after
    }
}

/// A node's report of itself, rewritten atomically when it changes (at most 4 times a second).
public struct NodeStatus: Codable, Equatable, Sendable {
    public var id: String
    public var tier: String
    public var pid: Int32
    public var endpoint: String
    public var state: String           // starting, running, draining, stopped
    public var signedIn: Bool
    public var signNo: String
    /// The catalog version the node holds (empty until downloaded): a node is ready for
    /// uploads once it has one.
    public var catalogVersion: String
    public var startedAtMs: Int64
    public var updatedAtMs: Int64
    public var messagesHandled: Int64
    public var pending: Int
    /// Settlements in doubt this node is still resolving (origin county).
    public var resolving: Int?
    /// Children that signed in to this run of the node (after a restart, each signs in again
    /// when its link is back): `cluster restart` waits for those that are running.
    public var childrenSignedIn: Int?
    /// Messages this node handed to its parent or a child in the same process, in memory rather
    /// than over TCP (nil from a node that predates in-process hops).
    public var handedOverInMemory: Int64?
    /// Messages this node sent on as they were received, without encoding them again.
    public var passedThrough: Int64?
    /// Ledger commits (each one sync) since the node started: messages handled per commit is
    /// how well its rounds gather work.
    public var commits: Int64?
    /// Ledger syncs of 50 ms or more since the node started (the disk stalling; `ledger sync
    /// slow` in its log).
    public var slowSyncs: Int64?
    /// Where the node's process serves its Prometheus metrics; nil when it serves none.
    public var metrics: String?
    /// Since when the disk under its ledger has been full (new work refused, SN-E3008); nil
    /// while it has room.
    public var diskFullSinceMs: Int64?

    /// Ready for work: signed in to its parent and holding the catalog (1301).
    public var isReady: Bool { signedIn && !catalogVersion.isEmpty }

    public init(id: String, tier: String, pid: Int32, endpoint: String, state: String, signedIn: Bool,
                signNo: String, catalogVersion: String, startedAtMs: Int64, updatedAtMs: Int64, messagesHandled: Int64, pending: Int) {
        self.id = id
        self.tier = tier
        self.pid = pid
        self.endpoint = endpoint
        self.state = state
        self.signedIn = signedIn
        self.signNo = signNo
        self.catalogVersion = catalogVersion
        self.startedAtMs = startedAtMs
        self.updatedAtMs = updatedAtMs
        self.messagesHandled = messagesHandled
        self.pending = pending
    }
}
