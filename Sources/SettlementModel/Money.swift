/// Money is integer fen (1 yuan = 100 fen), never floating point.
public enum Money {
    /// Parses a yuan amount written with at most two decimals ("73357", "98.17", "0.5") into
    /// fen, exactly. Returns nil for anything else (signs, exponents, three decimals, overflow).
    public static func fen(fromYuan text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.utf8.allSatisfy(isDigit),
              whole.count <= 15, let yuan = Int64(whole) else { return nil }
        var cents: Int64 = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.count <= 2, fraction.utf8.allSatisfy(isDigit),
                  let value = Int64(fraction) else { return nil }
            cents = fraction.count == 1 ? value * 10 : value
        }
        return yuan * 100 + cents
    }

    /// Parses a ratio written as a decimal between 0 and 1 with at most four decimals
    /// ("0.85", "1", "0.0125") into basis points (1/10,000), exactly.
    public static func basisPoints(fromRatio text: String) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, whole == "0" || whole == "1" else { return nil }
        var points: Int64 = whole == "1" ? 10_000 : 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.count <= 4, fraction.utf8.allSatisfy(isDigit),
                  let value = Int64(fraction) else { return nil }
            var scaled = value
            for _ in fraction.count..<4 { scaled *= 10 }
            points += scaled
        }
        return points <= 10_000 ? points : nil
    }

    /// "12345" fen -> "123.45".
    public static func yuanText(_ fen: Int64) -> String {
        let sign = fen < 0 ? "-" : ""
        let magnitude = fen.magnitude
        let cents = magnitude % 100
        return "\(sign)\(magnitude / 100).\(cents < 10 ? "0" : "")\(cents)"
    }

    /// `amount` times `basisPoints`/10,000, rounded down to the fen: the fund never pays a
    /// fraction of a fen more than the ratio allows.
    public static func apply(basisPoints: Int64, to amount: Int64) -> Int64 {
        amount * basisPoints / 10_000
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}

/// A province's settlement policy: the insured place's rules apply to its persons wherever
/// they are treated.
public struct Policy: Equatable, Sendable {
    /// Yearly deductible (起付线) on the in-scope amount, fen.
    public var deductibleFen: Int64
    /// Share of the in-scope amount above the deductible that the pooled fund pays, basis points.
    public var poolRatioOutpatientBp: Int64
    public var poolRatioInpatientBp: Int64
    /// Yearly cap on what the pooled fund pays one person, fen.
    public var annualCapFen: Int64
    /// Share of what the cap cut off that large-amount insurance pays (inpatient only), basis points.
    public var largeAmountRatioBp: Int64
    /// Whether `acct_pay` counts inside `fund_pay_sumamt` (Guangdong: yes; Hunan: no).
    public var acctPayInFund: Bool

    public init(deductibleFen: Int64, poolRatioOutpatientBp: Int64, poolRatioInpatientBp: Int64,
                annualCapFen: Int64, largeAmountRatioBp: Int64, acctPayInFund: Bool) {
        self.deductibleFen = deductibleFen
        self.poolRatioOutpatientBp = poolRatioOutpatientBp
        self.poolRatioInpatientBp = poolRatioInpatientBp
        self.annualCapFen = annualCapFen
        self.largeAmountRatioBp = largeAmountRatioBp
        self.acctPayInFund = acctPayInFund
    }
}
