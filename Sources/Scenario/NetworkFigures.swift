import Foundation
import Histogram
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

/// The network as a run left it (report.json `network`, drawn in report.html): the time answers
/// spent per hop, by pair of tiers; each node's load and errors; and the path of each route
/// class. Read from the ledgers after the run.
///
/// A hop's time comes from the nodes' own timing of their transits (`TransitRecord.heldUs`:
/// from a request's arrival at a node to its answer's record there, on that node's clock). On
/// a path, a node's time less its next node's is the hop between them: both links, the next
/// node's sync before it answers, and the rounds each waited. No two clocks are compared, so it
/// holds across machines.
public struct NetworkFigures: Codable, Sendable, Equatable {
    public struct Leg: Codable, Sendable, Equatable {
        /// The pair of tiers in the request's direction, e.g. "county→city" or "national→province".
        public var pair: String
        /// Hops timed.
        public var hops: Int
        public var latencyMs: LatencySummary

        enum CodingKeys: String, CodingKey {
            case pair, hops
            case latencyMs = "latency_ms"
        }
    }

    public struct Node: Codable, Sendable, Equatable {
        public var id: String
        public var tier: String
        public var parent: String?
        public var name: String
        /// Settlements (2207, 2304) recorded here: passed through, decided or sent.
        public var settlements: Int
        /// Of those, the ones that ended refused or unknown.
        public var errors: Int
        /// Nodes summed into this entry: 1, or a province's whole subtree.
        public var nodes: Int
    }

    /// Every pair of tiers seen, in the order a cross-province settlement meets them.
    public var legs: [Leg]
    /// 1: every settlement timed; k: one in k, picked by a hash of its msgid (a big run).
    public var sampledOneIn: Int
    /// Every node, or (past `perNodeLimit`) the national node and one entry per province.
    public var nodes: [Node]
    public var summarisedByProvince: Bool
    /// For each route class seen: the path of its most frequent treatment and insured pair, as
    /// node ids (the province ids when summarised).
    public var routes: [String: [String]]

    enum CodingKeys: String, CodingKey {
        case legs, nodes, routes
        case sampledOneIn = "sampled_one_in"
        case summarisedByProvince = "summarised_by_province"
    }

    /// Up to this many nodes are drawn one by one.
    public static let perNodeLimit = 200
    /// Settlements timed at most (a sample beyond).
    public static let timedLimit = 200_000
    static let pairOrder = ["county→city", "city→province", "province→national", "national→province", "province→city", "city→county"]

    /// Reads every node's ledger in `dataDirectory`; `settlements`: about how many the run sent
    /// (it sets the sample). `closed`: no process has the ledgers open (a stopped simulation's),
    /// so each is read as it is (`Ledger.readClosed`); else they are read as a cluster runs.
    public static func read(topology: Topology, dataDirectory: String, settlements: Int, closed: Bool = false,
                            perNodeLimit: Int = perNodeLimit) throws -> NetworkFigures {
        let layout = DataLayout(root: dataDirectory)
        let sampledOneIn = max(1, settlements / timedLimit)
        let keep: (String) -> Bool = { msgid in
            sampledOneIn == 1 || XXH64.hash(Array(msgid.utf8)) % UInt64(sampledOneIn) == 0
        }
        var held: [DivisionCode: [String: Int64]] = [:]
        var perNode: [DivisionCode: (settlements: Int, errors: Int)] = [:]
        var timedAtOrigin: [(msgid: String, treatment: DivisionCode, insured: DivisionCode)] = []
        var pairs: [String: [String: Int]] = [:]   // route class -> "treatment insured" -> count
        let routing = topology.routingTable
        for spec in topology.nodes {
            let path = layout.ledgerPath(spec.id)
            let timings = closed ? try Ledger.readClosed(path: path) { tx in try tx.settlementTimings(keep: keep) }
                                 : try Ledger(path: path).read { tx in try tx.settlementTimings(keep: keep) }
            var times: [String: Int64] = [:]
            var errors = 0
            for timing in timings {
                if timing.state == "refused" || timing.state == "unknown" { errors += 1 }
                guard timing.state == "settled" || timing.state == "refused" else { continue }
                if let heldUs = timing.heldUs { times[timing.msgid] = heldUs }
                // The treatment county sees each settlement once: it counts the pairs and starts each path.
                guard timing.treatment == spec.id.value, let treatment = DivisionCode(timing.treatment),
                      let insured = DivisionCode(timing.insured) else { continue }
                if let route = routing.routeClass(treatment: treatment, insured: insured) {
                    pairs[route.rawValue, default: [:]]["\(timing.treatment) \(timing.insured)", default: 0] += 1
                }
                if timing.heldUs != nil { timedAtOrigin.append((timing.msgid, treatment, insured)) }
            }
            held[spec.id] = times
            perNode[spec.id] = (timings.count, errors)
        }

        var histograms: [String: Histogram<UInt64>] = [:]
        for settlement in timedAtOrigin {
            let path = routing.path(from: settlement.treatment, to: settlement.insured)
            for (here, next) in zip(path, path.dropFirst()) {
                guard let hereUs = held[here]?[settlement.msgid], let nextUs = held[next]?[settlement.msgid],
                      let from = routing.tier(of: here), let to = routing.tier(of: next) else { continue }
                let pair = "\(from.rawValue)→\(to.rawValue)"
                var histogram = histograms[pair] ?? Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000,
                                                                      numberOfSignificantValueDigits: .three)
                histogram.record(UInt64(max(0, hereUs - nextUs)))
                histograms[pair] = histogram
            }
        }
        let order = pairOrder + histograms.keys.filter { !pairOrder.contains($0) }.sorted()
        let legs = order.compactMap { pair in
            histograms[pair].map { Leg(pair: pair, hops: Int($0.totalCount), latencyMs: ReportBuilder.summary($0)) }
        }

        let summarised = topology.nodes.count > perNodeLimit
        var nodes: [Node] = []
        if summarised {
            var byProvince: [DivisionCode: Node] = [:]
            var order: [DivisionCode] = []
            for spec in topology.nodes {
                let counts = perNode[spec.id] ?? (0, 0)
                let province = spec.tier == .national ? spec.id : (spec.tier == .province ? spec.id : provinceOf(spec.id, routing))
                if byProvince[province] == nil {
                    let head = topology.node(province)
                    byProvince[province] = Node(id: province.value, tier: head?.tier.rawValue ?? "province",
                                                parent: head?.parent?.value, name: head?.name ?? province.value,
                                                settlements: 0, errors: 0, nodes: 0)
                    order.append(province)
                }
                byProvince[province]!.settlements += counts.settlements
                byProvince[province]!.errors += counts.errors
                byProvince[province]!.nodes += 1
            }
            nodes = order.map { byProvince[$0]! }
        } else {
            nodes = topology.nodes.map { spec in
                let counts = perNode[spec.id] ?? (0, 0)
                return Node(id: spec.id.value, tier: spec.tier.rawValue, parent: spec.parent?.value, name: spec.name,
                            settlements: counts.settlements, errors: counts.errors, nodes: 1)
            }
        }
        var routes: [String: [String]] = [:]
        for (route, counts) in pairs {
            guard let busiest = counts.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else { continue }
            let ends = busiest.split(separator: " ").compactMap { DivisionCode(String($0)) }
            guard ends.count == 2 else { continue }
            var path = routing.path(from: ends[0], to: ends[1])
            if summarised {
                // A province's subtree is one entry: the path through provinces and the national node.
                var collapsed: [DivisionCode] = []
                for id in path {
                    let entry = routing.tier(of: id) == .national ? id : (routing.tier(of: id) == .province ? id : provinceOf(id, routing))
                    if collapsed.last != entry { collapsed.append(entry) }
                }
                path = collapsed
            }
            routes[route] = path.map(\.value)
        }
        return NetworkFigures(legs: legs, sampledOneIn: sampledOneIn, nodes: nodes, summarisedByProvince: summarised, routes: routes)
    }

    /// The province (provincial unit) a node is under; itself for the national node.
    static func provinceOf(_ id: DivisionCode, _ routing: RoutingTable) -> DivisionCode {
        routing.ancestors(of: id).first { routing.tier(of: $0) == .province } ?? id
    }
}
