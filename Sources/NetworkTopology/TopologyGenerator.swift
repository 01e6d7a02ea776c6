import SettlementModel
import Foundation

/// Builds topology files from the division data: the whole country or chosen provinces, with a
/// policy per province and an endpoint per node. Pure: data and options in, YAML text out.
///
/// How the data's irregular rows become nodes (the generated file's header says the same):
/// - Municipalities (11, 12, 31, 50) keep their placeholder city rows (市辖区, and 县 for
///   Chongqing) as city-tier nodes, so every county has a city parent.
/// - Province-administered county-level units (4190, 4290, 4690) keep their placeholder as a
///   city-tier node too.
/// - Development and functional zones (area suffix 71-80) are dropped: they are statistical
///   units, not county-level administrations.
/// - 东莞 (4419), 中山 (4420) and 儋州 (4604) have no county-level units: their one area row
///   carries the city's own code. They stay city nodes without counties (and so without
///   hospitals).
/// - The Xinjiang Production and Construction Corps becomes the 32nd provincial unit, 660000,
///   over the data's 6590 group (石河子市, 阿拉尔市, ...), which the Corps administers.
public enum TopologyGenerator {
    /// The Corps's provincial code in the national platform; its units carry Xinjiang's 65 prefix.
    public static let corpsCode = "66"
    public static let corpsName = "新疆生产建设兵团"
    /// The data's group of county-level cities administered by the Corps.
    public static let corpsCityGroup = "6590"
    static let placeholderCityNames: Set<String> = ["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"]

    public struct Options: Sendable {
        public var name: String
        /// Provincial units to include in full (2-digit codes, 66 for the Corps); nil for all.
        public var provinces: [String]?
        /// Provinces included only in outline (the province, its first city, two counties): the
        /// far end of cross-province settlements for a topology about other provinces.
        public var counterparts: [String] = []
        public var host = "127.0.0.1"
        /// Named hosts with their addresses; provinces are placed on them in turn.
        public var hosts: [(name: String, address: String)] = []
        public var basePort = 20_000
        public var hospitals = 3
        public var population = 1_000

        public init(name: String) { self.name = name }
    }

    public struct Counts: Sendable, Equatable {
        public var provinces = 0
        public var cities = 0
        /// City-tier nodes made from placeholder rows (municipalities, province-administered units).
        public var placeholderCities = 0
        public var counties = 0
        public var functionalZonesDropped = 0
        public var citiesWithoutCounties: [String] = []
        public var nodes: Int { 1 + provinces + cities + counties }
    }

    public struct Output: Sendable {
        public var yaml: String
        public var counts: Counts
    }


    /// One provincial unit as the generator sees it: its code (2 digits) and its city groups.
    struct Unit {
        var code: String
        var name: String
        var cities: [DivisionData.City]
    }

    static func units(of data: DivisionData) -> [Unit] {
        var units = data.provinces.map { province in
            Unit(code: province.code, name: province.name,
                 cities: data.cities.filter { $0.province == province.code && $0.code != corpsCityGroup })
        }
        let corpsCities = data.cities.filter { $0.code == corpsCityGroup }
        if !corpsCities.isEmpty { units.append(Unit(code: corpsCode, name: corpsName, cities: corpsCities)) }
        return units
    }

    static func isFunctionalZone(_ area: DivisionData.Area) -> Bool {
        guard let suffix = Int(area.code.suffix(2)) else { return false }
        return (71...80).contains(suffix)
    }

    public static func generate(_ data: DivisionData, options: Options) throws(SettleNetError) -> Output {
        let all = units(of: data)
        let known = Set(all.map(\.code))
        for code in (options.provinces ?? []) + options.counterparts where !known.contains(code) {
            throw SettleNetError(.topology, "unknown province code \(code): expected one of \(all.map(\.code).joined(separator: ",")) (66 is the Corps)")
        }
        if options.hospitals < 1 || options.population < 1 {
            throw SettleNetError(.topology, "--hospitals and --population must be at least 1")
        }
        let full = Set(options.provinces ?? all.map(\.code))
        let outline = Set(options.counterparts).subtracting(full)
        let areasByCity = Dictionary(grouping: data.areas, by: \.city)

        var counts = Counts()
        var lines: [String] = []
        var port = 0
        func nextPort() -> Int { defer { port += 1 }; return port }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "'") + "\"" }

        // With named hosts every node names one, the national node the first: a default host of
        // 127.0.0.1 would be unreachable from the other machines.
        let nationalHost = options.hosts.first.map { ", host: \($0.name)" } ?? ""
        lines.append("  - { id: \"000000\", tier: national, name: 国家医疗保障信息平台, port: \(nextPort())\(nationalHost) }")
        var placed = 0
        for unit in all where full.contains(unit.code) || outline.contains(unit.code) {
            let isOutline = outline.contains(unit.code)
            let provinceID = unit.code + "0000"
            counts.provinces += 1
            lines.append("")
            lines.append("  - id: \"\(provinceID)\"")
            lines.append("    tier: province")
            lines.append("    parent: \"000000\"")
            lines.append("    name: \(quoted(unit.name))\(isOutline ? "   # in outline: the far end of cross-province settlements" : "")")
            lines.append("    port: \(nextPort())")
            if !options.hosts.isEmpty {
                lines.append("    host: \(options.hosts[placed % options.hosts.count].name)   # its cities and counties inherit it")
            }
            placed += 1
            lines.append(contentsOf: policyLines(for: unit.code))
            var cities = unit.cities
            if isOutline { cities = Array(cities.filter { city in (areasByCity[city.code] ?? []).contains { !isFunctionalZone($0) } }.prefix(1)) }
            for city in cities {
                let placeholder = placeholderCityNames.contains(city.name)
                let cityName = placeholder ? "\(unit.name) \(city.name)" : city.name
                counts.cities += 1
                if placeholder { counts.placeholderCities += 1 }
                let cityID = city.code + "00"
                lines.append("  - { id: \"\(cityID)\", tier: city, parent: \"\(provinceID)\", name: \(quoted(cityName)), port: \(nextPort()) }")
                var counties = (areasByCity[city.code] ?? []).filter { area in
                    if isFunctionalZone(area) { counts.functionalZonesDropped += 1; return false }
                    return area.code != cityID
                }
                if isOutline { counties = Array(counties.prefix(2)) }
                if counties.isEmpty { counts.citiesWithoutCounties.append(cityID) }
                for county in counties {
                    counts.counties += 1
                    lines.append("  - { id: \"\(county.code)\", tier: county, parent: \"\(cityID)\", name: \(quoted(county.name)), port: \(nextPort()) }")
                }
            }
        }
        if options.basePort + port - 1 + Self.metricsPortOffset(endpoints: port) > 65_535 {
            throw SettleNetError(.topology, "--base-port \(options.basePort) leaves no room for \(port) endpoints and their metrics ports (the last would be beyond 65535)")
        }
        let header = headerLines(options: options, counts: counts, endpoints: port)
        return Output(yaml: (header + ["nodes:"] + lines).joined(separator: "\n") + "\n", counts: counts)
    }

    /// Clear of every node's port with a thousand to spare: 2000 for a province, 5000 for the country.
    static func metricsPortOffset(endpoints: Int) -> Int { ((endpoints + 999) / 1_000 + 1) * 1_000 }

    static func headerLines(options: Options, counts: Counts, endpoints: Int) -> [String] {
        var command = "settlenet topology generate --name \(options.name)"
        if let provinces = options.provinces { command += " --provinces \(provinces.joined(separator: ","))" }
        if !options.counterparts.isEmpty { command += " --counterparts \(options.counterparts.joined(separator: ","))" }
        command += " --base-port \(options.basePort) --hospitals \(options.hospitals) --population \(options.population)"
        if !options.hosts.isEmpty { command += " --hosts \(options.hosts.map { "\($0.name)=\($0.address)" }.joined(separator: ","))" }
        var lines = [
            "# Generated by `\(command)`",
            "# from Topologies/divisions/ (the 2023 statistical division codes; see its README). Do not edit by",
            "# hand: generate again.",
            "#",
            "# \(counts.nodes) nodes: 1 national, \(counts.provinces) provincial units, \(counts.cities) cities (\(counts.placeholderCities) of them",
            "# placeholder groups), \(counts.counties) counties; \(counts.functionalZonesDropped) functional zones dropped.",
            "#",
            "# How the data's irregular rows are handled:",
            "# - Municipalities (北京 11, 天津 12, 上海 31, 重庆 50): their placeholder city rows (市辖区, and",
            "#   县 for 重庆) are city-tier nodes, so every county has a city parent.",
            "# - Province-administered county-level units (4190 河南, 4290 湖北, 4690 海南): the placeholder",
            "#   group is a city-tier node over them, for the same reason.",
            "# - Development and functional zones (area codes ending 71-80) are dropped: statistical units,",
            "#   not county-level administrations.",
            "# - 东莞 441900, 中山 442000 and 儋州 460400 have no county-level units (their one area row",
            "#   carries the city's own code): they are city nodes without counties, so without hospitals.",
            "# - The Xinjiang Production and Construction Corps is the 32nd provincial unit, 660000 (its code",
            "#   on the national platform), over the data's group 6590 (石河子市, 阿拉尔市, ...) that it",
            "#   administers; its codes keep Xinjiang's 65 prefix.",
            "# - Policies are drawn per province from fixed ranges by a hash of its code (Shandong and Henan",
            "#   keep the minimal topology's), so a file generates identically every time.",
            "# - Endpoints: tcp://<host>:<base_port + port>, ports numbered in file order. Each node process",
            "#   serves Prometheus metrics at <base_port + port + metrics_port>, clear of every node's port",
            "#   (`metrics_port: off` serves none).",
        ]
        if !options.hosts.isEmpty {
            lines.append("# - The national node runs on the first named host; provinces are placed on the named hosts in")
            lines.append("#   turn, their cities and counties with them. `cluster up --host NAME` starts one host's nodes.")
        }
        lines += [
            "name: \(options.name)",
            "description: \(counts.provinces) provincial units, \(counts.cities) cities, \(counts.counties) counties from the 2023 division codes",
            "host: \(options.host)",
            "base_port: \(options.basePort)",
            "metrics_port: \(metricsPortOffset(endpoints: endpoints))",
        ]
        if !options.hosts.isEmpty {
            lines.append("hosts:")
            for host in options.hosts { lines.append("  - { name: \(host.name), address: \(host.address) }") }
        }
        lines += [
            "defaults:",
            "  hospitals: \(options.hospitals)",
            "  population: \(options.population)",
        ]
        return lines
    }

    /// The minimal topology's policies, kept so that Shandong and Henan settle alike everywhere.
    static let fixedPolicies: [String: (deductible: Int, outpatient: String, inpatient: String, cap: Int, large: String, acctInFund: Bool)] = [
        "37": (200, "0.50", "0.85", 300_000, "0.80", false),
        "41": (150, "0.55", "0.80", 250_000, "0.75", true),
    ]

    static func policyLines(for code: String) -> [String] {
        let policy: (deductible: Int, outpatient: String, inpatient: String, cap: Int, large: String, acctInFund: Bool)
        if let fixed = fixedPolicies[code] {
            policy = fixed
        } else {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in code.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            func pick<T>(_ choices: [T], _ salt: UInt64) -> T { choices[Int((hash >> salt) % UInt64(choices.count))] }
            policy = (pick([100, 150, 200, 250, 300], 3), pick(["0.50", "0.55", "0.60"], 11), pick(["0.75", "0.80", "0.85", "0.90"], 19),
                      pick([200_000, 250_000, 300_000, 400_000], 27), pick(["0.70", "0.75", "0.80", "0.85"], 35), pick([false, true], 43))
        }
        return [
            "    policy:",
            "      deductible_yuan: \"\(policy.deductible)\"",
            "      pool_ratio_outpatient: \"\(policy.outpatient)\"",
            "      pool_ratio_inpatient: \"\(policy.inpatient)\"",
            "      annual_cap_yuan: \"\(policy.cap)\"",
            "      large_amount_ratio: \"\(policy.large)\"",
            "      acct_pay_in_fund: \(policy.acctInFund)",
        ]
    }
}
