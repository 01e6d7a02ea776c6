// Micro-benchmarks of the paths every settlement takes through every node: the wire codec
// with its checksum, the routing decision, the split, and ledger writes in group commits.
// Run: SETTLENET_BENCHMARKS=1 swift package benchmark --target HotPaths
import Benchmark
import Foundation
import Persistence
import SettlementCore
import SettlementModel

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2))

    var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
    let request = factory.settlement(psnNo: "37021100000042", insured: DivisionCode("410102")!,
                                     bill: .composed(totalFen: 35_000), inpatient: false, nowMs: 1_763_000_000_000)
    let frames = WireCodec.frames(request)
    let sealed = WireCodec.sealed(frames)

    Benchmark("codec: encode a 2207 request and seal it") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(WireCodec.sealed(WireCodec.frames(request))) }
    }
    Benchmark("codec: check the seal and decode a 2207 request") { benchmark in
        for _ in benchmark.scaledIterations {
            if let inner = WireCodec.unsealed(sealed[...]) { blackHole(WireCodec.decode(inner)) }
        }
    }

    let routing = RoutingTable(nodes: [
        (DivisionCode("000000")!, .national, nil),
        (DivisionCode("370000")!, .province, DivisionCode("000000")!), (DivisionCode("410000")!, .province, DivisionCode("000000")!),
        (DivisionCode("370200")!, .city, DivisionCode("370000")!), (DivisionCode("410100")!, .city, DivisionCode("410000")!),
        (DivisionCode("370211")!, .county, DivisionCode("370200")!), (DivisionCode("410102")!, .county, DivisionCode("410100")!),
    ])
    Benchmark("routing: next hop of a cross-province settlement at each tier") { benchmark in
        for _ in benchmark.scaledIterations {
            for node in ["370211", "370200", "370000", "000000", "410000", "410100"] {
                blackHole(routing.nextHop(from: DivisionCode(node)!, to: DivisionCode("410102")!))
            }
        }
    }

    let policy = Policy(deductibleFen: 20_000, poolRatioOutpatientBp: 5_000, poolRatioInpatientBp: 8_500, annualCapFen: 30_000_000,
                        largeAmountRatioBp: 8_000, acctPayInFund: false)
    let person = PersonAccount(psnNo: "37021100000042", insutype: "310", balanceFen: 150_000, filedOffsite: true)
    Benchmark("split: one outpatient settlement") { benchmark in
        for index in benchmark.scaledIterations {
            blackHole(SplitCalculator.split(bill: .composed(totalFen: 10_000 + Int64(index % 50_000)), inpatient: false,
                                            useAccount: true, policy: policy, person: person))
        }
    }

    // Ledger writes as a node does them: a group commit of 64 transit records, one sync.
    Benchmark("ledger: group commit of 64 transit records, one sync", configuration: .init(maxDuration: .seconds(3))) { benchmark in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotpaths-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try Ledger(path: "\(directory)/ledger.sqlite")
        var response = WireResponse()
        response.infcode = 0
        var serial = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try ledger.write { tx in
                for _ in 0..<64 {
                    serial += 1
                    var meta = RequestMeta(request)
                    meta.msgid = "H37021100001" + String(serial)
                    try tx.recordTransit(TransitRecord(request: meta, response: response, role: .relay, nowMs: 1_763_000_000_000))
                }
            }
        }
        benchmark.stopMeasurement()
    }
}
