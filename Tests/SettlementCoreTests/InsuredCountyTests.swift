import SettlementCore
import SettlementModel
import Testing

@Suite struct InsuredCountyTests {
    let population = SyntheticPopulation(county: code("410102"), size: 500)

    func input(_ psn: String, total: Int64 = 10_000) -> SettlementInput {
        var input = SettlementInput()
        input.psnNo = psn
        let bill = Bill.composed(totalFen: total)
        input.medfeeSumamt = bill.medfeeSumamt
        input.fulamtOwnpayAmt = bill.fulamtOwnpayAmt
        input.overlmtSelfpay = bill.overlmtSelfpay
        input.preselfpayAmt = bill.preselfpayAmt
        input.inscpScpAmt = bill.inscpScpAmt
        input.acctUsedFlag = true
        return input
    }

    @Test func unfiledPersonsAreRefusedOffsiteButSettleLocally() {
        let unfiled = population.firstPerson(filedOffsite: false)!
        let offsite = InsuredCounty.settle(input(unfiled.psnNo), code: .outpatientSettlement, isLocal: false,
                                           person: unfiled.account, policy: Minimal.henan)
        guard case .refused(let error, let detail) = offsite else { Issue.record("not refused"); return }
        #expect(error == .notFiledOffsite)
        #expect(!detail.contains(unfiled.psnNo), "the refusal must not carry the person number in clear")
        let local = InsuredCounty.settle(input(unfiled.psnNo), code: .outpatientSettlement, isLocal: true,
                                         person: unfiled.account, policy: Minimal.henan)
        if case .refused = local { Issue.record("a local settlement needs no off-site filing") }
    }

    @Test func unknownPersonsAndBadAmountsAreRefused() {
        let unknown = InsuredCounty.settle(input("41010299999999999999"), code: .outpatientSettlement, isLocal: false,
                                           person: nil, policy: Minimal.henan)
        #expect(unknown == .refused(.unknownPerson, detail: "psn_no 410102**************"))
        var negative = input(population.psnNo(0))
        negative.medfeeSumamt = -5
        guard case .refused(.badAmount, _) = InsuredCounty.settle(negative, code: .outpatientSettlement, isLocal: true,
                                                                    person: population.person(0).account, policy: Minimal.henan) else {
            Issue.record("negative amount accepted"); return
        }
    }

    @Test func reversalRestoresTheAccountAndChecksTheOriginal() {
        let person = population.firstPerson(filedOffsite: true)!.account
        guard case .settled(let split, let after) = InsuredCounty.settle(input(person.psnNo), code: .outpatientSettlement,
                                                                          isLocal: false, person: person, policy: Minimal.henan) else {
            Issue.record("not settled"); return
        }
        let original = StoredSettlement(msgid: "M1", infno: "2207", psnNo: person.psnNo, setlID: "S1", reversed: false, split: split)
        var reversal = ReversalInput()
        reversal.omsgid = "M1"
        #expect(InsuredCounty.reverse(reversal, code: .outpatientReversal, original: original, person: after) == .reversed(person: person))
        if case .reversed = InsuredCounty.reverse(reversal, code: .inpatientReversal, original: original, person: after) {
            Issue.record("2305 must not reverse an outpatient 2207 settlement")
        }
        guard case .refused(.unknownSettlement, _) = InsuredCounty.reverse(reversal, code: .outpatientReversal, original: nil, person: after) else {
            Issue.record("reversal of nothing accepted"); return
        }
        reversal.setlID = "S2"
        guard case .refused(.settlementMismatch, _) = InsuredCounty.reverse(reversal, code: .outpatientReversal, original: original, person: after) else {
            Issue.record("mismatched setl_id accepted"); return
        }
    }

    @Test func thePopulationIsDeterministicAndNumbersBeginWithTheCounty() {
        let again = SyntheticPopulation(county: code("410102"), size: 500)
        for index in [0, 1, 250, 499] {
            #expect(population.person(index) == again.person(index))
            #expect(population.person(index).psnNo.count == 20)
            #expect(population.person(index).psnNo.hasPrefix("410102"))
            #expect(population.index(of: population.psnNo(index)) == index)
        }
        let filed = (0..<500).filter { population.person($0).filedOffsite }.count
        #expect(filed > 400 && filed < 500, "about 95% filed for off-site care, got \(filed) of 500")
    }

    @Test func timeFormatsAreChinaStandardTime() {
        // 2022-11-22 00:00:00 UTC is 08:00 in Beijing.
        let time = CivilTime(unixMs: 1_669_075_200_123)
        #expect(time.readable == "2022-11-22 08:00:00")
        #expect(time.compactMillis == "20221122080000123")
        #expect(MessageID.request(institution: "H37021100001", unixMs: 1_669_075_200_123, sequence: 7)
                == "H37021100001202211220800000007")
        #expect(MessageID.request(institution: "H37021100001", unixMs: 0, sequence: 1).count == 30)
        #expect(MessageID.response(division: "410102", unixMs: 0, serial: 42).count == 30)
        #expect(MessageID.response(division: "410102", unixMs: 1_669_075_200_123, serial: 42) == "410102202211220800000000000042")
        #expect(CivilTime(unixMs: 1_700_000_000_000 + 59_999).readable == "2023-11-15 06:14:19")
        #expect(SyntheticPopulation(county: code("410102"), size: 10).psnNo(7) == "41010200000000000007")
    }

    /// The compact times and msgids, written straight into their strings, read as the same
    /// fields padded one by one, over instants from 1970 to beyond the year 9999.
    @Test func compactTimesReadAsTheirFieldsPadded() {
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var generator = SystemRandomNumberGenerator()
        let instants: [Int64] = [0, 1, 999, 1_669_075_200_123, 253_402_271_999_999, 253_402_272_000_000, 400_000_000_000_000]
            + (0..<2_000).map { _ in Int64.random(in: 0...4_102_444_800_000, using: &generator) }
        for unixMs in instants {
            let time = CivilTime(unixMs: unixMs)
            let date = padded(time.year, 4) + padded(time.month, 2) + padded(time.day, 2)
                + padded(time.hour, 2) + padded(time.minute, 2) + padded(time.second, 2)
            #expect(time.compact == date, "\(unixMs)")
            #expect(time.compactMillis == date + padded(time.millisecond, 3), "\(unixMs)")
            let sequence = Int.random(in: 0...99_999, using: &generator)
            #expect(MessageID.request(institution: "H37021100001", unixMs: unixMs, sequence: sequence)
                    == "H37021100001" + date + padded(sequence % 10_000, 4), "\(unixMs)")
            let serial = UInt64.random(in: 0...UInt64.max, using: &generator)
            #expect(MessageID.response(division: "410102", unixMs: unixMs, serial: serial)
                    == "410102" + date + padded(Int(serial % 10_000_000_000), 10), "\(unixMs)")
        }
    }

    /// Zero-padded fields written in one buffer read as they would padded field by field.
    @Test func zeroPaddedFieldsReadAsPaddedOneByOne() {
        for value in [0, 7, 42, 999, 1_000, 12_345] {
            let padded = ZeroPadded.string(prefix: "X", [(0, value, 4), (UInt8(ascii: "-"), value % 100, 2)])
            let digits = String(value), tail = String(value % 100)
            let expected = "X" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
                + "-" + String(repeating: "0", count: 2 - tail.count) + tail
            #expect(padded == expected, "\(value)")
        }
        #expect(ZeroPadded.string([(0, -5, 3)]) == "0-5", "a negative value is written in full, as before")
    }
}

@Suite struct ReversalOnceTests {
    @Test func aSettlementAlreadyReversedIsNeverReversedAgain() {
        let population = SyntheticPopulation(county: code("410102"), size: 100)
        let person = population.firstPerson(filedOffsite: true)!.account
        let split = Split(bill: .composed(totalFen: 10_000), actPayDedc: 0, hifpPay: 1_000, hifobPay: 0, acctPay: 500,
                          psnCashPay: 8_500, acctPayInFund: false, balanceAfterFen: person.balanceFen - 500)
        let original = StoredSettlement(msgid: "M1", infno: "2207", psnNo: person.psnNo, setlID: "S1", reversed: true, split: split)
        var input = ReversalInput()
        input.omsgid = "M1"
        guard case .refused(.settlementMismatch, _) = InsuredCounty.reverse(input, code: .outpatientReversal, original: original, person: person) else {
            Issue.record("a reversed settlement was reversed again: money restored twice"); return
        }
    }
}
