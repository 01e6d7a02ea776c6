import Foundation
import SettlementModel
import SettlementCore

/// One node of a topology as the file declares it.
public struct NodeSpec: Equatable, Sendable {
    public var id: DivisionCode
    public var tier: Tier
    public var parent: DivisionCode?
    public var name: String
    /// Added to the cluster's base port to give this node's TCP port.
    public var portOffset: Int
    /// The settlement policy (province nodes only).
    public var policy: Policy?
    /// Institutions registered at this county: H + id + 00001 ... (county nodes only).
    public var hospitals: Int
    /// Synthetic insured persons of this county (county nodes only).
    public var population: Int
    /// The line of the node's entry in the file, for error messages.
    public var line: Int?
}

/// A validated network: a tree of nodes with policies and endpoints.
public struct Topology: Sendable {
    public var name: String
    /// Where the topology was read from.
    public var file: String
    /// The host every endpoint binds and connects to.
    public var host: String
    public var basePort: Int
    public var nodes: [NodeSpec]
    private var index: [DivisionCode: Int]

    init(name: String, file: String, host: String, basePort: Int, nodes: [NodeSpec]) {
        self.name = name
        self.file = file
        self.host = host
        self.basePort = basePort
        self.nodes = nodes
        index = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func node(_ id: DivisionCode) -> NodeSpec? { index[id].map { nodes[$0] } }

    /// The same topology with its endpoints moved to another base port (two clusters side by side).
    public func withBasePort(_ port: Int) -> Topology {
        var copy = self
        copy.basePort = port
        return copy
    }

    public func port(of id: DivisionCode) -> Int? { node(id).map { basePort + $0.portOffset } }

    /// The ZeroMQ endpoint a node binds and its children and hospitals connect to.
    public func endpoint(of id: DivisionCode) -> String? {
        port(of: id).map { "tcp://\(host):\($0)" }
    }

    public var routingTable: RoutingTable {
        RoutingTable(nodes: nodes.map { ($0.id, $0.tier, $0.parent) })
    }

    /// The policy of the province a node belongs to (the insured place's policy).
    public func policy(for id: DivisionCode) -> Policy? {
        var current = node(id)
        while let spec = current {
            if spec.tier == .province { return spec.policy }
            current = spec.parent.flatMap(node)
        }
        return nil
    }

    /// Institution codes registered at a county: H + division + 5-digit serial from 00001.
    public func institutions(of county: DivisionCode) -> [String] {
        guard let spec = node(county), spec.tier == .county else { return [] }
        return (1...max(1, spec.hospitals)).prefix(spec.hospitals).map { serial in
            let text = String(serial)
            return "H" + county.value + String(repeating: "0", count: 5 - text.count) + text
        }
    }

    public func population(of county: DivisionCode) -> SyntheticPopulation? {
        guard let spec = node(county), spec.tier == .county else { return nil }
        return SyntheticPopulation(county: county, size: spec.population)
    }

    public func children(of id: DivisionCode) -> [NodeSpec] { nodes.filter { $0.parent == id } }
    public var counties: [NodeSpec] { nodes.filter { $0.tier == .county } }

    /// The tree as indented text, for `topology show`.
    public func renderTree() -> String {
        var lines: [String] = ["\(name)  (\(nodes.count) nodes, \(file))"]
        func walk(_ spec: NodeSpec, depth: Int) {
            var line = String(repeating: "  ", count: depth) + "\(spec.id) \(spec.tier.rawValue) \(spec.name)"
            line += "  \(endpoint(of: spec.id) ?? "")"
            if spec.tier == .county { line += "  hospitals \(spec.hospitals), persons \(spec.population)" }
            if let policy = spec.policy {
                line += "  policy: deductible \(Money.yuanText(policy.deductibleFen)) yuan, pool \(policy.poolRatioOutpatientBp / 100)%/\(policy.poolRatioInpatientBp / 100)%, cap \(Money.yuanText(policy.annualCapFen)) yuan, acct_pay_in_fund \(policy.acctPayInFund)"
            }
            lines.append(line)
            for child in children(of: spec.id) { walk(child, depth: depth + 1) }
        }
        for root in nodes where root.parent == nil { walk(root, depth: 1) }
        return lines.joined(separator: "\n")
    }
}
