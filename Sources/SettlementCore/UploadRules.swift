import SettlementModel

/// The tiers as data-quality reports name them.
public enum DataTier: String, CaseIterable, Sendable, Codable {
    case county, city, provincial, national

    public init(_ tier: Tier) {
        switch tier {
        case .county: self = .county
        case .city: self = .city
        case .province: self = .provincial
        case .national: self = .national
        }
    }
}

/// One data-quality rule: a stable id, what it checks, the field, and the tier that checks it
/// (the first tier able to see the problem). docs/DATA_QUALITY.md lists them.
public struct UploadRule: Sendable, Equatable {
    public let id: String
    public let checks: String
    public let field: String
    public let tier: DataTier
    /// The generator's dirty kind that this rule catches.
    public let kind: String
}

public enum UploadRules {
    public static let missingField = UploadRule(id: "DQ-R101", checks: "a required field is missing", field: "(the field)", tier: .county, kind: "missing_field")
    public static let badFormat = UploadRule(id: "DQ-R102", checks: "wrong format: code lengths, dates yyyy-MM-dd, D/N prefixes of doctor and nurse codes", field: "(the field)", tier: .county, kind: "bad_format")
    public static let unknownCode = UploadRule(id: "DQ-R103", checks: "diagnosis, drug or service code not in the catalog version the tier holds", field: "dise_codg / details[i].code", tier: .county, kind: "unknown_code")
    public static let badAdmdvs = UploadRule(id: "DQ-R104", checks: "division code that does not exist, or institution that does not belong to the uploading county", field: "mdtrtarea_admvs / insuplc_admdvs / fixmedins_code", tier: .county, kind: "bad_admdvs")
    public static let amountMismatch = UploadRule(id: "DQ-R105", checks: "amount identity broken: medfee_sumamt = sum of details = fund_pay_sumamt + psn_pay", field: "medfee_sumamt", tier: .county, kind: "amount_mismatch")
    public static let dateOrder = UploadRule(id: "DQ-R106", checks: "discharge before admission", field: "dscg_date", tier: .county, kind: "date_order")
    public static let duplicateInCounty = UploadRule(id: "DQ-R201", checks: "the same setl_id uploaded twice within a county", field: "setl_id", tier: .county, kind: "duplicate")
    public static let duplicateInCity = UploadRule(id: "DQ-R202", checks: "the same setl_id uploaded by two counties of a city", field: "setl_id", tier: .city, kind: "duplicate")
    public static let duplicateInProvince = UploadRule(id: "DQ-R203", checks: "the same setl_id uploaded by two cities of a province", field: "setl_id", tier: .provincial, kind: "duplicate")
    public static let duplicateNational = UploadRule(id: "DQ-R204", checks: "the same setl_id uploaded in two provinces", field: "setl_id", tier: .national, kind: "duplicate")

    public static let all: [UploadRule] = [missingField, badFormat, unknownCode, badAdmdvs, amountMismatch, dateOrder,
                                           duplicateInCounty, duplicateInCity, duplicateInProvince, duplicateNational]

    public static func duplicate(at tier: DataTier) -> UploadRule {
        switch tier {
        case .county: duplicateInCounty
        case .city: duplicateInCity
        case .provincial: duplicateInProvince
        case .national: duplicateNational
        }
    }

    public static func rule(id: String) -> UploadRule? { all.first { $0.id == id } }
}

/// A rule a record broke, and the field.
public struct Violation: Equatable, Sendable {
    public var rule: UploadRule
    public var field: String
    public init(rule: UploadRule, field: String) {
        self.rule = rule
        self.field = field
    }
}

/// The record checks of the county tier, pure. Duplicates are checked by each tier against
/// its own store (the shell), since they need what that tier has seen.
public struct UploadValidator: Sendable {
    public let county: DivisionCode
    public let institutions: Set<String>
    public let routing: RoutingTable
    public let catalog: Catalog

    public init(county: DivisionCode, institutions: Set<String>, routing: RoutingTable, catalog: Catalog) {
        self.county = county
        self.institutions = institutions
        self.routing = routing
        self.catalog = catalog
    }

    /// The first rule `record` breaks, in rule order, or nil when it is clean.
    public func check(_ record: UploadRecord) -> Violation? {
        // DQ-R101: required fields, in this order. Written out: an array of them, or of key
        // paths, cost more than all the other rules (a batch has a thousand records).
        func missing(_ field: String) -> Violation { Violation(rule: UploadRules.missingField, field: field) }
        if record.setlID.isEmpty { return missing("setl_id") }
        if record.psnNo.isEmpty { return missing("psn_no") }
        if record.fixmedinsCode.isEmpty { return missing("fixmedins_code") }
        if record.mdtrtareaAdmvs.isEmpty { return missing("mdtrtarea_admvs") }
        if record.insuplcAdmdvs.isEmpty { return missing("insuplc_admdvs") }
        if record.admDate.isEmpty { return missing("adm_date") }
        if record.dscgDate.isEmpty { return missing("dscg_date") }
        if record.diseCodg.isEmpty { return missing("dise_codg") }
        if record.atddrCode.isEmpty { return missing("atddr_code") }
        if record.nursCode.isEmpty { return missing("nurs_code") }
        if record.details.isEmpty { return Violation(rule: UploadRules.missingField, field: "details") }
        if let index = record.details.firstIndex(where: { $0.code.isEmpty }) {
            return Violation(rule: UploadRules.missingField, field: "details[\(index)].code")
        }

        // DQ-R102: formats.
        if !Self.isPersonNumber(record.psnNo) {
            return Violation(rule: UploadRules.badFormat, field: "psn_no")
        }
        if !Self.isDate(record.admDate) { return Violation(rule: UploadRules.badFormat, field: "adm_date") }
        if !Self.isDate(record.dscgDate) { return Violation(rule: UploadRules.badFormat, field: "dscg_date") }
        if !Self.isStaffCode(record.atddrCode, prefix: UInt8(ascii: "D")) { return Violation(rule: UploadRules.badFormat, field: "atddr_code") }
        if !Self.isStaffCode(record.nursCode, prefix: UInt8(ascii: "N")) { return Violation(rule: UploadRules.badFormat, field: "nurs_code") }
        if !Self.isDiagnosis(record.diseCodg) { return Violation(rule: UploadRules.badFormat, field: "dise_codg") }
        for (index, detail) in record.details.enumerated() {
            let ok = detail.kind == "drug" ? Self.isDrugCode(detail.code) : detail.kind == "service" ? Self.isServiceCode(detail.code) : false
            if !ok { return Violation(rule: UploadRules.badFormat, field: "details[\(index)].code") }
            if detail.amount < 0 { return Violation(rule: UploadRules.badFormat, field: "details[\(index)].amount") }
        }

        // DQ-R104: divisions and institution.
        guard let treatment = DivisionCode(record.mdtrtareaAdmvs), routing.tier(of: treatment) == .county else {
            return Violation(rule: UploadRules.badAdmdvs, field: "mdtrtarea_admvs")
        }
        guard let insured = DivisionCode(record.insuplcAdmdvs), routing.tier(of: insured) == .county else {
            return Violation(rule: UploadRules.badAdmdvs, field: "insuplc_admdvs")
        }
        if record.mdtrtareaAdmvs != county.value { return Violation(rule: UploadRules.badAdmdvs, field: "mdtrtarea_admvs") }
        if !institutions.contains(record.fixmedinsCode) { return Violation(rule: UploadRules.badAdmdvs, field: "fixmedins_code") }
        if !record.psnNo.hasPrefix(record.insuplcAdmdvs) { return Violation(rule: UploadRules.badAdmdvs, field: "psn_no") }

        // DQ-R103: codes in the catalog.
        if !catalog.diagnoses.contains(record.diseCodg) { return Violation(rule: UploadRules.unknownCode, field: "dise_codg") }
        for (index, detail) in record.details.enumerated() {
            let known = detail.kind == "drug" ? catalog.drugs.contains(detail.code) : catalog.services.contains(detail.code)
            if !known { return Violation(rule: UploadRules.unknownCode, field: "details[\(index)].code") }
        }

        // DQ-R105: amount identities.
        let sum = record.details.reduce(Int64(0)) { $0 &+ $1.amount }
        if sum != record.medfeeSumamt { return Violation(rule: UploadRules.amountMismatch, field: "medfee_sumamt") }
        if record.fundPaySumamt < 0 || record.psnPay < 0 || record.fundPaySumamt &+ record.psnPay != record.medfeeSumamt {
            return Violation(rule: UploadRules.amountMismatch, field: "fund_pay_sumamt")
        }

        // DQ-R106: dates in order (yyyy-MM-dd compares as text).
        if record.dscgDate < record.admDate { return Violation(rule: UploadRules.dateOrder, field: "dscg_date") }
        return nil
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    static func isUpperOrDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (byte >= 0x41 && byte <= 0x5A) }

    /// `check` on `text`'s UTF-8 in place (String's views cost more than the checks).
    static func utf8(_ text: String, _ check: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        var text = text
        return text.withUTF8(check)
    }

    /// yyyy-MM-dd with a real month and day.
    static func isDate(_ text: String) -> Bool {
        utf8(text) { bytes in
            guard bytes.count == 10, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[0..<4].allSatisfy(isDigit),
                  isDigit(bytes[5]), isDigit(bytes[6]), isDigit(bytes[8]), isDigit(bytes[9]) else { return false }
            let month = Int(bytes[5] - 0x30) * 10 + Int(bytes[6] - 0x30), day = Int(bytes[8] - 0x30) * 10 + Int(bytes[9] - 0x30)
            return (1...12).contains(month) && (1...31).contains(day)
        }
    }

    /// D or N followed by 11 digits.
    static func isStaffCode(_ text: String, prefix: UInt8) -> Bool {
        utf8(text) { bytes in bytes.count == 12 && bytes[0] == prefix && bytes.dropFirst().allSatisfy(isDigit) }
    }

    /// A00.000: a capital letter, two digits, a dot, three digits.
    static func isDiagnosis(_ text: String) -> Bool {
        utf8(text) { bytes in
            bytes.count == 7 && bytes[0] >= 0x41 && bytes[0] <= 0x5A && isDigit(bytes[1]) && isDigit(bytes[2])
                && bytes[3] == 0x2E && bytes[4...].allSatisfy(isDigit)
        }
    }

    static func isDrugCode(_ text: String) -> Bool {
        utf8(text) { bytes in (bytes.count == 20 || bytes.count == 23) && bytes.allSatisfy(isUpperOrDigit) }
    }

    static func isServiceCode(_ text: String) -> Bool {
        utf8(text) { bytes in bytes.count == 15 && bytes.allSatisfy(isDigit) }
    }

    /// Twenty digits.
    static func isPersonNumber(_ text: String) -> Bool {
        utf8(text) { bytes in bytes.count == 20 && bytes.allSatisfy(isDigit) }
    }
}
