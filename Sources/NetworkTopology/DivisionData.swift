import Foundation

/// China's administrative divisions as the repository keeps them (Topologies/divisions/, the
/// 2023 statistical codes): provinces (2 digits), cities (4) and county-level areas (6).
public struct DivisionData: Sendable {
    public struct Province: Sendable, Equatable { public var code: String; public var name: String }
    public struct City: Sendable, Equatable { public var code: String; public var name: String; public var province: String }
    public struct Area: Sendable, Equatable {
        public var code: String
        public var name: String
        public var city: String
        public var province: String
    }

    public var provinces: [Province]
    public var cities: [City]
    public var areas: [Area]

    public init(provinces: [Province], cities: [City], areas: [Area]) {
        self.provinces = provinces
        self.cities = cities
        self.areas = areas
    }

    /// Reads provinces.csv, cities.csv and areas.csv from `directory`. Every malformed row is
    /// reported with its file and line.
    public static func load(directory: String) throws(FileProblems) -> DivisionData {
        var problems: [FileProblem] = []
        func rows(_ name: String, columns: [String]) -> [(line: Int, fields: [String])] {
            let path = (directory as NSString).appendingPathComponent(name)
            let text: String
            do { text = try readTextFile(path, kind: "division data") } catch {
                problems += error.problems
                return []
            }
            var result: [(Int, [String])] = []
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let fields = csvFields(line.trimmingCharacters(in: .init(charactersIn: "\r")))
                if index == 0 {
                    if fields != columns {
                        problems.append(FileProblem(file: path, line: 1, field: "header",
                                                    message: "expected columns \(columns.joined(separator: ",")), found \(fields.joined(separator: ","))"))
                        return []
                    }
                    continue
                }
                if fields == [""] { continue }
                guard fields.count == columns.count, fields.allSatisfy({ !$0.isEmpty }) else {
                    problems.append(FileProblem(file: path, line: index + 1, message: "expected \(columns.count) non-empty fields, found \(fields.count)"))
                    continue
                }
                result.append((index + 1, fields))
            }
            return result
        }
        func digits(_ text: String, _ count: Int, _ file: String, _ line: Int, _ field: String) -> Bool {
            if text.count == count && text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber) { return true }
            problems.append(FileProblem(file: (directory as NSString).appendingPathComponent(file), line: line, field: field,
                                        message: "\"\(text)\" is not a \(count)-digit code"))
            return false
        }
        let provinces = rows("provinces.csv", columns: ["code", "name"]).compactMap { row -> Province? in
            digits(row.fields[0], 2, "provinces.csv", row.line, "code") ? Province(code: row.fields[0], name: row.fields[1]) : nil
        }
        let cities = rows("cities.csv", columns: ["code", "name", "provinceCode"]).compactMap { row -> City? in
            digits(row.fields[0], 4, "cities.csv", row.line, "code") && digits(row.fields[2], 2, "cities.csv", row.line, "provinceCode")
                ? City(code: row.fields[0], name: row.fields[1], province: row.fields[2]) : nil
        }
        let areas = rows("areas.csv", columns: ["code", "name", "cityCode", "provinceCode"]).compactMap { row -> Area? in
            digits(row.fields[0], 6, "areas.csv", row.line, "code") && digits(row.fields[2], 4, "areas.csv", row.line, "cityCode")
                && digits(row.fields[3], 2, "areas.csv", row.line, "provinceCode")
                ? Area(code: row.fields[0], name: row.fields[1], city: row.fields[2], province: row.fields[3]) : nil
        }
        if !problems.isEmpty { throw FileProblems(problems) }
        return DivisionData(provinces: provinces, cities: cities, areas: areas)
    }

    /// The fields of one CSV line: commas separate, double quotes enclose, "" is a quote.
    static func csvFields(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        while let character = iterator.next() {
            if quoted {
                if character == "\"" {
                    // Either the closing quote or the first of a doubled one.
                    var lookahead = iterator
                    if lookahead.next() == "\"" { current.append("\""); iterator = lookahead } else { quoted = false }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }
}
