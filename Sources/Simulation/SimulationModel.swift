import NetworkTopology
import SettlementCore
import SettlementModel

/// What the simulated world costs: how long a message takes over a link, how long a node works
/// on what it takes in, how long its disk takes to make a commit durable. Microseconds; each
/// draw is the base plus a uniform jitter of up to the jitter's value either way.
///
/// The defaults come from `settlenet bench` on the 2-core development machine (2026-12-07):
/// - a link: the relay chain's p50 at 1,000/s, 1.17 ms over 14 hops, is about 80 µs a hop, for
///   each pair of tiers (the bench's links are all loopback); a scenario can set each pair;
/// - a message: the cluster's CPU per cross-province settlement, about 300 µs for the 14
///   messages its 7 nodes take in, is about 20 µs each, plus 10 µs a turn;
/// - a commit: the durable chain's p50 at 1,000/s, 5.43 ms with 8 syncs in series against the
///   plain chain's 1.17, is about 530 µs a sync.
public struct SimulationModel: Sendable, Equatable {
    public var linkUs: Int64 = 80
    public var linkJitterUs: Int64 = 40
    /// A link between a node and its parent, by the parent's tier (a county under a city, a city
    /// or a county under a province, a province under the national node): `linkUs` and
    /// `linkJitterUs` unless set on its own.
    public var linkToParent: [Tier: (base: Int64, jitter: Int64)] = [:]
    /// Between a hospital and its county.
    public var hospitalLinkUs: Int64 = 80
    public var hospitalLinkJitterUs: Int64 = 40
    /// A node's work for each message it takes in during a turn, and for the turn itself.
    public var messageUs: Int64 = 20
    public var turnUs: Int64 = 10
    /// A ledger's sync (all the node committed since the last one).
    public var commitUs: Int64 = 530
    public var commitJitterUs: Int64 = 200

    public init() {}

    public static func == (a: SimulationModel, b: SimulationModel) -> Bool { a.parameters == b.parameters }

    /// The link from a node to its parent of tier `parent`.
    public func link(toParent parent: Tier) -> (base: Int64, jitter: Int64) {
        linkToParent[parent] ?? (linkUs, linkJitterUs)
    }

    /// The parameters of each pair of tiers, by the parent's tier.
    static let pairKeys: [(tier: Tier, base: String, jitter: String)] = [
        (.city, "county_city_link_us", "county_city_link_jitter_us"),
        (.province, "city_province_link_us", "city_province_link_jitter_us"),
        (.national, "province_national_link_us", "province_national_link_jitter_us"),
    ]

    /// The defaults with a scenario's `simulation:` settings (`ScenarioLoader.simulationKeys`).
    /// A pair of tiers takes `link_us` and `link_jitter_us` for whichever of its own two it
    /// is not given.
    public init(overriding settings: [String: Int64]) {
        self.init()
        for (key, value) in settings {
            switch key {
            case "link_us": linkUs = value
            case "link_jitter_us": linkJitterUs = value
            case "hospital_link_us": hospitalLinkUs = value
            case "hospital_link_jitter_us": hospitalLinkJitterUs = value
            case "message_us": messageUs = value
            case "turn_us": turnUs = value
            case "commit_us": commitUs = value
            case "commit_jitter_us": commitJitterUs = value
            default:
                precondition(Self.pairKeys.contains { $0.base == key || $0.jitter == key },
                             "simulation model: no parameter \(key) (the scenario loader checks the names)")
            }
        }
        for pair in Self.pairKeys where settings[pair.base] != nil || settings[pair.jitter] != nil {
            linkToParent[pair.tier] = (settings[pair.base] ?? linkUs, settings[pair.jitter] ?? linkJitterUs)
        }
    }

    /// The parameters by name, for the report: every pair of tiers with the values it runs on.
    public var parameters: [String: Int64] {
        var all: [String: Int64] = [
            "link_us": linkUs, "link_jitter_us": linkJitterUs, "hospital_link_us": hospitalLinkUs,
            "hospital_link_jitter_us": hospitalLinkJitterUs, "message_us": messageUs, "turn_us": turnUs,
            "commit_us": commitUs, "commit_jitter_us": commitJitterUs]
        for pair in Self.pairKeys {
            let link = link(toParent: pair.tier)
            all[pair.base] = link.base
            all[pair.jitter] = link.jitter
        }
        return all
    }
}

/// The simulation's randomness: one seeded stream, drawn in event order, so the same seed
/// draws the same numbers for the same events.
struct Draws {
    private var random: SplitMix64

    init(seed: UInt64) { random = SplitMix64(seed: seed ^ 0x5EED_51A1_A710_0000) }

    /// `base` plus a uniform jitter within ±`jitter`, never below zero.
    mutating func around(_ base: Int64, jitter: Int64) -> Int64 {
        guard jitter > 0 else { return base }
        return max(0, base + Int64(random.next() % UInt64(2 * jitter + 1)) - jitter)
    }
}
