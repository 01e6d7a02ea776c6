import NetworkTopology
import SettlementCore
import SettlementModel

/// One settlement the load will send: who, where, how much. Drawn from the seed alone, so the
/// same seed gives the same sequence of requests.
public struct PlannedSettlement: Equatable, Sendable {
    public var route: RouteClass
    public var origin: DivisionCode
    public var insured: DivisionCode
    public var institution: String
    public var psnNo: String
    public var bill: Bill
    public var inpatient: Bool
    /// Reverse it right after it settles.
    public var reverseAfter: Bool
    /// The person is not filed for off-site care: the network must refuse it.
    public var expectRefusal: Bool
}

/// Turns a scenario's mix into a deterministic sequence of planned settlements.
public struct LoadPlanner: Sendable {
    struct Pair: Sendable { var origin: DivisionCode; var insured: DivisionCode }

    private var random: SplitMix64
    private let routes: [(RouteClass, Double)]
    private let pairs: [RouteClass: [Pair]]
    private let filed: [DivisionCode: [Int]]
    private let unfiled: [DivisionCode: [Int]]
    private let institutions: [DivisionCode: [String]]
    private let populations: [DivisionCode: SyntheticPopulation]
    private let load: SettlementLoad

    /// Fails when the mix asks for a route class the topology cannot carry (for instance
    /// intra-city with one county per city).
    public init(topology: Topology, load: SettlementLoad, seed: UInt64) throws(ScenarioError) {
        random = SplitMix64(seed: seed)
        self.load = load
        let routing = topology.routingTable
        let counties = topology.counties.map(\.id)
        // Every ordered pair of counties, classed by the tier of their lowest common ancestor
        // (`RoutingTable.routeClass`), on small integers: the national network has 8 million
        // pairs, and classing each by its division codes took seconds.
        var number: [DivisionCode: Int] = [:]
        var tierOf: [RouteClass?] = []
        func numbered(_ id: DivisionCode) -> Int {
            if let known = number[id] { return known }
            number[id] = tierOf.count
            tierOf.append(topology.node(id).map { node in
                switch node.tier {
                case .county: .local
                case .city: .intraCity
                case .province: .intraProvince
                case .national: .crossProvince
                }
            })
            return tierOf.count - 1
        }
        let chains = counties.map { routing.ancestors(of: $0).map(numbered) }
        var pairs: [RouteClass: [Pair]] = [:]
        for (o, origin) in counties.enumerated() {
            for (i, insured) in counties.enumerated() {
                guard let ancestor = chains[o].first(where: chains[i].contains), let route = tierOf[ancestor] else { continue }
                pairs[route, default: []].append(Pair(origin: origin, insured: insured))
            }
        }
        let wanted = RouteClass.allCases.compactMap { route in load.mix.routes[route].map { (route, $0) } }.filter { $0.1 > 0 }
        for (route, _) in wanted where pairs[route, default: []].isEmpty {
            throw ScenarioError(code: .invalidScenario, message: "mix asks for \(route.rawValue) settlements but topology \(topology.file) has no such pair of counties")
        }
        let total = wanted.reduce(0) { $0 + $1.1 }
        routes = wanted.map { ($0.0, $0.1 / total) }
        self.pairs = pairs
        var filed: [DivisionCode: [Int]] = [:], unfiled: [DivisionCode: [Int]] = [:]
        var populations: [DivisionCode: SyntheticPopulation] = [:]
        var institutions: [DivisionCode: [String]] = [:]
        for county in counties {
            let population = topology.population(of: county)!
            populations[county] = population
            institutions[county] = topology.institutions(of: county)
            for index in 0..<population.size {
                if population.person(index).filedOffsite { filed[county, default: []].append(index) } else { unfiled[county, default: []].append(index) }
            }
        }
        self.filed = filed
        self.unfiled = unfiled
        self.populations = populations
        self.institutions = institutions
    }

    private mutating func uniform() -> Double { Double(random.next() >> 11) / Double(1 << 53) }
    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    private mutating func amount(_ range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(random.next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    public mutating func next() -> PlannedSettlement {
        var roll = uniform()
        var route = routes.last!.0
        for (candidate, share) in routes {
            if roll < share { route = candidate; break }
            roll -= share
        }
        let pair = pick(pairs[route]!)
        let inpatient = uniform() < load.mix.inpatient
        let wantsUnfiled = route != .local && uniform() < load.mix.unfiledOffsite
        let reverseAfter = uniform() < load.mix.reversal
        let pool = wantsUnfiled ? (unfiled[pair.insured] ?? []) : (filed[pair.insured] ?? [])
        // A county with nobody unfiled falls back to a filed person (and no refusal is expected).
        let useUnfiled = wantsUnfiled && !pool.isEmpty
        let index = pick(useUnfiled ? pool : (filed[pair.insured] ?? [0]))
        let total = amount(inpatient ? load.inpatientFen : load.outpatientFen)
        return PlannedSettlement(route: route, origin: pair.origin, insured: pair.insured,
                                 institution: pick(institutions[pair.origin]!),
                                 psnNo: populations[pair.insured]!.psnNo(index),
                                 bill: .composed(totalFen: total), inpatient: inpatient,
                                 reverseAfter: reverseAfter && !useUnfiled, expectRefusal: useUnfiled)
    }
}

/// Why a scenario could not be run, with the exit code the command returns for it.
public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    public enum Code: Int32, Sendable {
        case invalidScenario = 2     // the scenario or topology file is wrong: nothing was started
        case clusterUnavailable = 3  // the cluster could not be launched or attached
        case runFailed = 4           // the load could not be carried out (socket or file error)
    }

    public var code: Code
    public var message: String
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
