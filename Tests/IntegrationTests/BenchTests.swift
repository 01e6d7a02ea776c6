@testable import Bench
import ClusterControl
import NetworkTopology
import SettlementCore
import SettlementModel
import Foundation
import Testing

/// `settlenet bench` end to end on a short run: every figure present and plausible, the ledgers
/// reconciled, and no relay or node process left behind. The figures themselves are not judged
/// here (a test is no benchmark); Scripts/bench.sh measures them.
@Suite struct BenchTests {
    @Test func theBenchmarkMeasuresEveryFigureAndLeavesNoProcessBehind() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-bench-\(UUID().uuidString)").path
        defer {
            for packing in ["province", "none"] {
                _ = try? settlenet(["cluster", "down", "--data-dir", "\(output)/cluster-\(packing)", "--grace", "5"])
            }
            try? FileManager.default.removeItem(atPath: output)
        }
        let result = try settlenet(["bench", "--out", output, "--seconds", "1", "--windows", "4,16", "--baseline-window", "16",
                                    "--latency-rate", "50", "--latency-seconds", "2", "--upload-window", "2", "--upload-batch-size", "50",
                                    "--security-window", "8", "--security-rounds", "1", "--rounds", "3"])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        let report = try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/bench.json")))

        let baseline = try #require(report.baseline)
        #expect(baseline.processes == 7 && baseline.roundTrips > 100 && baseline.messageBytes > 100, "\(baseline)")
        // Whole provinces in one process, and one process per node: both measured, side by side.
        #expect(report.settlements.map(\.window) == [4, 16, 4, 16])
        #expect(report.settlements.map(\.packing) == ["province", "province", "none", "none"])
        // What the cluster's processes spent per settlement, measured from /proc.
        #expect(report.settlements.allSatisfy { ($0.cpuUsPerSettlement ?? 0) > 1 }, "\(report.settlements)")
        // Baseline and network took turns three times; each figure is the median round's.
        let rates = try #require(baseline.samples)
        #expect(rates.count == 3 && baseline.perSecond == rates.sorted()[1], "\(rates)")
        #expect(report.settlements.allSatisfy { $0.samples?.count == 3 && $0.perSecond == $0.samples!.sorted()[1] })
        #expect(result.output.contains("median of 3"))
        // The durable chain beside it (on tmpfs its syncs cost nothing, so no order is asserted).
        let durable = try #require(report.durableBaseline, "bench.json has no durable chain")
        #expect(durable.samples?.count == 3 && durable.roundTrips > 10, "\(durable)")
        #expect(result.output.contains("durable chain"))
        // The latency floor: the chain under the same open model, every message returned.
        let floor = try #require(report.baselineLatency, "bench.json has no latency floor")
        #expect(floor.openModelRatePerS == 50 && floor.roundTrips == 100, "\(floor)")
        #expect((floor.p50Ms ?? 0) > 0 && (floor.p99Ms ?? 0) >= (floor.p50Ms ?? 0), "\(floor)")
        // Its sender's own CPU: the floor for the load driver's.
        #expect((floor.driverCPUPct ?? 0) > 0 && (floor.driverCPUPct ?? 100) < 100, "\(floor)")
        // And the durable chain's: eight syncs in series under the same open model.
        let durableFloor = try #require(report.durableBaselineLatency, "bench.json has no durable latency floor")
        #expect(durableFloor.openModelRatePerS == 50 && durableFloor.roundTrips == 100, "\(durableFloor)")
        #expect(result.output.contains("the durable chain at 50/s"))
        #expect(report.settlements.allSatisfy { $0.errors == 0 && $0.succeeded > 10 }, "\(report.settlements)")
        #expect(report.ratioToBaseline.keys.sorted() == ["none", "province"])
        #expect(report.ratioToBaseline.values.allSatisfy { $0 > 0 && $0 < 1 }, "\(report.ratioToBaseline)")
        // The open model on each packing, cross-province only and every route class.
        #expect(report.latency.map { "\($0.packing) \($0.routes)" } == ["province cross_province", "province all", "none cross_province", "none all"])
        for latency in report.latency {
            #expect(latency.succeeded == 100 && latency.failed == 0 && latency.p99Ms >= latency.p50Ms, "\(latency)")
            // The driver's own cost is reported with the latency it measured.
            let driverCPU = try #require(latency.driverCPUPct, "bench.json says nothing of the load driver's own CPU")
            #expect(driverCPU > 0 && driverCPU < 100, "\(driverCPU) % of a core")
            // And how often the disk stalled meanwhile (the nodes' count of slow syncs), so that a
            // reader can tell a stall of the disk from the network's own queueing.
            #expect(latency.slowSyncs != nil && latency.slowSyncs! >= 0, "bench.json says nothing of the disk's stalls: \(latency)")
        }
        #expect(result.output.contains("syncs >= 50 ms"))
        #expect(report.targets.contains { $0.name.hasPrefix("load driver's own CPU") })
        // The durable chain, the floor of durability on this disk, beside the targets it bounds:
        // the throughputs and the cross-province p99s (a local settlement waits for one sync).
        let throughputs = report.targets.filter { $0.name.hasPrefix("cross-province settlements / transport baseline") }
        #expect(throughputs.count == 2 && throughputs.allSatisfy { $0.measured.contains("the durable chain") }, "\(throughputs)")
        let p99s = report.targets.filter { $0.name.hasPrefix("p99 latency") }
        #expect(p99s.count == 4 && p99s.allSatisfy { $0.measured.contains("the durable chain") == $0.name.contains("cross_province") }, "\(p99s)")
        // What a wake-up costs on this machine, the unit the driver's CPU is made of, beside it.
        let wake = try #require(report.machine.wakeCost, "bench.json says nothing of what a wake-up costs")
        #expect(wake.wakes == 1_000 && wake.timedUs > 0 && wake.byDescriptorUs > 0, "\(wake)")
        #expect(result.output.contains("a wake-up here"))
        #expect(report.targets.contains { $0.name.hasPrefix("load driver's own CPU") && $0.measured.contains("timed wakes alone") })
        #expect(report.memory?.residentMB.count == 15 && (report.memory?.maxMB ?? 0) > 1 && report.memory?.packing == "none")
        let uploads = try #require(report.uploads)
        #expect(uploads.accepted > 0 && uploads.storedNational == uploads.accepted && uploads.errors == 0, "\(uploads)")
        #expect((uploads.cpuUsPerRecord ?? 0) > 0, "the cluster's CPU per stored record is measured")
        #expect(report.reconciled == true)
        // Security on and off in the same run: both measured, the secured one without errors.
        let security = try #require(report.security)
        #expect(security.plaintextPerS.count == 1 && security.securedPerS.count == 1, "\(security)")
        #expect(security.securedPerS.allSatisfy { $0 > 10 } && security.plaintextPerS.allSatisfy { $0 > 10 }, "\(security)")
        #expect(security.securedErrors == 0 && security.ratio > 0, "\(security)")
        #expect((security.transportCurvePerS ?? 0) > 100 && (security.transportPlaintextPerS ?? 0) > 100, "\(security)")
        #expect(result.output.contains("secured / plaintext"))
        // Two ratios, four latencies, the driver, uploads, memory, reconciliation.
        #expect(report.targets.count == 10, "\(report.targets.map(\.name))")
        #expect(result.output.contains("transport baseline") && result.output.contains("targets:"))

        // Nothing the benchmark started is still running: the relay chain and the cluster.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { entry in
            guard Int32(entry) != nil, let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
            let words = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return words.contains(output + "/cluster-province") || words.contains(output + "/cluster-none")
                || words.contains(output + "/secured-cluster") || (words.contains("bench") && (words.contains("relay") || words.contains("echo")))
                && words.contains { $0.hasSuffix("settlenet") }
        }
        #expect(leftovers.isEmpty, "processes left: \(leftovers)")
    }

    /// The durable chain waits for the syncs a settlement waits for: the first relay (the origin
    /// county) journals requests as well as answers, the echo (the insured county) journals what
    /// it answers, and every other relay its answers.
    @Test func theDurableChainSyncsWhereASettlementWaits() throws {
        let journals = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-journals-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: journals, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: journals) }
        let port = try #require(ClusterControl.Cluster.freePorts(TransportBaseline.relayCount + 1))
        let frames = [[UInt8]](repeating: Array(repeating: 7, count: 100), count: 2)
        let result = try TransportBaseline.measure(executable: settlenetBinary, basePort: port, window: 4, seconds: 0.5,
                                                   frames: frames, journals: journals)
        #expect(result.roundTrips > 0)
        func size(_ name: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: "\(journals)/\(name)"))?[.size] as? Int) ?? 0
        }
        let first = size("relay-0.journal"), second = size("relay-1.journal"), echo = size("echo.journal")
        #expect(echo > 0, "the echo journals nothing")
        #expect((1...5).allSatisfy { size("relay-\($0).journal") > 0 })
        // Each message passes the first relay twice and is journaled both times
        // (a deeper relay's answers carry one routing id more, so journaling answers alone the first
        // would hold a little less than the second).
        #expect(Double(first) > 1.8 * Double(second), "relay 0: \(first) bytes, relay 1: \(second)")
    }

    /// The upload step's batches are templates with fresh serials: every record sent is its
    /// template's clean record but for the setl_id, and no setl_id is sent twice.
    @Test func templatedUploadBatchesAreCleanRecordsWithUniqueSetlIDs() throws {
        let topology = try TopologyLoader.load(path: "Topologies/minimal.yaml")
        var templates = try UploadTemplates(topology: topology, batchSize: 20, seed: 9, perCounty: 2)
        let counties = topology.counties.filter { !topology.institutions(of: $0.id).isEmpty }.map(\.id)
        // Every county's turn comes, each once before any twice.
        #expect(templates.templates.map(\.county) == counties + counties)
        var seen: Set<String> = []
        let batches = 2 * templates.templates.count + 1
        for round in 0..<batches {
            let template = templates.templates[round % templates.templates.count]
            let batch = templates.nextBatch()
            #expect(batch.county == template.county && batch.institution == template.institution)
            #expect(batch.records.count == 20)
            for (sent, original) in zip(batch.records, template.records) {
                var record = try UploadRecord(serializedBytes: sent)
                let originalRecord = try UploadRecord(serializedBytes: original.bytes)
                #expect(seen.insert(record.setlID).inserted, "setl_id \(record.setlID) sent twice")
                #expect(record.setlID.count == originalRecord.setlID.count && record.setlID.prefix(6) == originalRecord.setlID.prefix(6))
                record.setlID = originalRecord.setlID
                #expect(record == originalRecord, "only the setl_id differs from the template")
            }
        }
        #expect(seen.count == 20 * batches)
    }
}
