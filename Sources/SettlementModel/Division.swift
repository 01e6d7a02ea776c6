/// A 6-digit administrative division code (admdvs): province 2 + city 2 + county 2.
/// 370000 is Shandong, 370200 Qingdao, 370211 Huangdao.
public struct DivisionCode: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let value: String

    /// Accepts exactly six ASCII digits; anything else is nil.
    public init?(_ text: String) {
        let utf8 = text.utf8
        guard utf8.count == 6, utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        value = text
    }

    public var description: String { value }
    public static func < (lhs: DivisionCode, rhs: DivisionCode) -> Bool { lhs.value < rhs.value }

    /// The first `digits` characters, e.g. the province prefix "37" for 2.
    public func prefix(_ digits: Int) -> Substring { value.prefix(digits) }
}

/// The four tiers of the network, from the top.
public enum Tier: String, CaseIterable, Sendable, Comparable {
    case national, province, city, county

    /// 0 for national, 3 for county: a child's depth is its parent's plus one.
    public var depth: Int {
        switch self {
        case .national: 0
        case .province: 1
        case .city: 2
        case .county: 3
        }
    }

    public static func < (lhs: Tier, rhs: Tier) -> Bool { lhs.depth < rhs.depth }
}

/// How far apart the place of treatment and the place of insurance are, by their lowest
/// common ancestor in the topology.
public enum RouteClass: String, CaseIterable, Sendable, Codable {
    case local                    // same county
    case intraCity = "intra_city"
    case intraProvince = "intra_province"
    case crossProvince = "cross_province"
}
