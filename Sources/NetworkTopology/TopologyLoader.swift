import Foundation
import SettlementModel
import Yams

/// Reads and validates topology files. Every problem is reported with the file, line, node
/// and field, all at once, before anything is launched.
public enum TopologyLoader {
    public static func load(path: String) throws(FileProblems) -> Topology {
        try parse(readTextFile(path, kind: "topology"), file: path)
    }

    static let topKeys: Set<String> = ["name", "description", "host", "hosts", "base_port", "defaults", "nodes", "security", "edge", "metrics_port"]
    static let securityKeys: Set<String> = ["curve", "keys"]
    static let edgeKeys: Set<String> = ["client_rate_per_s", "client_burst"]
    static let hostKeys: Set<String> = ["name", "address"]
    static let defaultKeys: Set<String> = ["hospitals", "population"]
    static let nodeKeys: Set<String> = ["id", "tier", "parent", "name", "port", "policy", "hospitals", "population", "host", "address"]
    static let policyKeys: Set<String> = ["deductible_yuan", "pool_ratio_outpatient", "pool_ratio_inpatient",
                                          "annual_cap_yuan", "large_amount_ratio", "acct_pay_in_fund"]

    public static func parse(_ text: String, file: String) throws(FileProblems) -> Topology {
        let root = try composeYAML(text, file: file)
        var problems: [FileProblem] = []
        guard let top = YAMLMap(root, path: "", file: file, problems: &problems) else { throw FileProblems(problems) }
        top.rejectUnknownKeys(topKeys, subject: nil, problems: &problems)
        let name = top.scalar("name", subject: nil, required: true, problems: &problems) ?? "unnamed"
        let host = top.scalar("host", subject: nil, required: false, problems: &problems) ?? "127.0.0.1"
        let basePort = top.int("base_port", subject: nil, required: true, range: 1...65_535, problems: &problems) ?? 1

        var hosts: [String: String] = [:]
        if let hostsNode = top.node("hosts") {
            if case .sequence(let sequence) = hostsNode {
                for (position, item) in sequence.enumerated() {
                    guard let map = YAMLMap(item, path: "hosts[\(position)]", file: file, problems: &problems) else { continue }
                    map.rejectUnknownKeys(hostKeys, subject: nil, problems: &problems)
                    guard let hostName = map.scalar("name", subject: nil, required: true, problems: &problems),
                          let address = map.scalar("address", subject: nil, required: true, problems: &problems) else { continue }
                    if hosts[hostName] != nil {
                        problems.append(FileProblem(file: file, line: map.line, field: "hosts[\(position)].name", message: "duplicate host name \(hostName)"))
                    }
                    hosts[hostName] = address
                }
            } else {
                problems.append(FileProblem(file: file, line: hostsNode.mark?.line, field: "hosts", message: "expected a list of { name, address }"))
            }
        }

        var security: SecuritySettings?
        if let securityNode = top.node("security"),
           let map = YAMLMap(securityNode, path: "security", file: file, problems: &problems) {
            map.rejectUnknownKeys(securityKeys, subject: nil, problems: &problems)
            let curve = map.bool("curve", subject: nil, problems: &problems)
            if curve == nil && map.node("curve") == nil {
                problems.append(FileProblem(file: file, line: map.line, field: "security.curve",
                                            message: "required but missing (true: every link CURVE-encrypted and authenticated)"))
            }
            // A relative key directory is relative to the topology file, wherever the command runs.
            let keys = map.scalar("keys", subject: nil, required: false, problems: &problems).map { path in
                path.hasPrefix("/") ? path : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.path
            }
            security = SecuritySettings(curve: curve ?? false, keysDirectory: keys)
        }

        var edge: EdgeSettings?
        if let edgeNode = top.node("edge"), let map = YAMLMap(edgeNode, path: "edge", file: file, problems: &problems) {
            map.rejectUnknownKeys(edgeKeys, subject: nil, problems: &problems)
            edge = EdgeSettings(
                clientRatePerS: map.int("client_rate_per_s", subject: nil, required: false, range: 1...1_000_000, problems: &problems),
                clientBurst: map.int("client_burst", subject: nil, required: false, range: 1...1_000_000, problems: &problems))
        }

        // metrics_port: an offset from each node's port, or off.
        var metricsPortOffset: Int?
        if let text = top.scalar("metrics_port", subject: nil, required: false, problems: &problems), text != "off" {
            if let offset = Int(text), (1...65_535).contains(offset) {
                metricsPortOffset = offset
            } else {
                problems.append(FileProblem(file: file, line: top.node("metrics_port")?.mark?.line, field: "metrics_port",
                                            message: "expected an offset from each node's port (1 to 65535) or off, not \"\(text)\""))
            }
        }

        var defaultHospitals = 3, defaultPopulation = 1_000
        if let defaultsNode = top.node("defaults"),
           let defaults = YAMLMap(defaultsNode, path: "defaults", file: file, problems: &problems) {
            defaults.rejectUnknownKeys(defaultKeys, subject: nil, problems: &problems)
            defaultHospitals = defaults.int("hospitals", subject: nil, required: false, range: 1...99_999, problems: &problems) ?? defaultHospitals
            defaultPopulation = defaults.int("population", subject: nil, required: false, range: 1...10_000_000, problems: &problems) ?? defaultPopulation
        }

        var specs: [NodeSpec] = []
        if let nodesNode = top.node("nodes") {
            if case .sequence(let sequence) = nodesNode {
                for (position, item) in sequence.enumerated() {
                    if let spec = parseNode(item, position: position, file: file, hospitals: defaultHospitals,
                                            population: defaultPopulation, problems: &problems) {
                        specs.append(spec)
                    }
                }
            } else {
                problems.append(FileProblem(file: file, line: nodesNode.mark?.line, field: "nodes", message: "expected a list of nodes"))
            }
        } else {
            problems.append(FileProblem(file: file, line: nil, field: "nodes", message: "required but missing"))
        }
        // A node without a host of its own runs where its parent runs.
        let positions = Dictionary(specs.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        for position in specs.indices where specs[position].host == nil {
            var ancestor = specs[position].parent.flatMap { positions[$0] }
            var steps = 0
            while let current = ancestor, steps < 8 {
                if let inherited = specs[current].host { specs[position].host = inherited; break }
                ancestor = specs[current].parent.flatMap { positions[$0] }
                steps += 1
            }
        }
        var topology = Topology(name: name, file: file, host: host, hosts: hosts, basePort: basePort, nodes: specs)
        topology.security = security
        topology.edge = edge
        topology.metricsPortOffset = metricsPortOffset
        problems += TopologyValidator.problems(in: topology)
        if !problems.isEmpty { throw FileProblems(problems) }
        return topology
    }

    private static func parseNode(_ item: Node, position: Int, file: String, hospitals: Int, population: Int,
                                  problems: inout [FileProblem]) -> NodeSpec? {
        let path = "nodes[\(position)]"
        guard let map = YAMLMap(item, path: path, file: file, problems: &problems) else { return nil }
        let idText = map.scalar("id", subject: nil, required: true, problems: &problems)
        let subject = idText.map { "node \($0)" } ?? "\(path)"
        map.rejectUnknownKeys(nodeKeys, subject: subject, problems: &problems)
        var ok = true
        var id: DivisionCode?
        if let idText {
            id = DivisionCode(idText)
            if id == nil {
                problems.append(FileProblem(file: file, line: map.lineOf("id"), subject: subject, field: "\(path).id",
                                            message: "\"\(idText)\" is not a 6-digit division code (quote it: id: \"370211\")"))
            }
        }
        var tier: Tier?
        if let tierText = map.scalar("tier", subject: subject, required: true, problems: &problems) {
            tier = Tier(rawValue: tierText)
            if tier == nil {
                problems.append(FileProblem(file: file, line: map.lineOf("tier"), subject: subject, field: "\(path).tier",
                                            message: "\"\(tierText)\" is not one of national, province, city, county"))
            }
        }
        var parent: DivisionCode?
        if let parentText = map.scalar("parent", subject: subject, required: false, problems: &problems) {
            parent = DivisionCode(parentText)
            if parent == nil {
                problems.append(FileProblem(file: file, line: map.lineOf("parent"), subject: subject, field: "\(path).parent",
                                            message: "\"\(parentText)\" is not a 6-digit division code"))
                ok = false
            }
        }
        let name = map.scalar("name", subject: subject, required: false, problems: &problems) ?? ""
        let port = map.int("port", subject: subject, required: true, range: 0...60_000, problems: &problems)
        let nodeHospitals = map.int("hospitals", subject: subject, required: false, range: 1...99_999, problems: &problems)
        let nodePopulation = map.int("population", subject: subject, required: false, range: 1...10_000_000, problems: &problems)
        let host = map.scalar("host", subject: subject, required: false, problems: &problems)
        let address = map.scalar("address", subject: subject, required: false, problems: &problems)
        var policy: Policy?
        if let policyNode = map.node("policy") {
            policy = parsePolicy(policyNode, path: "\(path).policy", subject: subject, file: file, problems: &problems)
            if policy == nil { ok = false }
        }
        if tier != .county && (nodeHospitals != nil || nodePopulation != nil) {
            problems.append(FileProblem(file: file, line: map.lineOf(nodeHospitals != nil ? "hospitals" : "population"),
                                        subject: subject, field: "\(path).\(nodeHospitals != nil ? "hospitals" : "population")",
                                        message: "only county nodes have hospitals and insured persons"))
        }
        guard ok, let id, let tier, let port else { return nil }
        return NodeSpec(id: id, tier: tier, parent: parent, name: name, portOffset: port, policy: policy,
                        hospitals: tier == .county ? (nodeHospitals ?? hospitals) : 0,
                        population: tier == .county ? (nodePopulation ?? population) : 0,
                        host: host, address: address, line: item.mark?.line)
    }

    private static func parsePolicy(_ node: Node, path: String, subject: String, file: String,
                                    problems: inout [FileProblem]) -> Policy? {
        guard let map = YAMLMap(node, path: path, file: file, problems: &problems) else { return nil }
        map.rejectUnknownKeys(policyKeys, subject: subject, problems: &problems)
        let before = problems.count
        func yuan(_ key: String) -> Int64? {
            guard let text = map.scalar(key, subject: subject, required: true, problems: &problems) else { return nil }
            guard let fen = Money.fen(fromYuan: text) else {
                problems.append(FileProblem(file: file, line: map.lineOf(key), subject: subject, field: "\(path).\(key)",
                                            message: "\"\(text)\" is not an amount in yuan with at most 2 decimals"))
                return nil
            }
            return fen
        }
        func ratio(_ key: String) -> Int64? {
            guard let text = map.scalar(key, subject: subject, required: true, problems: &problems) else { return nil }
            guard let points = Money.basisPoints(fromRatio: text) else {
                problems.append(FileProblem(file: file, line: map.lineOf(key), subject: subject, field: "\(path).\(key)",
                                            message: "\"\(text)\" is not a ratio from 0 to 1 with at most 4 decimals"))
                return nil
            }
            return points
        }
        let deductible = yuan("deductible_yuan")
        let outpatient = ratio("pool_ratio_outpatient")
        let inpatient = ratio("pool_ratio_inpatient")
        let cap = yuan("annual_cap_yuan")
        let large = ratio("large_amount_ratio")
        let acctInFund = map.bool("acct_pay_in_fund", subject: subject, problems: &problems) ?? false
        guard problems.count == before, let deductible, let outpatient, let inpatient, let cap, let large else { return nil }
        return Policy(deductibleFen: deductible, poolRatioOutpatientBp: outpatient, poolRatioInpatientBp: inpatient,
                      annualCapFen: cap, largeAmountRatioBp: large, acctPayInFund: acctInFund)
    }
}

/// The structural rules of a topology, checked after parsing.
public enum TopologyValidator {
    public static func problems(in topology: Topology) -> [FileProblem] {
        var problems: [FileProblem] = []
        let file = topology.file
        func add(_ spec: NodeSpec, _ field: String, _ message: String) {
            problems.append(FileProblem(file: file, line: spec.line, subject: "node \(spec.id)", field: field, message: message))
        }
        var seen: [DivisionCode: NodeSpec] = [:]
        for spec in topology.nodes {
            if let first = seen[spec.id] {
                add(spec, "id", "duplicate id: already declared at line \(first.line.map(String.init) ?? "?")")
            } else {
                seen[spec.id] = spec
            }
        }
        let nationals = topology.nodes.filter { $0.tier == .national }
        if nationals.count != 1 {
            problems.append(FileProblem(file: file, line: nil, field: "nodes",
                                        message: "expected exactly one national node, found \(nationals.count)"))
        }
        if let offset = topology.metricsPortOffset {
            // Above every node's port, so that no metrics endpoint takes a node's port.
            let highest = topology.nodes.map(\.portOffset).max() ?? 0
            if offset <= highest {
                problems.append(FileProblem(file: file, line: nil, field: "metrics_port",
                                            message: "\(offset) must be above the highest node port (\(highest)): the metrics ports are each node's port + \(offset)"))
            } else if topology.basePort + highest + offset > 65_535 {
                problems.append(FileProblem(file: file, line: nil, field: "metrics_port",
                                            message: "base_port \(topology.basePort) + port \(highest) + metrics_port \(offset) is beyond 65535"))
            }
        }
        var ports: [String: NodeSpec] = [:]
        for spec in topology.nodes {
            let id = spec.id.value
            switch spec.tier {
            case .national:
                if spec.parent != nil { add(spec, "parent", "the national node has no parent") }
                if !id.hasSuffix("0000") && id != "000000" { add(spec, "id", "a national code ends in 0000") }
            case .province:
                if !id.hasSuffix("0000") { add(spec, "id", "a province code is 2 digits then 0000 (e.g. 370000)") }
            case .city:
                if !id.hasSuffix("00") || id.hasSuffix("0000") { add(spec, "id", "a city code is 4 digits then 00 (e.g. 370200)") }
            case .county:
                if id.hasSuffix("00") { add(spec, "id", "a county code does not end in 00 (e.g. 370211)") }
            }
            if spec.tier != .national {
                if let parentID = spec.parent {
                    if let parent = seen[parentID] {
                        if parent.tier.depth != spec.tier.depth - 1 {
                            add(spec, "parent", "wrong tier order: a \(spec.tier.rawValue) sits under a \(spec.tier == .province ? "national" : spec.tier == .city ? "province" : "city") node, but \(parentID) is \(parent.tier.rawValue)")
                        } else if spec.tier != .province {
                            let digits = spec.tier == .city ? 2 : 4
                            // The Corps (660000) has no division code of its own: its units keep Xinjiang's 65.
                            let corpsUnit = spec.tier == .city && parentID.value == TopologyGenerator.corpsCode + "0000"
                                && spec.id.value.hasPrefix("65")
                            if spec.id.prefix(digits) != parentID.prefix(digits) && !corpsUnit {
                                add(spec, "id", "code does not sit under its parent's prefix \(parentID.prefix(digits)) (parent \(parentID))")
                            }
                        }
                    } else {
                        add(spec, "parent", "unknown parent \(parentID)")
                    }
                } else {
                    add(spec, "parent", "required for a \(spec.tier.rawValue) node")
                }
            }
            if spec.tier == .province && spec.policy == nil {
                add(spec, "policy", "missing policy: a province node sets deductible_yuan, pool_ratio_outpatient, pool_ratio_inpatient, annual_cap_yuan, large_amount_ratio, acct_pay_in_fund")
            }
            if spec.tier != .province && spec.policy != nil {
                add(spec, "policy", "only province nodes carry a policy")
            }
            if let hostName = spec.host, topology.hosts[hostName] == nil {
                add(spec, "host", "unknown host \(hostName): the topology's hosts are \(topology.hosts.keys.sorted().joined(separator: ", ").isEmpty ? "none" : topology.hosts.keys.sorted().joined(separator: ", "))")
            }
            let port = topology.basePort + spec.portOffset
            let endpoint = "tcp://\(topology.address(for: spec)):\(port)"
            if port > 65_535 {
                add(spec, "port", "base_port \(topology.basePort) + port \(spec.portOffset) is beyond 65535")
            } else if let other = ports[endpoint] {
                add(spec, "port", "endpoint collision: \(endpoint) is also node \(other.id)'s")
            } else {
                ports[endpoint] = spec
            }
        }
        return problems
    }
}
