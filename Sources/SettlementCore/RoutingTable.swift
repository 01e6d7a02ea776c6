import SettlementModel

/// Where a message goes next from a given node.
public enum Hop: Equatable, Sendable {
    /// The message has arrived: this node is the destination.
    case here
    /// Up to this node's parent.
    case parent
    /// Down to the named child, on the path to the destination.
    case child(DivisionCode)
}

/// The tree of the network, read from the topology, answering routing questions purely.
/// Routing follows the tree's parent links, never code prefixes, so municipalities and
/// province-administered counties route like any other node.
public struct RoutingTable: Sendable {
    public struct Entry: Sendable {
        public let id: DivisionCode
        public let tier: Tier
        public let parent: DivisionCode?
    }

    private let entries: [DivisionCode: Entry]
    /// For each node, its ancestors from itself up to the root.
    private let chains: [DivisionCode: [DivisionCode]]

    /// Builds the table; `nodes` must form a tree (the topology validator checks that first).
    public init(nodes: [(id: DivisionCode, tier: Tier, parent: DivisionCode?)]) {
        var entries: [DivisionCode: Entry] = [:]
        for node in nodes { entries[node.id] = Entry(id: node.id, tier: node.tier, parent: node.parent) }
        var chains: [DivisionCode: [DivisionCode]] = [:]
        for id in entries.keys {
            var chain = [id]
            var current = entries[id]?.parent
            while let next = current, chain.count <= entries.count {
                chain.append(next)
                current = entries[next]?.parent
            }
            chains[id] = chain
        }
        self.entries = entries
        self.chains = chains
    }

    public func contains(_ id: DivisionCode) -> Bool { entries[id] != nil }
    public func tier(of id: DivisionCode) -> Tier? { entries[id]?.tier }
    public func parent(of id: DivisionCode) -> DivisionCode? { entries[id]?.parent }

    /// The path from `node` up to the root, starting with `node` itself.
    public func ancestors(of node: DivisionCode) -> [DivisionCode] { chains[node] ?? [] }

    /// The next hop from `node` towards `destination`; nil when either is unknown.
    public func nextHop(from node: DivisionCode, to destination: DivisionCode) -> Hop? {
        guard let destinationChain = chains[destination], chains[node] != nil else { return nil }
        if node == destination { return .here }
        guard let position = destinationChain.firstIndex(of: node) else { return .parent }
        return .child(destinationChain[position - 1])
    }

    /// The lowest common ancestor of two nodes.
    public func commonAncestor(_ a: DivisionCode, _ b: DivisionCode) -> DivisionCode? {
        guard let chainA = chains[a], let chainB = chains[b] else { return nil }
        // Chains are at most four long: a scan, not a set (a set per call was most of the time
        // a load planner took to class the 8 million pairs of the national network's counties).
        return chainA.first(where: chainB.contains)
    }

    /// The route class of a settlement treated in `treatment` for a person insured in `insured`.
    public func routeClass(treatment: DivisionCode, insured: DivisionCode) -> RouteClass? {
        guard let ancestor = commonAncestor(treatment, insured), let tier = tier(of: ancestor) else { return nil }
        switch tier {
        case .county: return .local
        case .city: return .intraCity
        case .province: return .intraProvince
        case .national: return .crossProvince
        }
    }

    /// The full path a request takes: up from `treatment` to the common ancestor, then down.
    public func path(from treatment: DivisionCode, to insured: DivisionCode) -> [DivisionCode] {
        guard let ancestor = commonAncestor(treatment, insured) else { return [] }
        let up = ancestors(of: treatment)
        let down = ancestors(of: insured)
        guard let upTo = up.firstIndex(of: ancestor), let downTo = down.firstIndex(of: ancestor) else { return [] }
        return Array(up[...upTo]) + Array(down[..<downTo].reversed())
    }

    /// Every node id in the table.
    public var nodeIDs: [DivisionCode] { entries.keys.sorted() }
}
