import Foundation
import NetworkTopology
import Scenario
import Testing

/// report.json's `network`: time per hop by pair of tiers, from the nodes' own timing of their
/// transits; each node's load and errors; the route classes' paths.
@Suite struct NetworkFiguresTests {
    /// Each hop is timed by the nodes at its two ends: a slow link between the provinces and the
    /// national node shows in those two legs, and not in the others.
    @Test func aSlowLinkShowsInItsOwnLegOnly() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("legs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let run = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/out", "--keep-ledgers", "\(base)/ledgers",
                                 "--model", "province_national_link_us=5000"])
        try #require(run.status == 0, "\(run.output)\(run.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(base)/out/report.json")))
        let network = try #require(report.network)
        #expect(network.sampledOneIn == 1)
        #expect(network.legs.map(\.pair) == ["county→city", "city→province", "province→national", "national→province",
                                             "province→city", "city→county"])
        let legs = Dictionary(uniqueKeysWithValues: network.legs.map { ($0.pair, $0) })
        for pair in ["province→national", "national→province"] {
            let leg = try #require(legs[pair])
            // There and back over a 5 ms link, and no more than a few ms beside.
            #expect(leg.latencyMs.p50 >= 10 && leg.latencyMs.p50 < 20, "\(pair): \(leg.latencyMs)")
        }
        for pair in ["county→city", "city→province", "province→city", "city→county"] {
            let leg = try #require(legs[pair])
            #expect(leg.hops > 0 && leg.latencyMs.p50 > 0 && leg.latencyMs.p50 < 5, "\(pair): \(leg.latencyMs)")
        }
        // Every settlement that went up to the national node and back was timed on both of its legs.
        let crossProvince = try #require(report.settlements.byRoute["cross_province"])
        #expect(legs["national→province"]!.hops == legs["province→national"]!.hops)
        // (Timed where the settlement ended settled or refused at both ends; a reversed one is not.)
        #expect(legs["province→national"]!.hops <= crossProvince.attempted && legs["province→national"]!.hops > crossProvince.attempted / 2)

        // Every node, its load and errors: the unfiled persons' refusals count where they were refused.
        #expect(network.nodes.count == 15 && !network.summarisedByProvince)
        let national = try #require(network.nodes.first { $0.id == "000000" })
        #expect(national.settlements >= crossProvince.succeeded, "the national node records every cross-province settlement")
        #expect(national.settlements <= crossProvince.attempted)
        #expect(network.nodes.contains { $0.tier == "county" && $0.errors > 0 })
        let counties = Set(network.nodes.filter { $0.tier == "county" }.map(\.id))
        #expect((network.routes["local"] ?? []).count == 1 && counties.contains(network.routes["local"]?.first ?? ""))
        #expect(network.routes["cross_province"]?.count == 7 && network.routes["cross_province"]?[3] == "000000")

        // Summarised by province past a node limit, and timed on a sample past a settlement limit.
        let topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        let summary = try NetworkFigures.read(topology: topology, dataDirectory: "\(base)/ledgers",
                                              settlements: NetworkFigures.timedLimit * 4, closed: true, perNodeLimit: 10)
        #expect(summary.summarisedByProvince)
        #expect(summary.nodes.map(\.id) == ["000000", "370000", "410000"])
        #expect(summary.nodes.map(\.nodes) == [1, 7, 7])
        #expect(summary.nodes.reduce(0) { $0 + $1.settlements } == network.nodes.reduce(0) { $0 + $1.settlements })
        #expect(Set(summary.routes["cross_province"] ?? []) == ["370000", "000000", "410000"])
        #expect(summary.routes["cross_province"]?[1] == "000000")
        #expect((summary.routes["intra_city"] ?? []).count == 1, "a city's route stays in its province")
        #expect(summary.sampledOneIn == 4)
        let sampled = summary.legs.first { $0.pair == "province→national" }?.hops ?? 0
        #expect(sampled > 0 && sampled < legs["province→national"]!.hops, "one in four timed: \(sampled)")
    }
}
