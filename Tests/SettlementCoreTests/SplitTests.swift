import SettlementCore
import SettlementModel
import Testing

@Suite struct SplitTests {
    func output(_ split: Split, person: PersonAccount) -> SettlementOutput {
        var input = SettlementInput()
        input.psnNo = person.psnNo
        return InsuredCounty.output(split, input: input, person: person, setlID: "S1", insured: code("410102"), nowMs: 0)
    }

    @Test func deductibleThenPoolRatioThenAccountThenCash() {
        let person = PersonAccount(psnNo: "37021100000000000001", insutype: "310", balanceFen: 5_000, filedOffsite: true)
        let bill = Bill.composed(totalFen: 35_000)   // 350 yuan: 287 yuan in scope
        #expect(bill.inscpScpAmt == 28_700)
        let (split, after) = SplitCalculator.split(bill: bill, inpatient: false, useAccount: true,
                                                   policy: Minimal.shandong, person: person)
        #expect(split.actPayDedc == 20_000)                 // the whole 200-yuan deductible
        #expect(split.hifpPay == (28_700 - 20_000) / 2)     // 50% of the rest
        #expect(split.acctPay == 5_000)                     // the whole balance
        #expect(split.psnCashPay == 35_000 - split.hifpPay - 5_000)
        #expect(after.balanceFen == 0)
        #expect(after.deductibleUsedFen == 20_000)
        #expect(after.poolUsedFen == split.hifpPay)
        // The deductible is yearly: a second bill pays none of it.
        let (second, _) = SplitCalculator.split(bill: bill, inpatient: false, useAccount: true, policy: Minimal.shandong, person: after)
        #expect(second.actPayDedc == 0)
        #expect(second.hifpPay == 28_700 / 2)
    }

    @Test func annualCapLimitsThePooledFundAndLargeAmountTakesOverForInpatients() {
        var person = PersonAccount(psnNo: "41010200000000000001", insutype: "310", balanceFen: 0, filedOffsite: true)
        person.deductibleUsedFen = Minimal.henan.deductibleFen
        person.poolUsedFen = Minimal.henan.annualCapFen - 1_000   // 10 yuan left under the cap
        let bill = Bill.composed(totalFen: 100_000)
        let (inpatient, after) = SplitCalculator.split(bill: bill, inpatient: true, useAccount: true, policy: Minimal.henan, person: person)
        let wanted = bill.inscpScpAmt * 8_000 / 10_000
        #expect(inpatient.hifpPay == 1_000)
        #expect(inpatient.hifobPay == (wanted - 1_000) * 7_500 / 10_000)
        #expect(after.poolUsedFen == Minimal.henan.annualCapFen)
        let (outpatient, _) = SplitCalculator.split(bill: bill, inpatient: false, useAccount: true, policy: Minimal.henan, person: person)
        #expect(outpatient.hifobPay == 0)
    }

    @Test func identitiesHoldForManyRandomBillsUnderBothPolicies() {
        let seed = UInt64.random(in: 0...UInt64.max)
        var random = SplitMix64(seed: seed)
        for round in 0..<5_000 {
            let total = Int64(random.next() % 20_000_000)
            var bill = Bill.composed(totalFen: total)
            if round % 3 == 0 {   // arbitrary breakdowns, not only the composed one
                let a = total == 0 ? 0 : Int64(random.next() % UInt64(total + 1))
                let b = total - a == 0 ? 0 : Int64(random.next() % UInt64(total - a + 1))
                bill = Bill(medfeeSumamt: total, fulamtOwnpayAmt: a, overlmtSelfpay: b, preselfpayAmt: 0, inscpScpAmt: total - a - b)
            }
            let person = PersonAccount(psnNo: "41010200000000000001", insutype: "310",
                                       balanceFen: Int64(random.next() % 1_000_000),
                                       deductibleUsedFen: Int64(random.next() % 30_000), poolUsedFen: Int64(random.next() % 30_000_000),
                                       filedOffsite: true)
            let policy = round % 2 == 0 ? Minimal.shandong : Minimal.henan
            let (split, after) = SplitCalculator.split(bill: bill, inpatient: round % 5 == 0, useAccount: round % 7 != 0,
                                                       policy: policy, person: person)
            let violations = AmountIdentities.violations(output(split, person: after))
            #expect(violations.isEmpty, "seed \(seed) round \(round): \(violations)")
            #expect(after.balanceFen >= 0, "seed \(seed) round \(round)")
            // Reversal restores the person exactly.
            #expect(SplitCalculator.reverse(split, person: after) == person, "seed \(seed) round \(round)")
            if !violations.isEmpty { return }
        }
    }

    @Test func accountInsideFundChangesOnlyHowFundPaySumamtIsReported() {
        let person = PersonAccount(psnNo: "41010200000000000001", insutype: "310", balanceFen: 10_000, filedOffsite: true)
        let bill = Bill.composed(totalFen: 50_000)
        var outside = Minimal.henan
        outside.acctPayInFund = false
        let (inFund, _) = SplitCalculator.split(bill: bill, inpatient: false, useAccount: true, policy: Minimal.henan, person: person)
        let (notInFund, _) = SplitCalculator.split(bill: bill, inpatient: false, useAccount: true, policy: outside, person: person)
        #expect(inFund.fundPaySumamt == notInFund.fundPaySumamt + inFund.acctPay)
        #expect(inFund.psnCashPay == notInFund.psnCashPay)
    }

    @Test func brokenIdentitiesAreReported() {
        let person = PersonAccount(psnNo: "41010200000000000001", insutype: "310", balanceFen: 0, filedOffsite: true)
        let (split, after) = SplitCalculator.split(bill: .composed(totalFen: 10_000), inpatient: false, useAccount: true,
                                                   policy: Minimal.shandong, person: person)
        var out = output(split, person: after)
        out.psnCashPay += 1
        #expect(AmountIdentities.violations(out).contains("psn_part_amt != acct_pay + psn_cash_pay"))
    }

    @Test func billsThatDoNotAddUpOrAreNegativeAreRejected() {
        #expect(Bill.composed(totalFen: 12_345).problem == nil)
        #expect(Bill(medfeeSumamt: 100, fulamtOwnpayAmt: 0, overlmtSelfpay: 0, preselfpayAmt: 0, inscpScpAmt: 99).problem != nil)
        #expect(Bill(medfeeSumamt: -100, fulamtOwnpayAmt: 0, overlmtSelfpay: 0, preselfpayAmt: 0, inscpScpAmt: -100).problem?.contains("negative") == true)
    }

    @Test func moneyParsesYuanExactly() {
        #expect(Money.fen(fromYuan: "73357") == 7_335_700)
        #expect(Money.fen(fromYuan: "98.17") == 9_817)
        #expect(Money.fen(fromYuan: "0.5") == 50)
        #expect(Money.fen(fromYuan: "1.005") == nil)
        #expect(Money.fen(fromYuan: "-3") == nil)
        #expect(Money.fen(fromYuan: "1e3") == nil)
        #expect(Money.basisPoints(fromRatio: "0.85") == 8_500)
        #expect(Money.basisPoints(fromRatio: "1") == 10_000)
        #expect(Money.basisPoints(fromRatio: "1.5") == nil)
        #expect(Money.yuanText(9_817) == "98.17")
        #expect(Money.yuanText(5) == "0.05")
    }
}
