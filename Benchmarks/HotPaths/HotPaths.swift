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

    // Uploads as a tier screens them into its ledger: decode (in full at the county, keys only
    // above), the county's rules, each record's claim and, at the provincial tier, the store;
    // committed without a sync (the disk's time is not the code's).
    for tier in [Tier.county, .province] {
        Benchmark("uploads: \(tier) screens a batch of 1000 records into its ledger",
                  configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3), maxIterations: 200)) { benchmark in
            let node = DivisionCode(tier == .county ? "370211" : "370000")!
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotpaths-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let ledger = try Ledger(path: "\(directory)/ledger.sqlite")
            let catalog = Catalog.national()
            let institutions: Set<String> = ["H37021100001", "H37021100002"]
            var screen = UploadScreen(node: node, tier: tier, institutions: institutions, routing: routing)
            var tickets = TicketDesk(node: node, registry: DivisionCode("000000")!)
            var responses = ResponseFactory(division: node)
            var hospital = RequestFactory(institution: "H37021100002", treatment: DivisionCode("370211")!)
            let drugs = catalog.drugs.sorted(), services = catalog.services.sorted(), diagnoses = catalog.diagnoses.sorted()
            // Every batch made before the clock starts, each record with a setl_id of its own.
            var serial = 0
            let batches: [[[UInt8]]] = try (0..<benchmark.scaledIterations.count).map { _ in
                let envelope = hospital.envelope(.upload, insured: DivisionCode("370211")!, nowMs: 1_763_000_000_000)
                let records: [[UInt8]] = try (0..<1_000).map { index in
                    serial += 1
                    var record = UploadRecord()
                    record.setlID = "370211" + String(repeating: "0", count: 14 - String(serial).count) + String(serial)
                    record.psnNo = "41010200000000000042"
                    record.fixmedinsCode = "H37021100002"
                    record.mdtrtareaAdmvs = "370211"
                    record.insuplcAdmdvs = "410102"
                    record.admDate = "2026-03-01"
                    record.dscgDate = "2026-03-05"
                    record.diseCodg = diagnoses[index % diagnoses.count]
                    record.atddrCode = "D12345678901"
                    record.nursCode = "N10987654321"
                    for line in 0..<(1 + index % 4) {
                        var detail = FeeDetail()
                        detail.kind = line % 2 == 0 ? "drug" : "service"
                        detail.code = line % 2 == 0 ? drugs[(index + line) % drugs.count] : services[(index + line) % services.count]
                        detail.amount = 1_000 + Int64(line) * 250
                        record.details.append(detail)
                        record.medfeeSumamt += detail.amount
                    }
                    record.fundPaySumamt = record.medfeeSumamt / 2
                    record.psnPay = record.medfeeSumamt - record.fundPaySumamt
                    if tier != .county { record.batchIndex = Int32(index) }
                    return try record.serializedBytes()
                }
                return WireCodec.frames(requestBody: try WireCodec.uploadRequestBody(envelope: envelope, records: records,
                                                                                     catalogVersion: catalog.version))
            }
            benchmark.startMeasurement()
            for frames in batches {
                guard case .request(let request) = WireCodec.decode(frames[...], uploadRecords: tier == .county ? .full : .keysOnly),
                      let ranges = WireCodec.uploadRecordRanges(in: frames[frames.count - 1]) else { fatalError("batch not decoded") }
                let body = frames[frames.count - 1]
                _ = try ledger.transaction { tx in
                    try screen.screen(request, receivedAtMs: 0, nowMs: 0, catalog: catalog, responses: &responses, tickets: &tickets,
                                      store: tx, recordsAsReceived: ranges.map { body[$0] })
                }
            }
            benchmark.stopMeasurement()
            let claimed = try ledger.read { try $0.count(table: .uploadClaims) }
            precondition(claimed == batches.count * 1_000, "every record passes: \(claimed) of \(batches.count * 1_000)")
        }
    }
}
