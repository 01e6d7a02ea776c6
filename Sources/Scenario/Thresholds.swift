import Foundation
import NetworkTopology

/// Evaluates thresholds against report.json itself: a threshold names any numeric field by its
/// dotted path, so what gates CI is exactly what the report shows.
public enum Thresholds {
    /// The numeric value at `path` in `json`, or nil when there is none. A missing count under
    /// `errors.by_code` is 0: no error of that code happened. A boolean reads as 1 or 0.
    public static func value(at path: String, in json: JSONValue) -> Double? {
        var current: JSONValue? = json
        let parts = path.split(separator: ".").map(String.init)
        for (index, part) in parts.enumerated() {
            guard case .object(let object)? = current else { return nil }
            if object[part] == nil, index == parts.count - 1, index > 0, parts[index - 1] == "by_code" { return 0 }
            current = object[part]
        }
        switch current {
        case .number(let number)?: return number
        case .bool(let flag)?: return flag ? 1 : 0     // accounting_exact: "== 1"
        default: return nil
        }
    }

    public static func evaluate(_ specs: [ThresholdSpec], against json: JSONValue) -> [ThresholdResult] {
        specs.map { spec in
            let value = value(at: spec.path, in: json)
            return ThresholdResult(path: spec.path, condition: spec.condition, value: value,
                                   passed: value.map { spec.comparison.holds($0, spec.limit) } ?? false)
        }
    }
}

/// A JSON document as a tree, to look fields up by path.
public enum JSONValue: Decodable, Equatable, Sendable {
    case number(Double), bool(Bool), string(String), array([JSONValue]), object([String: JSONValue]), null

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else if let bool = try? container.decode(Bool.self) { self = .bool(bool) }
        else if let string = try? container.decode(String.self) { self = .string(string) }
        else if let array = try? container.decode([JSONValue].self) { self = .array(array) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public static func of<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }
}
