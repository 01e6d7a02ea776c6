import Persistence
import SettlementCore

/// Who carries the messages of nodes that run inside a simulation: instead of handing a message
/// to a neighbour at once, or writing it to a hospital's connection, a node gives it to its
/// courier, which delivers it later (`NodeShell.deliver`, or to the hospitals) as the simulated
/// link decides.
public protocol Courier: AnyObject {
    /// `frames` from `node` for its neighbour `to`: its parent when `upward` (the sender's
    /// routing id first), else one of its children.
    func carry(_ frames: [[UInt8]], from node: NodeShell, to neighbour: NodeShell, upward: Bool)
    /// An answer from a county for the hospital connected as `routingID`; false if none is.
    func answerHospital(_ frames: [[UInt8]], routingID: [UInt8], from node: NodeShell) -> Bool
}

/// Who makes the nodes' ledgers durable when they do not sync on their own thread: the sync
/// threads of a reactor (`CommitWriters`), or a simulation's disk. Each node has at most one
/// sync asked at a time; when it ends, `NodeShell.syncFinished` sends what it covered.
public protocol SyncService: AnyObject {
    /// Make what `ledger` has committed so far durable, for the node at `node` (its index).
    func submit(ledger: Ledger, node: Int)
}

extension CommitWriters: SyncService {
    func submit(ledger: Ledger, node: Int) { submit(Job(ledger: ledger, node: node)) }
}

extension NodeShell {
    /// Joins parents and children among `nodes` so that they hand their messages over in memory
    /// (a reactor's nodes, or a simulation's).
    public static func joinInMemory(_ nodes: [NodeShell]) {
        let byID = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0) })
        for node in nodes {
            precondition(node.parentInProcess == (node.spec.parent.flatMap { byID[$0] } != nil),
                         "node \(node.id): made with its parent \(node.parentInProcess ? "in" : "outside") this process, but it is not")
            guard let parentID = node.spec.parent, let parent = byID[parentID] else { continue }
            node.localParent = parent
            parent.localChildren[node.routingID] = node
        }
    }

    /// Puts `node` (a node started again) in its place among its neighbours in memory.
    public static func rejoin(_ node: NodeShell, parent: NodeShell?, children: [NodeShell]) {
        node.localParent = parent
        parent?.localChildren[node.routingID] = node
        for child in children {
            child.localParent = node
            node.localChildren[child.routingID] = child
        }
    }

    /// A simulated crash of this node: it stops at once, and its ledger loses what no simulated
    /// sync covered (`Ledger.simulateCrash`). Start it again as a new `NodeShell` on the same data.
    /// Returns how many frames of its ledger's log were lost (committed, never synced).
    public func crash() throws -> Int {
        guard simulated else { preconditionFailure("node \(id): only a simulated node can crash on purpose") }
        stop()
        return try ledger.simulateCrash()
    }

    /// A simulated failing disk under this node's ledger: while set, every commit fails.
    public var diskFails: Bool {
        get { ledger.simulatedDiskFails }
        set { ledger.simulatedDiskFails = newValue }
    }

    /// The link faults in force in a simulation (each applies to the node it leaves from).
    public func setLinkFaults(_ all: [LinkFault]) { links.replace(with: all) }

    /// Writes the link-fault decisions not yet in this node's trace file.
    public func flushLinkTrace() { links.flushTrace(logger: logger) }

    /// A simulated sync of this node's ledger begins: what it will cover.
    public func simulatedSyncBegins() -> Int { ledger.simulatedSyncBegins() }

    /// The simulated sync begun at `frames` is over.
    public func simulatedSyncEnded(covering frames: Int) { ledger.simulatedSyncEnded(covering: frames) }

    /// A digest of everything this node's ledger holds (`Ledger.contentDigest`).
    /// A node killed and not started again is read from what its ledger kept.
    public func ledgerDigest() throws -> String {
        try (ledger.crashed ? Ledger(path: ledger.path, syncsToDisk: false) : ledger).contentDigest()
    }

    /// Closes this node's ledger, its log copied back into the database: a simulated ledger is
    /// the simulation's alone (an exclusive lock, its log in memory) until then. A node killed
    /// and not started again has its ledger opened once more, for SQLite to recover what its
    /// log kept, and closed.
    public func closeLedger() throws {
        if ledger.crashed { try Ledger(path: ledger.path, syncsToDisk: false).close() } else { try ledger.close() }
    }

    /// Leaves the simulation: no courier, no sync service. The sync service holds the nodes,
    /// and a node holding it back kept every node, and its ledger's files, alive after the run.
    public func leaveSimulation() {
        courier = nil
        committer = nil
    }

    /// A simulation's sync service for this node, at `index`.
    public func syncWith(_ service: any SyncService, index: Int) { committer = (service, index) }
}
