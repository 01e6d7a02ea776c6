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
    /// The named host (from the topology's `hosts`) this node runs on; inherited from the
    /// parent when the entry names none; nil for the topology's default host.
    public var host: String?
    /// The address peers use to reach this node, when it is not its host's (e.g. a Kubernetes
    /// service name).
    public var address: String?
    /// The line of the node's entry in the file, for error messages.
    public var line: Int?
}

/// The topology's `security:` section (docs/SECURITY.md).
public struct SecuritySettings: Equatable, Sendable {
    /// Every link CURVE-encrypted, every peer admitted by its public key.
    public var curve: Bool
    /// The key directory the topology names (absolute); nil: the cluster's data directory.
    public var keysDirectory: String?

    public init(curve: Bool, keysDirectory: String? = nil) {
        self.curve = curve
        self.keysDirectory = keysDirectory
    }
}

/// The topology's `edge:` section: each client connection's share of a node (docs/SECURITY.md).
/// Absent values keep the defaults (`EdgeLimits`: 2,000 messages/s, bursts of 2,000).
public struct EdgeSettings: Equatable, Sendable {
    public var clientRatePerS: Int?
    public var clientBurst: Int?

    public init(clientRatePerS: Int? = nil, clientBurst: Int? = nil) {
        self.clientRatePerS = clientRatePerS
        self.clientBurst = clientBurst
    }
}

/// A validated network: a tree of nodes with policies and endpoints.
public struct Topology: Sendable {
    public var name: String
    /// Where the topology was read from.
    public var file: String
    /// The address of nodes that name no host.
    public var host: String
    /// Named hosts and their addresses, for topologies spread over machines.
    public var hosts: [String: String]
    public var basePort: Int
    /// Link security; nil (or `curve: false`) for plaintext links.
    public var security: SecuritySettings?
    /// Whether links are CURVE-encrypted and authenticated.
    public var isSecured: Bool { security?.curve == true }
    /// Limits at the network's edge; nil: the defaults.
    public var edge: EdgeSettings?
    /// Where node processes serve their Prometheus metrics: this offset from each node's own port
    /// (`metrics_port` in the file); nil: no metrics endpoint (`metrics_port: off`, or absent).
    public var metricsPortOffset: Int?
    public private(set) var nodes: [NodeSpec]
    private var index: [DivisionCode: Int]
    private var childIndex: [DivisionCode: [Int]]
    /// Built once: a national topology has thousands of nodes and every packed node shares it.
    public let routingTable: RoutingTable

    init(name: String, file: String, host: String, hosts: [String: String] = [:], basePort: Int, nodes: [NodeSpec]) {
        self.name = name
        self.file = file
        self.host = host
        self.hosts = hosts
        self.basePort = basePort
        self.nodes = nodes
        index = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var children: [DivisionCode: [Int]] = [:]
        for (position, spec) in nodes.enumerated() { if let parent = spec.parent { children[parent, default: []].append(position) } }
        childIndex = children
        routingTable = RoutingTable(nodes: nodes.map { ($0.id, $0.tier, $0.parent) })
    }

    public func node(_ id: DivisionCode) -> NodeSpec? { index[id].map { nodes[$0] } }

    /// The same topology with its endpoints moved to another base port (two clusters side by side).
    public func withBasePort(_ port: Int) -> Topology {
        var copy = self
        copy.basePort = port
        return copy
    }

    public func port(of id: DivisionCode) -> Int? { node(id).map { basePort + $0.portOffset } }

    /// The port of the metrics endpoint a process hosting `id` first serves, or nil when the
    /// topology turns metrics off. A packed process serves one, at its first node's.
    public func metricsPort(of id: DivisionCode) -> Int? {
        guard let offset = metricsPortOffset, let port = port(of: id) else { return nil }
        return port + offset
    }

    /// The address peers reach a node at: its own, its host's, or the topology's default.
    public func address(of id: DivisionCode) -> String? { node(id).map(address(for:)) }

    func address(for spec: NodeSpec) -> String { spec.address ?? spec.host.flatMap { hosts[$0] } ?? host }

    /// The ZeroMQ endpoint its children and hospitals connect to.
    public func endpoint(of id: DivisionCode) -> String? {
        guard let address = address(of: id), let port = port(of: id) else { return nil }
        return "tcp://\(address):\(port)"
    }

    /// The endpoint a node binds: its address when that is an IP address, every interface when
    /// it is a name (a DNS or service name names a machine, not one of its interfaces).
    public func bindEndpoint(of id: DivisionCode) -> String? {
        guard let address = address(of: id), let port = port(of: id) else { return nil }
        return Topology.isIPAddress(address) ? "tcp://\(address):\(port)" : "tcp://*:\(port)"
    }

    public static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1 || text == "*"
    }

    /// The nodes placed on a named host.
    public func nodes(onHost name: String) -> [NodeSpec] { nodes.filter { $0.host == name } }

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

    public func children(of id: DivisionCode) -> [NodeSpec] { (childIndex[id] ?? []).map { nodes[$0] } }
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
