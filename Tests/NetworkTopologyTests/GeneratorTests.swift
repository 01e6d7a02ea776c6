import Foundation
import Testing
import SettlementModel
@testable import NetworkTopology

@Suite struct GeneratorTests {
    let data: DivisionData

    init() throws {
        data = try DivisionData.load(directory: "\(repositoryRoot)/Topologies/divisions")
    }

    @Test func theDataHasTheRowsItsReadmePromises() {
        #expect(data.provinces.count == 31)
        #expect(data.cities.count == 342)
        #expect(data.areas.count == 2_978)
    }

    @Test func theWholeCountryCountsMatchTheData() throws {
        let output = try TopologyGenerator.generate(data, options: .init(name: "national"))
        let counts = output.counts
        let zones = data.areas.filter { (71...80).contains(Int($0.code.suffix(2))!) }.count
        let cityOwnRows = data.areas.filter { $0.code == $0.city + "00" }.count
        #expect(zones == 124)
        #expect(counts.provinces == 32, "31 provinces and the Corps")
        #expect(counts.cities == data.cities.count, "placeholders kept as city-tier nodes")
        #expect(counts.cities - counts.placeholderCities == 333, "the prefecture-level units")
        #expect(counts.functionalZonesDropped == zones)
        #expect(counts.counties == data.areas.count - zones - cityOwnRows)
        #expect(counts.citiesWithoutCounties.sorted() == ["441900", "442000", "460400"])

        let topology = try TopologyLoader.parse(output.yaml, file: "national.yaml")
        #expect(topology.nodes.count == counts.nodes)
        #expect(topology.counties.count == counts.counties)
        #expect(topology.nodes.filter { $0.tier == .province }.count == 32)
        // Every data area that is a county-level unit is a county node under its own city.
        for area in data.areas where !(71...80).contains(Int(area.code.suffix(2))!) && area.code != area.city + "00" {
            let spec = try #require(topology.node(DivisionCode(area.code)!), "area \(area.code) missing")
            #expect(spec.tier == .county && spec.parent?.value == area.city + "00" && spec.name == area.name)
        }
        // The Corps holds the data's 6590 group; Xinjiang keeps its other cities.
        #expect(topology.node(DivisionCode("659000")!)?.parent?.value == "660000")
        #expect(topology.children(of: DivisionCode("650000")!).allSatisfy { $0.id.value != "659000" })
        // Municipalities: every county has a city parent, the placeholder.
        #expect(topology.node(DivisionCode("110105")!)?.parent?.value == "110100")
        #expect(topology.node(DivisionCode("500200")!)?.parent?.value == "500000")
        // Every province has a policy; endpoints are distinct.
        #expect(Set(topology.nodes.map { topology.endpoint(of: $0.id)! }).count == topology.nodes.count)
    }

    @Test func chosenProvincesAndCounterparts() throws {
        var options = TopologyGenerator.Options(name: "two")
        options.provinces = ["37"]
        options.counterparts = ["41"]
        let output = try TopologyGenerator.generate(data, options: options)
        let topology = try TopologyLoader.parse(output.yaml, file: "two.yaml")
        let shandongAreas = data.areas.filter { $0.province == "37" && !(71...80).contains(Int($0.code.suffix(2))!) }
        #expect(topology.counties.filter { $0.id.value.hasPrefix("37") }.count == shandongAreas.count)
        #expect(topology.nodes.filter { $0.tier == .city && $0.id.value.hasPrefix("37") }.count == 16)
        // Henan in outline: province, one city, two counties.
        #expect(topology.nodes.filter { $0.id.value.hasPrefix("41") }.count == 4)
        #expect(topology.policy(for: DivisionCode("370211")!)?.deductibleFen == 20_000)
    }

    @Test func unknownProvinceIsAnError() {
        var options = TopologyGenerator.Options(name: "x")
        options.provinces = ["99"]
        #expect(throws: SettleNetError.self) { try TopologyGenerator.generate(data, options: options) }
    }

    @Test func hostsArePlacedByProvinceAndInherited() throws {
        var options = TopologyGenerator.Options(name: "hosts")
        options.provinces = ["37", "41"]
        options.hosts = [("east", "10.77.0.1"), ("west", "10.77.0.2")]
        let topology = try TopologyLoader.parse(TopologyGenerator.generate(data, options: options).yaml, file: "hosts.yaml")
        #expect(topology.node(DivisionCode("370211")!)?.host == "east")
        #expect(topology.node(DivisionCode("410102")!)?.host == "west")
        #expect(topology.endpoint(of: DivisionCode("410102")!)?.hasPrefix("tcp://10.77.0.2:") == true)
        #expect(topology.node(DivisionCode("000000")!)?.host == "east", "the national node runs on the first host")
        #expect(topology.nodes.allSatisfy { $0.host != nil }, "no node is left on 127.0.0.1, unreachable from the other host")
    }

    @Test func theCommittedFilesAreWhatTheGeneratorMakes() throws {
        // Committed topologies must not drift from the generator (regenerate them, do not edit).
        var national = TopologyGenerator.Options(name: "national")
        national.hospitals = 2
        national.population = 200
        var shandong = TopologyGenerator.Options(name: "shandong")
        shandong.provinces = ["37"]
        shandong.counterparts = ["41"]
        shandong.basePort = 24_000
        for (file, options) in [("national.yaml", national), ("shandong.yaml", shandong)] {
            let committed = try String(contentsOfFile: "\(repositoryRoot)/Topologies/\(file)", encoding: .utf8)
            #expect(committed == (try TopologyGenerator.generate(data, options: options).yaml), "Topologies/\(file) differs from the generator's output")
            _ = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/\(file)")
        }
    }

    @Test func unknownHostIsReportedWithItsNode() {
        let text = """
            name: t
            base_port: 20000
            hosts:
              - { name: east, address: 10.0.0.1 }
            nodes:
              - { id: "000000", tier: national, port: 0, host: nowhere }
            """
        #expect(throws: FileProblems.self) { try TopologyLoader.parse(text, file: "t.yaml") }
        do { _ = try TopologyLoader.parse(text, file: "t.yaml") } catch {
            #expect(error.description.contains("node 000000 field host: unknown host nowhere"))
        }
    }

    @Test func csvQuotes() {
        #expect(DivisionData.csvFields(#"110101,"东城区",1101,11"#) == ["110101", "东城区", "1101", "11"])
        #expect(DivisionData.csvFields(#"1,"a,""b""",2"#) == ["1", "a,\"b\"", "2"])
    }
}
