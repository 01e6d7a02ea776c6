import SettlementModel

/// A settlement as the insured county's ledger keeps it: what a reversal needs to undo it.
public struct StoredSettlement: Equatable, Sendable {
    public var msgid: String
    public var infno: String
    public var psnNo: String
    public var setlID: String
    public var reversed: Bool
    public var split: Split

    public init(msgid: String, infno: String, psnNo: String, setlID: String, reversed: Bool, split: Split) {
        self.msgid = msgid
        self.infno = infno
        self.psnNo = psnNo
        self.setlID = setlID
        self.reversed = reversed
        self.split = split
    }
}

/// The insured county's business rules, pure: the shell reads the person and the original
/// settlement from the ledger, calls these, and writes back what they return.
public enum InsuredCounty {
    public enum SettleOutcome: Equatable, Sendable {
        case settled(Split, person: PersonAccount)
        case refused(ErrorCode, detail: String)
    }

    public enum ReverseOutcome: Equatable, Sendable {
        case reversed(person: PersonAccount)
        case refused(ErrorCode, detail: String)
    }

    /// Decides a settlement request for `person` (nil: not insured here).
    public static func settle(_ input: SettlementInput, code: TransactionCode, isLocal: Bool,
                              person: PersonAccount?, policy: Policy) -> SettleOutcome {
        if input.psnNo.isEmpty { return .refused(.missingField, detail: "input.psn_no") }
        let bill = Bill(input)
        if let problem = bill.problem { return .refused(.badAmount, detail: problem) }
        guard let person else { return .refused(.unknownPerson, detail: "psn_no \(PersonalData.mask(input.psnNo))") }
        if !isLocal && !person.filedOffsite {
            return .refused(.notFiledOffsite, detail: "psn_no \(PersonalData.mask(input.psnNo))")
        }
        let (split, after) = SplitCalculator.split(bill: bill, inpatient: code.isInpatient, useAccount: input.acctUsedFlag,
                                                   policy: policy, person: person)
        return .settled(split, person: after)
    }

    /// Decides a reversal of `original` (nil: no such settlement here).
    public static func reverse(_ input: ReversalInput, code: TransactionCode, original: StoredSettlement?,
                               person: PersonAccount?) -> ReverseOutcome {
        if input.omsgid.isEmpty { return .refused(.missingField, detail: "input.omsgid") }
        guard let original else { return .refused(.unknownSettlement, detail: "omsgid \(input.omsgid.prefix(64))") }
        // Money is restored once: a settlement already reversed (by 2208/2305 or 2601) stays so.
        if original.reversed { return .refused(.settlementMismatch, detail: "settlement \(input.omsgid.prefix(64)) is already reversed") }
        if original.infno != code.reversalTarget?.rawValue {
            return .refused(.settlementMismatch, detail: "infno \(code.rawValue) cannot reverse a \(original.infno) settlement")
        }
        if !input.psnNo.isEmpty && input.psnNo != original.psnNo {
            return .refused(.settlementMismatch, detail: "psn_no differs from the original settlement's")
        }
        if !input.setlID.isEmpty && input.setlID != original.setlID {
            return .refused(.settlementMismatch, detail: "setl_id differs from the original settlement's")
        }
        guard let person else { return .refused(.unknownPerson, detail: "psn_no \(PersonalData.mask(original.psnNo))") }
        return .reversed(person: SplitCalculator.reverse(original.split, person: person))
    }

    /// The settlement answer's output section.
    public static func output(_ split: Split, input: SettlementInput, person: PersonAccount, setlID: String,
                              insured: DivisionCode, nowMs: Int64) -> SettlementOutput {
        var out = SettlementOutput()
        out.setlID = setlID
        out.mdtrtID = input.mdtrtID
        out.psnNo = input.psnNo
        out.insutype = person.insutype
        out.setlTime = CivilTime(unixMs: nowMs).readable
        out.medfeeSumamt = split.bill.medfeeSumamt
        out.fulamtOwnpayAmt = split.bill.fulamtOwnpayAmt
        out.overlmtSelfpay = split.bill.overlmtSelfpay
        out.preselfpayAmt = split.bill.preselfpayAmt
        out.inscpScpAmt = split.bill.inscpScpAmt
        out.actPayDedc = split.actPayDedc
        out.hifpPay = split.hifpPay
        out.hifmiPay = split.hifmiPay
        out.hifobPay = split.hifobPay
        out.cvlservPay = split.cvlservPay
        out.mafPay = split.mafPay
        out.othPay = split.othPay
        out.fundPaySumamt = split.fundPaySumamt
        out.psnPartAmt = split.psnPartAmt
        out.acctPay = split.acctPay
        out.psnCashPay = split.psnCashPay
        out.hospPartAmt = split.hospPartAmt
        out.balc = split.balanceAfterFen
        out.clrOptins = insured.value
        out.clrWay = "1"     // settle by line items
        out.clrType = input.medType.isEmpty ? "11" : input.medType
        out.acctPayInFund = split.acctPayInFund
        return out
    }

    public static func reversalOutput(_ original: StoredSettlement, person: PersonAccount) -> ReversalOutput {
        var out = ReversalOutput()
        out.setlID = original.setlID
        out.omsgid = original.msgid
        out.medfeeSumamt = original.split.bill.medfeeSumamt
        out.fundPaySumamt = original.split.fundPaySumamt
        out.acctPay = original.split.acctPay
        out.balc = person.balanceFen
        return out
    }
}

extension TransactionCode {
    /// The settlement code a reversal code undoes.
    public var reversalTarget: TransactionCode? {
        switch self {
        case .outpatientReversal: .outpatientSettlement
        case .inpatientReversal: .inpatientSettlement
        default: nil
        }
    }
}
