import NetworkTopology
import SettlementModel

/// How a cluster's nodes are spread over OS processes (`cluster up --pack`).
public enum Packing: Equatable, Sendable, CustomStringConvertible {
    /// One process per node (the default).
    case none
    /// The national node alone; per province one process for the province node, one for its
    /// cities, one for its counties.
    case provinceTier
    /// The national node alone; one process per province with all its nodes.
    case province
    /// At most N nodes per process, in the topology file's order.
    case maxNodes(Int)

    /// Parses `none`, `province-tier`, `province` or a number of nodes per process.
    public init?(_ text: String) {
        switch text {
        case "none": self = .none
        case "province-tier": self = .provinceTier
        case "province": self = .province
        default:
            guard let count = Int(text), count >= 1 else { return nil }
            self = count == 1 ? .none : .maxNodes(count)
        }
    }

    public static let help = "none (one process per node), province-tier (per province: one process each for the province, its cities, its counties), province (one process per province), or N (at most N nodes per process)"

    public var description: String {
        switch self {
        case .none: "none"
        case .provinceTier: "province-tier"
        case .province: "province"
        case .maxNodes(let count): String(count)
        }
    }

    /// One process to start: its name (for logs and status) and the nodes it hosts.
    public struct Group: Sendable, Equatable {
        public var name: String
        public var nodes: [DivisionCode]
    }

    /// The processes for `nodes` (a subset of `topology`'s, e.g. one host's), parents' first.
    public func groups(of nodes: [NodeSpec], in topology: Topology) -> [Group] {
        let ordered = nodes.enumerated().sorted { ($0.element.tier.depth, $0.offset) < ($1.element.tier.depth, $1.offset) }.map(\.element)
        func province(of spec: NodeSpec) -> String {
            topology.routingTable.ancestors(of: spec.id).first { topology.routingTable.tier(of: $0) == .province }?.value ?? spec.id.value
        }
        var groups: [Group] = []
        var positions: [String: Int] = [:]
        func add(_ name: String, _ id: DivisionCode) {
            if let position = positions[name] { groups[position].nodes.append(id); return }
            positions[name] = groups.count
            groups.append(Group(name: name, nodes: [id]))
        }
        switch self {
        case .none:
            for spec in ordered { add(spec.id.value, spec.id) }
        case .provinceTier:
            for spec in ordered {
                switch spec.tier {
                case .national: add(spec.id.value, spec.id)
                case .province: add("\(spec.id.value)-province", spec.id)
                case .city: add("\(province(of: spec))-cities", spec.id)
                case .county: add("\(province(of: spec))-counties", spec.id)
                }
            }
        case .province:
            for spec in ordered { add(spec.tier == .national ? spec.id.value : province(of: spec), spec.id) }
        case .maxNodes(let count):
            // File order keeps a province's nodes together; the national node comes first.
            let fileOrder = nodes.sorted { ($0.tier == .national ? 0 : 1, $0.line ?? 0) < ($1.tier == .national ? 0 : 1, $1.line ?? 0) }
            for (position, spec) in fileOrder.enumerated() {
                add("pack-\(String(format: "%03d", position / count + 1))", spec.id)
            }
        }
        return groups
    }
}
