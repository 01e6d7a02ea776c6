import SettlementCore
import SettlementModel
import Testing

/// Records built by hand for the county 370211 (Huangdao) of the minimal tree.
enum Uploads {
    static let catalog = Catalog.national()
    static let county = code("370211")
    static let institutions: Set<String> = ["H37021100001", "H37021100002", "H37021100003"]
    static let validator = UploadValidator(county: county, institutions: institutions, routing: Minimal.routing, catalog: catalog)

    static let drug = catalog.drugs.sorted()[0]
    static let longDrug = catalog.drugs.sorted().first { $0.utf8.count == 23 }!
    static let shortDrug = catalog.drugs.sorted().first { $0.utf8.count == 20 }!
    static let service = catalog.services.sorted()[0]
    static let diagnosis = catalog.diagnoses.sorted()[0]

    /// A clean inpatient record: a Zhengzhou person treated in Huangdao, two fee lines.
    static var clean: UploadRecord {
        var record = UploadRecord()
        record.setlID = "41010200000000000001"
        record.psnNo = "41010200000000000042"
        record.fixmedinsCode = "H37021100002"
        record.mdtrtareaAdmvs = "370211"
        record.insuplcAdmdvs = "410102"
        record.admDate = "2026-03-01"
        record.dscgDate = "2026-03-05"
        record.diseCodg = diagnosis
        record.atddrCode = "D12345678901"
        record.nursCode = "N10987654321"
        record.details = [detail(drug, "drug", 12_000), detail(service, "service", 3_500)]
        record.medfeeSumamt = 15_500
        record.fundPaySumamt = 10_000
        record.psnPay = 5_500
        return record
    }

    static func detail(_ code: String, _ kind: String, _ amount: Int64) -> FeeDetail {
        var detail = FeeDetail()
        detail.code = code
        detail.kind = kind
        detail.amount = amount
        return detail
    }
}

/// One hand-made record variant and what the validator must say about it.
struct UploadCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// The rule id, or nil for a record that must pass.
    let rule: String?
    let field: String?
    let change: @Sendable (inout UploadRecord) -> Void

    var testDescription: String { "\(rule ?? "clean"): \(name)" }

    var record: UploadRecord {
        var record = Uploads.clean
        change(&record)
        return record
    }

    static func clean(_ name: String, for rule: String, _ change: @escaping @Sendable (inout UploadRecord) -> Void) -> UploadCase {
        UploadCase(name: "\(name) (\(rule))", rule: nil, field: nil, change: change)
    }

    static func dirty(_ rule: String, _ field: String, _ name: String, _ change: @escaping @Sendable (inout UploadRecord) -> Void) -> UploadCase {
        UploadCase(name: name, rule: rule, field: field, change: change)
    }
}

@Suite struct UploadRulesTests {
    static let cleanCases: [UploadCase] = [
        .clean("the base record", for: "DQ-R101") { _ in },
        .clean("every optional field at its default", for: "DQ-R101") { $0.batchIndex = 0 },
        .clean("a 23-character drug code and a 15-digit service code", for: "DQ-R102") {
            $0.details[0].code = Uploads.longDrug
        },
        .clean("a 20-character drug code", for: "DQ-R102") { $0.details[0].code = Uploads.shortDrug },
        .clean("end-of-month dates", for: "DQ-R102") { $0.admDate = "2026-01-31"; $0.dscgDate = "2026-02-28" },
        .clean("a person insured in the treating county", for: "DQ-R104") {
            $0.psnNo = "37021100000000000007"
            $0.insuplcAdmdvs = "370211"
        },
        .clean("another registered institution of the county", for: "DQ-R104") { $0.fixmedinsCode = "H37021100003" },
        .clean("every code from the catalog", for: "DQ-R103") {
            $0.details.append(Uploads.detail(Uploads.catalog.services.sorted().last!, "service", 500))
            $0.medfeeSumamt += 500
            $0.psnPay += 500
        },
        .clean("the fund pays everything", for: "DQ-R105") { $0.fundPaySumamt = 15_500; $0.psnPay = 0 },
        .clean("the person pays everything", for: "DQ-R105") { $0.fundPaySumamt = 0; $0.psnPay = 15_500 },
        .clean("a free line", for: "DQ-R105") { $0.details[1].amount = 0; $0.medfeeSumamt = 12_000; $0.psnPay = 2_000 },
        .clean("discharged the day of admission", for: "DQ-R106") { $0.dscgDate = $0.admDate },
        .clean("discharged the next year", for: "DQ-R106") { $0.admDate = "2026-12-28"; $0.dscgDate = "2027-01-04" },
    ]

    static let dirtyCases: [UploadCase] = [
        // DQ-R101: required fields.
        .dirty("DQ-R101", "setl_id", "no settlement id") { $0.setlID = "" },
        .dirty("DQ-R101", "psn_no", "no person number") { $0.psnNo = "" },
        .dirty("DQ-R101", "fixmedins_code", "no institution") { $0.fixmedinsCode = "" },
        .dirty("DQ-R101", "mdtrtarea_admvs", "no place of treatment") { $0.mdtrtareaAdmvs = "" },
        .dirty("DQ-R101", "insuplc_admdvs", "no insured place") { $0.insuplcAdmdvs = "" },
        .dirty("DQ-R101", "adm_date", "no admission date") { $0.admDate = "" },
        .dirty("DQ-R101", "dscg_date", "no discharge date") { $0.dscgDate = "" },
        .dirty("DQ-R101", "dise_codg", "no diagnosis") { $0.diseCodg = "" },
        .dirty("DQ-R101", "atddr_code", "no doctor") { $0.atddrCode = "" },
        .dirty("DQ-R101", "nurs_code", "no nurse") { $0.nursCode = "" },
        .dirty("DQ-R101", "details", "no fee details") { $0.details = [] },
        .dirty("DQ-R101", "details[1].code", "a fee line without a code") { $0.details[1].code = "" },
        .dirty("DQ-R101", "setl_id", "two fields missing: the first in field order is named") { $0.setlID = ""; $0.nursCode = "" },

        // DQ-R102: formats.
        .dirty("DQ-R102", "psn_no", "a 19-digit person number") { $0.psnNo = String($0.psnNo.dropLast()) },
        .dirty("DQ-R102", "psn_no", "a person number with a letter") { $0.psnNo = "41010200000000000X42" },
        .dirty("DQ-R102", "adm_date", "an admission date with slashes") { $0.admDate = "2026/03/01" },
        .dirty("DQ-R102", "adm_date", "an admission date without separators") { $0.admDate = "20260301" },
        .dirty("DQ-R102", "dscg_date", "a discharge in month 13") { $0.dscgDate = "2026-13-05" },
        .dirty("DQ-R102", "dscg_date", "a discharge on day 0") { $0.dscgDate = "2026-03-00" },
        .dirty("DQ-R102", "atddr_code", "a doctor code without its D") { $0.atddrCode = "12345678901" },
        .dirty("DQ-R102", "atddr_code", "a doctor code of 12 digits") { $0.atddrCode = "112345678901" },
        .dirty("DQ-R102", "nurs_code", "a nurse code with a doctor's prefix") { $0.nursCode = "D10987654321" },
        .dirty("DQ-R102", "nurs_code", "a nurse code too long") { $0.nursCode = "N109876543210" },
        .dirty("DQ-R102", "dise_codg", "a diagnosis without its dot") { $0.diseCodg = "A00000" },
        .dirty("DQ-R102", "dise_codg", "a diagnosis in lower case") { $0.diseCodg = "a00.000" },
        .dirty("DQ-R102", "details[0].code", "a drug code one character short") { $0.details[0].code = String(Uploads.drug.dropLast()) },
        .dirty("DQ-R102", "details[0].code", "a drug code in lower case") { $0.details[0].code = Uploads.shortDrug.lowercased() },
        .dirty("DQ-R102", "details[1].code", "a service code with a letter") { $0.details[1].code = "00123456789012X" },
        .dirty("DQ-R102", "details[1].code", "a fee line of an unknown kind") { $0.details[1].kind = "material" },
        .dirty("DQ-R102", "details[0].code", "a service code on a drug line") { $0.details[0].code = Uploads.service },
        .dirty("DQ-R102", "details[1].amount", "a negative fee line") { $0.details[1].amount = -3_500 },

        // DQ-R104: divisions and institution (checked before the catalog).
        .dirty("DQ-R104", "mdtrtarea_admvs", "a place of treatment that does not exist") { $0.mdtrtareaAdmvs = "999999" },
        .dirty("DQ-R104", "mdtrtarea_admvs", "a place of treatment that is a city") { $0.mdtrtareaAdmvs = "370200" },
        .dirty("DQ-R104", "mdtrtarea_admvs", "a place of treatment of another county") { $0.mdtrtareaAdmvs = "370202" },
        .dirty("DQ-R104", "insuplc_admdvs", "an insured place that does not exist") { $0.insuplcAdmdvs = "999999" },
        .dirty("DQ-R104", "insuplc_admdvs", "an insured place that is a province") { $0.insuplcAdmdvs = "410000" },
        .dirty("DQ-R104", "insuplc_admdvs", "an insured place that is no division code") { $0.insuplcAdmdvs = "41010X" },
        .dirty("DQ-R104", "fixmedins_code", "an institution of another county") { $0.fixmedinsCode = "H37020200001" },
        .dirty("DQ-R104", "fixmedins_code", "an institution the county never registered") { $0.fixmedinsCode = "H37021199999" },
        .dirty("DQ-R104", "psn_no", "a person of another county than the insured place") { $0.psnNo = "41010300000000000042" },
        .dirty("DQ-R104", "mdtrtarea_admvs", "a bad division and an unknown code: divisions come first") {
            $0.mdtrtareaAdmvs = "999999"
            $0.diseCodg = UploadRulesTests.unknownDiagnosis
        },

        // DQ-R103: catalog codes.
        .dirty("DQ-R103", "dise_codg", "a diagnosis not in the catalog") { $0.diseCodg = UploadRulesTests.unknownDiagnosis },
        .dirty("DQ-R103", "details[0].code", "a drug not in the catalog") { $0.details[0].code = UploadRulesTests.unknownDrug },
        .dirty("DQ-R103", "details[1].code", "a service item not in the catalog") { $0.details[1].code = UploadRulesTests.unknownService },
        .dirty("DQ-R103", "details[0].code", "an unknown drug and a broken total: the catalog comes first") {
            $0.details[0].code = UploadRulesTests.unknownDrug
            $0.medfeeSumamt += 1
        },

        // DQ-R105: amount identities.
        .dirty("DQ-R105", "medfee_sumamt", "a total that is not the sum of the lines") { $0.medfeeSumamt = 15_600; $0.psnPay = 5_600 },
        .dirty("DQ-R105", "medfee_sumamt", "a line changed after the total") { $0.details[0].amount = 12_001 },
        .dirty("DQ-R105", "fund_pay_sumamt", "fund plus person not the total") { $0.psnPay = 5_501 },
        .dirty("DQ-R105", "fund_pay_sumamt", "a negative fund share that adds up") { $0.fundPaySumamt = -1; $0.psnPay = 15_501 },
        .dirty("DQ-R105", "fund_pay_sumamt", "a negative personal share that adds up") { $0.fundPaySumamt = 15_501; $0.psnPay = -1 },
        .dirty("DQ-R105", "medfee_sumamt", "a broken total and a date out of order: amounts come first") {
            $0.medfeeSumamt = 0
            $0.dscgDate = "2026-02-01"
        },

        // DQ-R106: dates in order.
        .dirty("DQ-R106", "dscg_date", "discharged the day before admission") { $0.dscgDate = "2026-02-28" },
        .dirty("DQ-R106", "dscg_date", "discharged the year before") { $0.admDate = "2026-01-02"; $0.dscgDate = "2025-12-30" },
    ]

    static let unknownDiagnosis = firstUnknown(in: Uploads.catalog.diagnoses) { "Z\(String(100 + $0 / 1_000).suffix(2)).\(String(1_000 + $0 % 1_000).suffix(3))" }
    static let unknownDrug = firstUnknown(in: Uploads.catalog.drugs) { "X" + String(repeating: "0", count: 11) + String(10_000_000 + $0) }
    static let unknownService = firstUnknown(in: Uploads.catalog.services) { "00" + String(10_000_000_000_000 + $0).suffix(13) }

    static func firstUnknown(in known: Set<String>, _ make: (Int) -> String) -> String {
        var index = 0
        while known.contains(make(index)) { index += 1 }
        return make(index)
    }

    @Test(arguments: cleanCases)
    func cleanRecordPasses(_ example: UploadCase) {
        #expect(Uploads.validator.check(example.record) == nil)
    }

    @Test(arguments: dirtyCases)
    func dirtyRecordFailsWithItsRuleAndField(_ example: UploadCase) throws {
        let violation = try #require(Uploads.validator.check(example.record))
        #expect(violation.rule.id == example.rule)
        #expect(violation.field == example.field)
    }

    @Test func everyRecordRuleHasCleanAndDirtyExamples() {
        let recordRules = ["DQ-R101", "DQ-R102", "DQ-R103", "DQ-R104", "DQ-R105", "DQ-R106"]
        for rule in recordRules {
            #expect(Self.cleanCases.contains { $0.name.hasSuffix("(\(rule))") }, "no clean example for \(rule)")
            #expect(Self.dirtyCases.contains { $0.rule == rule }, "no dirty example for \(rule)")
        }
    }

    @Test func ruleCatalogIsConsistent() throws {
        let ids = UploadRules.all.map(\.id)
        #expect(Set(ids).count == ids.count)
        for rule in UploadRules.all { #expect(UploadRules.rule(id: rule.id) == rule) }
        #expect(UploadRules.rule(id: "DQ-R999") == nil)
        for rule in UploadRules.all where !rule.id.hasPrefix("DQ-R2") {
            #expect(rule.tier == .county, "\(rule.id) is a record rule: the county checks it")
        }
        #expect(UploadRules.all.filter { $0.kind == "duplicate" }.map(\.id) == ["DQ-R201", "DQ-R202", "DQ-R203", "DQ-R204"])
        #expect(DataTier.allCases.map { UploadRules.duplicate(at: $0).tier } == DataTier.allCases)
        #expect(DataTier(Tier.province) == .provincial)
    }

    @Test func aValidatorOfAnotherCountyRefusesTheRecord() throws {
        let elsewhere = UploadValidator(county: code("370202"), institutions: ["H37020200001"], routing: Minimal.routing,
                                        catalog: Uploads.catalog)
        let violation = try #require(elsewhere.check(Uploads.clean))
        #expect(violation.rule == UploadRules.badAdmdvs)
        #expect(violation.field == "mdtrtarea_admvs")
    }

    @Test func aRecordCodedAgainstAnotherCatalogVersionFailsOnItsCodes() throws {
        let other = Catalog.national(version: "V2025.01", seed: 7)
        let validator = UploadValidator(county: Uploads.county, institutions: Uploads.institutions, routing: Minimal.routing, catalog: other)
        let violation = try #require(validator.check(Uploads.clean))
        #expect(violation.rule == UploadRules.unknownCode)
        #expect(violation.field == "dise_codg")
    }
}
