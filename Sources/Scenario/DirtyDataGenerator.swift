import NetworkTopology
import SettlementCore
import SettlementModel

/// One record the load will upload, with what the network must do about it.
public struct GeneratedRecord: Sendable, Equatable {
    public var record: UploadRecord
    /// nil for a clean record; else one of missing_field, bad_format, unknown_code, bad_admdvs,
    /// amount_mismatch, date_order, duplicate (`DirtyDataGenerator.kinds`).
    public var dirtyKind: String?
    /// The rule id the network must reject it with, and the tier that must do so (nil for clean).
    public var expectedRule: String?
    public var expectedTier: DataTier?
    /// A spoiled record's clean original: what its institution re-uploads once told.
    public var original: UploadRecord?

    public init(record: UploadRecord, dirtyKind: String? = nil, expectedRule: String? = nil, expectedTier: DataTier? = nil,
                original: UploadRecord? = nil) {
        self.record = record
        self.original = original
        self.dirtyKind = dirtyKind
        self.expectedRule = expectedRule
        self.expectedTier = expectedTier
    }

    public var isDirty: Bool { dirtyKind != nil }
}

/// One 4101 batch: the records one institution of one county uploads together.
public struct UploadBatchPlan: Sendable, Equatable {
    public var county: DivisionCode
    public var institution: String
    public var records: [GeneratedRecord]

    public init(county: DivisionCode, institution: String, records: [GeneratedRecord]) {
        self.county = county
        self.institution = institution
        self.records = records
    }
}

/// A pure, seeded generator of upload batches with a known share of dirty records.
///
/// Every dirty record carries exactly one defect, chosen so that the first rule
/// `UploadValidator.check(_:)` reports is the intended one (the validator checks R101, R102,
/// R104, R103, R105, R106 in that order). Duplicates copy a clean record generated at least
/// `duplicateLagBatches` batches earlier, so the original has been accepted by then, and are
/// expected to be caught by the tier where the two copies first meet. The same seed gives the
/// same sequence of batches on every machine: nothing here iterates a `Set` or a `Dictionary`.
///
/// With a governance loop, every institution starts with every systematic cause of dirt (each
/// kind at its weighted share of `dirtyRate`). Feedback about a kind (`feedback(institution:kind:)`)
/// fixes that cause with the loop's probability, leaving `residualShare` of its rate. The fix
/// draws come from their own stream; feedback arrives when the network answers, so a run with
/// the loop on is replayable batch by batch only as far as the answers come in the same order.
public struct DirtyDataGenerator: Sendable {
    /// The seven dirty kinds, in the order the kind draw walks them.
    public static let kinds: [String] = ["missing_field", "bad_format", "unknown_code", "bad_admdvs",
                                         "amount_mismatch", "date_order", "duplicate"]
    /// At most this many clean records wait to be duplicated (the most recent ones).
    public static let duplicatePoolLimit = 10_000

    private var random: SplitMix64
    private let routing: RoutingTable
    private let catalog: Catalog
    /// Catalog codes sorted, so that picks do not depend on `Set` order (which is per process).
    private let drugs: [String]
    private let services: [String]
    private let diagnoses: [String]
    /// Every county of the topology (insured places) and those with institutions (upload places).
    private let counties: [DivisionCode]
    private let uploadingCounties: [DivisionCode]
    private let institutions: [DivisionCode: [String]]
    private let populationSizes: [DivisionCode: Int]
    private let batchSize: Int
    private let dirtyRate: Double
    /// Normalised kind weights in `kinds` order; empty when no kind has a positive weight.
    private let weights: [(kind: String, share: Double)]
    private let duplicateLagBatches: Int
    /// Whether a duplicate can be drawn at all: only then are clean records kept as originals
    /// (keeping them cost a clean load's driver a sixth of its time).
    private let keepsOriginals: Bool
    private let governance: UploadLoad.Governance?
    private var fixRandom: SplitMix64
    /// Per institution, the kinds whose systematic cause it has fixed.
    private var fixedCauses: [String: Set<String>] = [:]
    /// Causes fixed so far, over all institutions.
    public private(set) var causesFixed = 0

    /// Batches generated so far; the next batch's number.
    public private(set) var batchesGenerated = 0
    /// The generator-wide serial behind every setl_id.
    private var serial: UInt64 = 0
    /// Clean records not yet old enough to be duplicated, oldest first (from `pendingHead`).
    private var pending: [(batch: Int, record: UploadRecord)] = []
    private var pendingHead = 0
    /// Clean records that may be duplicated, oldest first from `poolHead`; nil once copied.
    private var pool: [UploadRecord?] = []
    private var poolHead = 0
    private var poolLive = 0

    /// - Parameters:
    ///   - batchSize: records per batch (at least 1).
    ///   - dirtyRate: probability that a record is dirty, 0...1.
    ///   - kinds: weight of each dirty kind; normalised. Names outside `kinds` are ignored; when
    ///     no kind has a positive weight all seven are equally likely.
    ///   - duplicateLagBatches: a duplicate copies a record generated at least this many batches
    ///     before (at least 1: never a record of the same batch).
    public init(topology: Topology, catalog: Catalog, batchSize: Int, dirtyRate: Double, kinds: [String: Double],
                seed: UInt64, duplicateLagBatches: Int, governance: UploadLoad.Governance? = nil) {
        random = SplitMix64(seed: seed)
        fixRandom = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        self.governance = governance
        routing = topology.routingTable
        self.catalog = catalog
        drugs = catalog.drugs.sorted()
        services = catalog.services.sorted()
        diagnoses = catalog.diagnoses.sorted()
        precondition(!drugs.isEmpty && !services.isEmpty && !diagnoses.isEmpty, "the catalog has no codes to draw from")
        counties = topology.counties.map(\.id)
        var institutions: [DivisionCode: [String]] = [:]
        var sizes: [DivisionCode: Int] = [:]
        for county in counties {
            institutions[county] = topology.institutions(of: county)
            sizes[county] = topology.population(of: county)?.size ?? 0
        }
        self.institutions = institutions
        populationSizes = sizes
        uploadingCounties = counties.filter { !(institutions[$0] ?? []).isEmpty }
        precondition(!uploadingCounties.isEmpty, "topology \(topology.file) has no county with institutions")
        self.batchSize = max(1, batchSize)
        self.dirtyRate = min(1, max(0, dirtyRate))
        var positive = Self.kinds.compactMap { kind in kinds[kind].flatMap { $0 > 0 ? (kind, $0) : nil } }
        if positive.isEmpty { positive = Self.kinds.map { ($0, 1.0) } }
        let total = positive.reduce(0) { $0 + $1.1 }
        weights = positive.map { (kind: $0.0, share: $0.1 / total) }
        self.duplicateLagBatches = max(1, duplicateLagBatches)
        keepsOriginals = self.dirtyRate > 0 && weights.contains { $0.kind == "duplicate" }
    }

    // MARK: - Batches

    /// The next batch. `canDuplicate` says whether a pooled clean record may be copied now;
    /// a load driver passes "its original is confirmed stored" so that the copy, not the
    /// original, is the one the network must refuse. Tests leave it at "always".
    public mutating func nextBatch(canDuplicate: (UploadRecord) -> Bool = { _ in true }) -> UploadBatchPlan {
        let number = batchesGenerated
        batchesGenerated += 1
        admitEligible(upTo: number - duplicateLagBatches)
        let county = pick(uploadingCounties)
        let institution = pick(institutions[county]!)
        var records: [GeneratedRecord] = []
        records.reserveCapacity(batchSize)
        let causes = kindWeights(of: institution)
        let dirtyShare = causes.reduce(0) { $0 + $1.share }
        for _ in 0..<batchSize {
            let drawn: String? = uniform() < dirtyRate * dirtyShare ? drawKind(from: causes) : nil
            if drawn == "duplicate", let original = takeFromPool(where: canDuplicate) {
                records.append(duplicate(of: original, county: county, institution: institution))
                continue
            }
            let clean = cleanRecord(county: county, institution: institution)
            // A duplicate with nothing old enough (or stored) to copy yet becomes another dirty
            // kind, so the injected rate stays the configured one.
            let kind = drawn == "duplicate" ? drawKind(from: causes, excludingDuplicate: true) : drawn
            guard let kind else {
                // Clean: sent as it is, and a candidate original for later duplicates.
                if keepsOriginals { pending.append((number, clean)) }
                records.append(GeneratedRecord(record: clean))
                continue
            }
            records.append(spoil(clean, kind: kind, county: county))
        }
        return UploadBatchPlan(county: county, institution: institution, records: records)
    }

    // MARK: - Clean records

    private mutating func cleanRecord(county: DivisionCode, institution: String) -> UploadRecord {
        let insured = pick(counties)
        let size = populationSizes[insured] ?? 0
        let index = size > 0 ? Int(random.next() % UInt64(size)) : 0
        var record = UploadRecord()
        record.psnNo = SyntheticPopulation(county: insured, size: max(1, size)).psnNo(index)
        record.insuplcAdmdvs = insured.value
        serial += 1
        record.setlID = insured.value + Self.digits(serial, width: 14)
        record.mdtrtareaAdmvs = county.value
        record.fixmedinsCode = institution
        let admission = Self.firstDay2026 + Int(random.next() % 365)
        record.admDate = Self.dateText(day: admission)
        record.dscgDate = Self.dateText(day: admission + Int(random.next() % 21))
        record.diseCodg = pick(diagnoses)
        record.atddrCode = "D" + Self.digits(random.next() % 100_000_000_000, width: 11)
        record.nursCode = "N" + Self.digits(random.next() % 100_000_000_000, width: 11)
        let count = 1 + Int(random.next() % 6)
        for _ in 0..<count {
            var detail = FeeDetail()
            if random.next() % 2 == 0 {
                detail.kind = "drug"
                detail.code = pick(drugs)
            } else {
                detail.kind = "service"
                detail.code = pick(services)
            }
            detail.amount = amount(100...50_000)
            record.details.append(detail)
        }
        record.medfeeSumamt = record.details.reduce(0) { $0 + $1.amount }
        record.fundPaySumamt = record.medfeeSumamt * Int64(random.next() % 91) / 100
        record.psnPay = record.medfeeSumamt - record.fundPaySumamt
        return record
    }

    // MARK: - Dirty records

    /// Gives a clean record exactly one defect of `kind`.
    private mutating func spoil(_ clean: UploadRecord, kind: String, county: DivisionCode) -> GeneratedRecord {
        var record = clean
        let rule: UploadRule
        switch kind {
        case "missing_field":
            rule = UploadRules.missingField
            missField(&record)
        case "bad_format":
            rule = UploadRules.badFormat
            misformat(&record)
        case "unknown_code":
            rule = UploadRules.unknownCode
            unknownCode(&record)
        case "bad_admdvs":
            rule = UploadRules.badAdmdvs
            badDivision(&record, county: county)
        case "amount_mismatch":
            rule = UploadRules.amountMismatch
            breakAmounts(&record)
        case "date_order":
            rule = UploadRules.dateOrder
            // Discharged 1-30 days before admission; both dates stay well formed.
            let admission = Self.dayNumber(record.admDate)!
            record.dscgDate = Self.dateText(day: admission - 1 - Int(random.next() % 30))
        default:
            preconditionFailure("unknown dirty kind \(kind)")
        }
        return GeneratedRecord(record: record, dirtyKind: kind, expectedRule: rule.id, expectedTier: rule.tier, original: clean)
    }

    /// R101: blank one required field, drop the details, or blank a detail's code.
    private mutating func missField(_ record: inout UploadRecord) {
        switch random.next() % 12 {
        case 0: record.setlID = ""
        case 1: record.psnNo = ""
        case 2: record.fixmedinsCode = ""
        case 3: record.mdtrtareaAdmvs = ""
        case 4: record.insuplcAdmdvs = ""
        case 5: record.admDate = ""
        case 6: record.dscgDate = ""
        case 7: record.diseCodg = ""
        case 8: record.atddrCode = ""
        case 9: record.nursCode = ""
        case 10: record.details = []
        default: record.details[detailIndex(record)].code = ""
        }
    }

    /// R102: one field of the wrong shape. Nothing R101 looks at is left empty.
    private mutating func misformat(_ record: inout UploadRecord) {
        switch random.next() % 9 {
        case 0: record.atddrCode = String(record.atddrCode.dropFirst())               // doctor code without its D
        case 1: record.nursCode = "D" + record.nursCode.dropFirst()                   // nurse code with a doctor's prefix
        case 2: record.admDate = record.admDate.replacing("-", with: "/")             // 2026/03/01
        case 3: record.dscgDate = record.dscgDate.replacing("-", with: "")            // 20260301
        case 4: record.diseCodg = record.diseCodg.replacing(".", with: "")            // A00000
        case 5: record.psnNo = String(record.psnNo.dropLast(2))                       // 18 digits
        case 6:                                                                       // drug code one character short
            let index = detailIndex(record)
            record.details[index].kind = "drug"
            record.details[index].code = String(pick(drugs).dropLast())
        case 7:                                                                       // service code of 14 digits
            let index = detailIndex(record)
            record.details[index].kind = "service"
            record.details[index].code = String(pick(services).dropLast())
        default:                                                                      // a negative fee line
            record.details[detailIndex(record)].amount.negate()
        }
    }

    /// R103: a well-formed code that the catalog does not hold.
    private mutating func unknownCode(_ record: inout UploadRecord) {
        switch random.next() % 3 {
        case 0:
            let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            record.diseCodg = fresh(in: catalog.diagnoses) {
                "\(letters[Int($0.next() % 26)])\(Self.digits($0.next() % 100, width: 2)).\(Self.digits($0.next() % 1_000, width: 3))"
            }
        case 1:
            let alphanumeric = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
            let index = detailIndex(record)
            record.details[index].kind = "drug"
            record.details[index].code = fresh(in: catalog.drugs) { random in
                "X" + String((1..<20).map { _ in alphanumeric[Int(random.next() % 36)] })
            }
        default:
            let index = detailIndex(record)
            record.details[index].kind = "service"
            record.details[index].code = fresh(in: catalog.services) { "00" + Self.digits($0.next() % 10_000_000_000_000, width: 13) }
        }
    }

    /// R104: a division that does not exist or is not a county, an institution or a treatment
    /// place of another county, or a person number of another county than insuplc_admdvs.
    /// All of them pass R101 and R102, which the validator checks first.
    private mutating func badDivision(_ record: inout UploadRecord, county: DivisionCode) {
        let others = counties.filter { $0 != county }
        let otherUploading = uploadingCounties.filter { $0 != county }
        switch random.next() % 5 {
        case 0 where !otherUploading.isEmpty:
            record.fixmedinsCode = pick(institutions[pick(otherUploading)]!)
        case 1 where !others.isEmpty:
            record.mdtrtareaAdmvs = pick(others).value
        case 2:
            if let insured = DivisionCode(record.insuplcAdmdvs), let parent = routing.parent(of: insured) {
                record.insuplcAdmdvs = parent.value                                   // a city, not a county
            } else {
                record.insuplcAdmdvs = nonexistentDivision()
            }
        case 3 where counties.count > 1:
            let elsewhere = pick(counties.filter { $0.value != record.insuplcAdmdvs })
            record.psnNo = elsewhere.value + record.psnNo.dropFirst(6)                // insured elsewhere than stated
        default:
            record.insuplcAdmdvs = nonexistentDivision()                              // 999999
        }
    }

    /// R105: one amount identity broken, every amount still well formed.
    private mutating func breakAmounts(_ record: inout UploadRecord) {
        let delta = amount(1...1_000)
        switch random.next() % 4 {
        case 0:                                   // total not the sum of the lines (but = fund + person)
            record.medfeeSumamt += delta
            record.psnPay += delta
        case 1:                                   // fund + person not the total
            record.psnPay += delta
        case 2:                                   // a line changed after the total was computed
            record.details[detailIndex(record)].amount += delta
        default:                                  // a negative fund share that still adds up
            record.fundPaySumamt = -delta
            record.psnPay = record.medfeeSumamt + delta
        }
    }

    // MARK: - Duplicates

    /// A second upload of `original` by this batch's institution: valid here, caught where
    /// the two copies meet.
    private func duplicate(of original: UploadRecord, county: DivisionCode, institution: String) -> GeneratedRecord {
        var copy = original
        copy.mdtrtareaAdmvs = county.value
        copy.fixmedinsCode = institution
        let first = DivisionCode(original.mdtrtareaAdmvs)!
        let tier = Self.meetingTier(routing.routeClass(treatment: first, insured: county))
        return GeneratedRecord(record: copy, dirtyKind: "duplicate", expectedRule: UploadRules.duplicate(at: tier).id,
                               expectedTier: tier)
    }

    /// The tier where two uploads from counties of this route class first meet.
    public static func meetingTier(_ route: RouteClass?) -> DataTier {
        switch route {
        case .local: .county
        case .intraCity: .city
        case .intraProvince: .provincial
        case .crossProvince, nil: .national
        }
    }

    /// Moves the clean records of batches up to `batch` into the duplicate pool.
    private mutating func admitEligible(upTo batch: Int) {
        while pendingHead < pending.count, pending[pendingHead].batch <= batch {
            pool.append(pending[pendingHead].record)
            poolLive += 1
            pendingHead += 1
        }
        if pendingHead > 1_024, pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        while poolLive > Self.duplicatePoolLimit {
            if pool[poolHead] != nil { poolLive -= 1 }
            pool[poolHead] = nil
            poolHead += 1
        }
        compactPool()
    }

    /// Removes and returns a uniformly chosen record of the pool that `eligible` accepts, or
    /// nil when none is found in a bounded number of draws (the record is then sent clean).
    private mutating func takeFromPool(where eligible: (UploadRecord) -> Bool) -> UploadRecord? {
        guard poolLive > 0 else { return nil }
        // At least half of the slots from poolHead on are live (compactPool), so live slots are
        // found fast; ineligible ones (not yet confirmed stored) stay for later.
        for _ in 0..<64 {
            let slot = poolHead + Int(random.next() % UInt64(pool.count - poolHead))
            if let record = pool[slot], eligible(record) {
                pool[slot] = nil
                poolLive -= 1
                compactPool()
                return record
            }
        }
        return nil
    }

    private mutating func compactPool() {
        if pool.count - poolHead > 2 * poolLive + 64 {
            pool = pool[poolHead...].filter { $0 != nil }
            poolHead = 0
        }
    }

    // MARK: - Governance

    /// The kinds' shares of the dirty rate at `institution`: the configured weights, a fixed
    /// cause cut to its residual share.
    private func kindWeights(of institution: String) -> [(kind: String, share: Double)] {
        guard let governance, let fixed = fixedCauses[institution], !fixed.isEmpty else { return weights }
        return weights.map { (kind: $0.kind, share: fixed.contains($0.kind) ? $0.share * governance.residualShare : $0.share) }
    }

    /// The dirty rate `institution` produces now (before duplicates fall back to other kinds).
    public func dirtyRate(of institution: String) -> Double {
        dirtyRate * kindWeights(of: institution).reduce(0) { $0 + $1.share }
    }

    /// `institution` was told about records of `kind` it got wrong: it fixes that systematic
    /// cause with the loop's probability. True when this feedback fixed it.
    public mutating func feedback(institution: String, kind: String) -> Bool {
        guard let governance, Self.kinds.contains(kind), !(fixedCauses[institution]?.contains(kind) ?? false) else { return false }
        guard Double(fixRandom.next() >> 11) / Double(UInt64(1) << 53) < governance.fixProbability else { return false }
        fixedCauses[institution, default: []].insert(kind)
        causesFixed += 1
        return true
    }

    /// What the institution uploads instead of a rejected record, naming it (`corrects_setl_id`):
    /// the spoiled record's clean original; for a copy of another's record (a duplicate), the
    /// institution's own record. Nil for a record generated clean: nothing to correct.
    public mutating func correction(of generated: GeneratedRecord, county: DivisionCode, institution: String) -> UploadRecord? {
        if generated.dirtyKind == "duplicate" {
            return replacement(forDuplicate: generated.record.setlID, county: county, institution: institution)
        }
        guard var corrected = generated.original else { return nil }
        corrected.correctsSetlID = corrected.setlID
        return corrected
    }

    /// The institution's own record in place of a copy of `setlID` it uploaded by mistake.
    public mutating func replacement(forDuplicate setlID: String, county: DivisionCode, institution: String) -> UploadRecord {
        var own = cleanRecord(county: county, institution: institution)
        own.correctsSetlID = setlID
        return own
    }

    /// The kind of defect the network cites with a rule id: the cause an institution looks at.
    public static func kind(ofRule ruleID: String) -> String? { UploadRules.all.first { $0.id == ruleID }?.kind }

    // MARK: - Random helpers

    private mutating func uniform() -> Double { Double(random.next() >> 11) / Double(UInt64(1) << 53) }
    private mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    private mutating func amount(_ range: ClosedRange<Int64>) -> Int64 {
        range.lowerBound + Int64(random.next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
    private mutating func detailIndex(_ record: UploadRecord) -> Int { Int(random.next() % UInt64(record.details.count)) }

    /// A dirty kind by `causes`' weights; without duplicates, among the other kinds (nil when
    /// duplicates are the only kind: the record is then sent clean).
    private mutating func drawKind(from causes: [(kind: String, share: Double)], excludingDuplicate: Bool = false) -> String? {
        let candidates = excludingDuplicate ? causes.filter { $0.kind != "duplicate" } : causes
        guard !candidates.isEmpty else { return nil }
        let total = candidates.reduce(0) { $0 + $1.share }
        var roll = uniform() * total
        for (kind, share) in candidates {
            if roll < share { return kind }
            roll -= share
        }
        return candidates.last!.kind
    }

    /// A code from `make` that `known` does not hold.
    private mutating func fresh(in known: Set<String>, _ make: (inout SplitMix64) -> String) -> String {
        while true {
            let code = make(&random)
            if !known.contains(code) { return code }
        }
    }

    /// A well-formed division code that is no node of the topology (999999 unless it is one).
    private func nonexistentDivision() -> String {
        var candidate = 999_999
        while routing.contains(DivisionCode(String(candidate))!) { candidate -= 1 }
        return String(candidate)
    }

    // MARK: - Text

    static func digits(_ value: UInt64, width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// 2026-01-01 as days since 1970-01-01.
    static let firstDay2026 = 20_454

    /// yyyy-MM-dd of a day counted from 1970-01-01 (proleptic Gregorian calendar).
    static func dateText(day: Int) -> String {
        let shifted = day + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return "\(year)-\(digits(UInt64(month), width: 2))-\(digits(UInt64(dayOfMonth), width: 2))"
    }

    /// The day number of a yyyy-MM-dd text, the inverse of `dateText(day:)`.
    static func dayNumber(_ text: String) -> Int? {
        let parts = text.split(separator: "-")
        guard parts.count == 3, let parsedYear = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]) else { return nil }
        let year = month <= 2 ? parsedYear - 1 : parsedYear
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

