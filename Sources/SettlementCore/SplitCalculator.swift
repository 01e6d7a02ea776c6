import SettlementModel

/// One insured person's account state at the insured county, within the policy year.
public struct PersonAccount: Equatable, Sendable {
    public var psnNo: String
    public var insutype: String
    public var balanceFen: Int64
    /// In-scope amounts already applied to this year's deductible.
    public var deductibleUsedFen: Int64
    /// What the pooled fund has paid this year (counts against the annual cap).
    public var poolUsedFen: Int64
    public var filedOffsite: Bool

    public init(psnNo: String, insutype: String, balanceFen: Int64, deductibleUsedFen: Int64 = 0,
                poolUsedFen: Int64 = 0, filedOffsite: Bool) {
        self.psnNo = psnNo
        self.insutype = insutype
        self.balanceFen = balanceFen
        self.deductibleUsedFen = deductibleUsedFen
        self.poolUsedFen = poolUsedFen
        self.filedOffsite = filedOffsite
    }
}

/// The bill a hospital presents, in fen, broken down as the interface requires.
public struct Bill: Equatable, Sendable {
    public var medfeeSumamt: Int64
    public var fulamtOwnpayAmt: Int64
    public var overlmtSelfpay: Int64
    public var preselfpayAmt: Int64
    public var inscpScpAmt: Int64

    public init(medfeeSumamt: Int64, fulamtOwnpayAmt: Int64, overlmtSelfpay: Int64,
                preselfpayAmt: Int64, inscpScpAmt: Int64) {
        self.medfeeSumamt = medfeeSumamt
        self.fulamtOwnpayAmt = fulamtOwnpayAmt
        self.overlmtSelfpay = overlmtSelfpay
        self.preselfpayAmt = preselfpayAmt
        self.inscpScpAmt = inscpScpAmt
    }

    public init(_ input: SettlementInput) {
        self.init(medfeeSumamt: input.medfeeSumamt, fulamtOwnpayAmt: input.fulamtOwnpayAmt,
                  overlmtSelfpay: input.overlmtSelfpay, preselfpayAmt: input.preselfpayAmt,
                  inscpScpAmt: input.inscpScpAmt)
    }

    /// A plausible breakdown of a total, as a hospital's catalog would give it: 8% fully
    /// self-paid, 4% over-limit, 6% pre-self-paid, the rest in scope. Exact in fen.
    public static func composed(totalFen: Int64) -> Bill {
        let fulamt = totalFen * 8 / 100
        let overlmt = totalFen * 4 / 100
        let preself = totalFen * 6 / 100
        return Bill(medfeeSumamt: totalFen, fulamtOwnpayAmt: fulamt, overlmtSelfpay: overlmt,
                    preselfpayAmt: preself, inscpScpAmt: totalFen - fulamt - overlmt - preself)
    }

    /// Why this bill cannot be settled, or nil when it is well formed.
    public var problem: String? {
        let parts = [("medfee_sumamt", medfeeSumamt), ("fulamt_ownpay_amt", fulamtOwnpayAmt),
                     ("overlmt_selfpay", overlmtSelfpay), ("preselfpay_amt", preselfpayAmt),
                     ("inscp_scp_amt", inscpScpAmt)]
        if let negative = parts.first(where: { $0.1 < 0 }) { return "\(negative.0) is negative" }
        if medfeeSumamt > 100_000_000_00 { return "medfee_sumamt above 100,000,000 yuan" }
        let (sum, overflow) = fulamtOwnpayAmt.addingReportingOverflow(overlmtSelfpay + preselfpayAmt + inscpScpAmt)
        if overflow || sum != medfeeSumamt {
            return "medfee_sumamt must equal fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt"
        }
        return nil
    }
}

/// The split of one settlement: who pays what, in fen.
public struct Split: Equatable, Sendable {
    public var bill: Bill
    public var actPayDedc: Int64
    public var hifpPay: Int64
    public var hifmiPay: Int64 = 0
    public var hifobPay: Int64
    public var cvlservPay: Int64 = 0
    public var mafPay: Int64 = 0
    public var othPay: Int64 = 0
    public var acctPay: Int64
    public var psnCashPay: Int64
    public var hospPartAmt: Int64 = 0
    public var acctPayInFund: Bool
    public var balanceAfterFen: Int64

    /// The fund components alone (never the personal account).
    public var fundComponents: Int64 { hifpPay + hifmiPay + hifobPay + cvlservPay + mafPay + othPay }
    /// fund_pay_sumamt as the insured province reports it.
    public var fundPaySumamt: Int64 { fundComponents + (acctPayInFund ? acctPay : 0) }
    public var psnPartAmt: Int64 { acctPay + psnCashPay }

    public init(bill: Bill, actPayDedc: Int64, hifpPay: Int64, hifobPay: Int64, acctPay: Int64,
                psnCashPay: Int64, acctPayInFund: Bool, balanceAfterFen: Int64) {
        self.bill = bill
        self.actPayDedc = actPayDedc
        self.hifpPay = hifpPay
        self.hifobPay = hifobPay
        self.acctPay = acctPay
        self.psnCashPay = psnCashPay
        self.acctPayInFund = acctPayInFund
        self.balanceAfterFen = balanceAfterFen
    }
}

/// The insured place's split calculation. Pure: person state in, split and new state out.
public enum SplitCalculator {
    /// Computes the split of `bill` for `person` under `policy`, and the person's account
    /// after it. The bill must be well formed (`bill.problem == nil`).
    public static func split(bill: Bill, inpatient: Bool, useAccount: Bool, policy: Policy,
                             person: PersonAccount) -> (split: Split, person: PersonAccount) {
        let deductibleLeft = max(0, policy.deductibleFen - person.deductibleUsedFen)
        let deductible = min(bill.inscpScpAmt, deductibleLeft)
        let ratio = inpatient ? policy.poolRatioInpatientBp : policy.poolRatioOutpatientBp
        let poolWanted = Money.apply(basisPoints: ratio, to: bill.inscpScpAmt - deductible)
        let capLeft = max(0, policy.annualCapFen - person.poolUsedFen)
        let pooled = min(poolWanted, capLeft)
        // Large-amount insurance takes over part of what the cap cut off, for inpatients.
        let largeAmount = inpatient ? Money.apply(basisPoints: policy.largeAmountRatioBp, to: poolWanted - pooled) : 0
        let owed = bill.medfeeSumamt - pooled - largeAmount
        let account = useAccount ? min(owed, max(0, person.balanceFen)) : 0

        var after = person
        after.balanceFen -= account
        after.deductibleUsedFen += deductible
        after.poolUsedFen += pooled
        let split = Split(bill: bill, actPayDedc: deductible, hifpPay: pooled, hifobPay: largeAmount,
                          acctPay: account, psnCashPay: owed - account,
                          acctPayInFund: policy.acctPayInFund, balanceAfterFen: after.balanceFen)
        return (split, after)
    }

    /// The person's account after reversing `split`: balance, deductible and cap usage restored.
    public static func reverse(_ split: Split, person: PersonAccount) -> PersonAccount {
        var after = person
        after.balanceFen += split.acctPay
        after.deductibleUsedFen = max(0, after.deductibleUsedFen - split.actPayDedc)
        after.poolUsedFen = max(0, after.poolUsedFen - split.hifpPay)
        return after
    }
}

/// The amount identities of DOMAIN.md, checked on a settlement answer.
public enum AmountIdentities {
    /// Every identity that does not hold, in words; empty when all hold.
    ///
    /// With `acct_pay_in_fund` the insured province reports `fund_pay_sumamt` including
    /// `acct_pay`, so the total identity reads medfee = (fund - acct) + psn_part + hosp_part.
    public static func violations(_ o: SettlementOutput) -> [String] {
        var problems: [String] = []
        if o.medfeeSumamt != o.fulamtOwnpayAmt + o.overlmtSelfpay + o.preselfpayAmt + o.inscpScpAmt {
            problems.append("medfee_sumamt != fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt")
        }
        let components = o.hifpPay + o.hifmiPay + o.hifobPay + o.cvlservPay + o.mafPay + o.othPay
        let expectedFund = components + (o.acctPayInFund ? o.acctPay : 0)
        if o.fundPaySumamt != expectedFund {
            problems.append("fund_pay_sumamt != sum of fund components\(o.acctPayInFund ? " + acct_pay" : "")")
        }
        if o.psnPartAmt != o.acctPay + o.psnCashPay {
            problems.append("psn_part_amt != acct_pay + psn_cash_pay")
        }
        if o.medfeeSumamt != components + o.psnPartAmt + o.hospPartAmt {
            problems.append("medfee_sumamt != fund_pay_sumamt\(o.acctPayInFund ? " - acct_pay" : "") + psn_part_amt + hosp_part_amt")
        }
        let amounts = [o.medfeeSumamt, o.fulamtOwnpayAmt, o.overlmtSelfpay, o.preselfpayAmt, o.inscpScpAmt,
                       o.actPayDedc, o.hifpPay, o.hifobPay, o.acctPay, o.psnCashPay, o.hospPartAmt, o.balc]
        if amounts.contains(where: { $0 < 0 }) { problems.append("an amount is negative") }
        return problems
    }
}
