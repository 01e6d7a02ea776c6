import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel

/// Clean upload batches made cheaply enough not to compete with the network they load. A few
/// batches are generated and encoded once; each batch sent is one of them with every record's
/// setl_id serial rewritten in its encoded bytes, so that every record sent is unique (a
/// duplicate would be refused) and passes every rule as its template did. Generating and
/// encoding each record anew cost the driver about a fifth of this 2-core machine at 50,000
/// records a second.
struct UploadTemplates {
    struct Template {
        var county: DivisionCode
        var institution: String
        /// Each record encoded, with the offset of its setl_id's serial digits.
        var records: [(bytes: [UInt8], serialAt: Int)]
    }

    /// The serial's width in a setl_id (the insured county's code, then the serial).
    static let serialWidth = 14

    private(set) var templates: [Template]
    private var nextTemplate = 0
    private var serial: UInt64 = 0

    /// One template per county with institutions (`perCounty` each), taken in turn: the load
    /// falls on every county alike, as every county's hospitals upload.
    init(topology: Topology, batchSize: Int, seed: UInt64, perCounty: Int = 2) throws {
        var generator = DirtyDataGenerator(topology: topology, catalog: .national(), batchSize: batchSize, dirtyRate: 0, kinds: [:],
                                           seed: seed, duplicateLagBatches: 1)
        let counties = topology.counties.map(\.id).filter { !topology.institutions(of: $0).isEmpty }
        var plans: [DivisionCode: [UploadBatchPlan]] = [:]
        var drawn = 0
        while counties.contains(where: { plans[$0, default: []].count < perCounty }) {
            // The generator picks the county; draws for a county already served are left out.
            let plan = generator.nextBatch()
            if plans[plan.county, default: []].count < perCounty { plans[plan.county, default: []].append(plan) }
            drawn += 1
            guard drawn < 1_000 * counties.count * perCounty else {
                throw SettleNetError(.bench, "upload templates: the generator never drew some counties of \(topology.file)")
            }
        }
        // County by county in turn: A B C ... A B C ...
        let inTurn = (0..<perCounty).flatMap { round in counties.map { plans[$0]![round] } }
        templates = try inTurn.map { plan in
            let records = try plan.records.map { generated in
                let bytes: [UInt8] = try generated.record.serializedBytes()
                let setlID = Array(generated.record.setlID.utf8)
                guard setlID.count > Self.serialWidth, let at = Self.offset(of: setlID, in: bytes) else {
                    throw SettleNetError(.bench, "upload template: setl_id \(generated.record.setlID) not found in its record's bytes")
                }
                return (bytes, at + setlID.count - Self.serialWidth)
            }
            return Template(county: plan.county, institution: plan.institution, records: records)
        }
    }

    /// The next batch: its county, its institution and its records' encoded bytes.
    mutating func nextBatch() -> (county: DivisionCode, institution: String, records: [[UInt8]]) {
        let template = templates[nextTemplate]
        nextTemplate = (nextTemplate + 1) % templates.count
        let records = template.records.map { record in
            serial += 1
            var bytes = record.bytes
            var value = serial
            for index in stride(from: record.serialAt + Self.serialWidth - 1, through: record.serialAt, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            return bytes
        }
        return (template.county, template.institution, records)
    }

    static func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}
