import SettlementCore
import SettlementModel
import SettlementTestKit
import Testing

/// The insured county's rules, without SQLite or a process: each decision, what it writes, and
/// what a repeat gets.
@Suite struct InsuredCountyDeskTests {
    let county = DivisionCode("410102")!
    let policy = Policy(deductibleFen: 20_000, poolRatioOutpatientBp: 5_000, poolRatioInpatientBp: 8_500,
                        annualCapFen: 30_000_000, largeAmountRatioBp: 8_000, acctPayInFund: false)
    var hospital = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
    let insured = PersonAccount(psnNo: "41010200000000000001", insutype: "310", balanceFen: 50_000, filedOffsite: true)
    let notFiled = PersonAccount(psnNo: "41010200000000000002", insutype: "310", balanceFen: 50_000, filedOffsite: false)

    struct Setting {
        var desk: InsuredCountyDesk
        var responses: ResponseFactory
        let store: InMemorySettlementStore

        mutating func decide(_ request: WireRequest, role: TransitRole = .insured, nowMs: Int64 = 1_000) throws
            -> (decision: InsuredCountyDesk.Decision, answer: WireResponse) {
            let decision = try desk.decide(request, role: role, receivedAtMs: nowMs - 1, nowMs: nowMs, responses: &responses, store: store)
            return (decision, try WireResponse(serializedBytes: decision.answer))
        }
    }

    func setting(serial: Int64 = 0, policy: Policy? = nil) -> Setting {
        Setting(desk: InsuredCountyDesk(county: county, policy: policy ?? self.policy, settlementSerial: serial),
                responses: ResponseFactory(division: county), store: InMemorySettlementStore(persons: [insured, notFiled]))
    }

    mutating func settlement(of person: PersonAccount, totalFen: Int64 = 100_000) -> WireRequest {
        hospital.settlement(psnNo: person.psnNo, insured: county, bill: .composed(totalFen: totalFen), inpatient: false, nowMs: 0)
    }

    mutating func reversal(of settlement: WireRequest) -> WireRequest {
        hospital.reversal(omsgid: settlement.msgid, psnNo: insured.psnNo, insured: county, inpatient: false, nowMs: 0)
    }

    func correction(of settlement: WireRequest) -> WireRequest {
        var request = settlement
        request.infno = TransactionCode.correction.rawValue
        request.msgid = NodeMachine.Resolution.correctionMsgid(of: settlement.msgid)
        var input = CorrectionInput()
        input.omsgid = settlement.msgid
        input.oinfno = settlement.infno
        input.psnNo = insured.psnNo
        request.input = .correction(input)
        return request
    }

    func outcome(_ answer: WireResponse) -> String? {
        if case .correction(let out)? = answer.output { return out.outcome }
        return nil
    }

    @Test mutating func aSettlementIsNumberedChargedAndRecordedAndARepeatGetsTheSameBytes() throws {
        var here = setting(serial: 41)
        let request = settlement(of: insured)
        let (first, answer) = try here.decide(request)
        #expect(answer.infcode == 0 && answer.reqMsgid == request.msgid)
        guard case .settlement(let out)? = answer.output else { Issue.record("no settlement output"); return }
        #expect(out.setlID == "41010200000000000042", "the county's code, then the serial in 14 digits")
        #expect(here.desk.settlementSerial == 42)
        #expect(try here.store.person(insured.psnNo)?.balanceFen == insured.balanceFen - out.acctPay)
        #expect(AmountIdentities.violations(out).isEmpty)
        #expect(here.store.transits.map(\.state) == [.settled] && here.store.transits.first?.role == .insured)
        #expect(first.ticket == nil && first.note == nil)

        let (again, _) = try here.decide(request, nowMs: 5_000)
        #expect(again.answer == first.answer, "idempotent by msgid: the stored answer, byte for byte")
        #expect(here.desk.settlementSerial == 42 && here.store.transits.count == 1)
    }

    @Test mutating func aMsgidAlreadyUsedForAnotherCodeIsRefused() throws {
        var here = setting()
        let request = settlement(of: insured)
        _ = try here.decide(request)
        var other = request
        other.infno = TransactionCode.inpatientSettlement.rawValue
        let (_, answer) = try here.decide(other)
        #expect(answer.errCode == ErrorCode.settlementMismatch.rawValue)
        #expect(here.store.settlements.count == 1)
    }

    @Test mutating func refusalsOnThisCountysDataOpenATicketAndOthersDoNot() throws {
        var here = setting()
        let unknown = PersonAccount(psnNo: "41010200000000009999", insutype: "310", balanceFen: 0, filedOffsite: true)
        let (refusedUnknown, unknownAnswer) = try here.decide(settlement(of: unknown))
        #expect(unknownAnswer.errCode == ErrorCode.unknownPerson.rawValue)
        #expect(refusedUnknown.ticket?.kind == .businessRefusal && refusedUnknown.ticket?.responsible == "410102")
        #expect(refusedUnknown.ticket?.subject == "H37021100001")
        #expect(!unknownAnswer.errMsg.contains(unknown.psnNo), "a person number never appears in clear")

        let (refusedNotFiled, notFiledAnswer) = try here.decide(settlement(of: notFiled))
        #expect(notFiledAnswer.errCode == ErrorCode.notFiledOffsite.rawValue && refusedNotFiled.ticket != nil)
        // Treated in the insured county itself, no filing is needed.
        let (_, local) = try here.decide(settlement(of: notFiled), role: .local)
        #expect(local.infcode == 0)

        var bad = settlement(of: insured)
        if case .settlement(var input)? = bad.input { input.medfeeSumamt = -1; bad.input = .settlement(input) }
        let (refusedBad, badAnswer) = try here.decide(bad)
        #expect(badAnswer.errCode == ErrorCode.badAmount.rawValue && refusedBad.ticket == nil)
        #expect(refusedBad.note == .settlementRefused(msgid: bad.msgid, code: .badAmount))
        // Each refusal is stored: a repeat gets it again, and no ticket again.
        let (repeated, _) = try here.decide(bad)
        #expect(repeated.answer == refusedBad.answer && repeated.ticket == nil)
    }

    @Test mutating func aNodeWithoutAProvincePolicyRefusesEverything() throws {
        var here = Setting(desk: InsuredCountyDesk(county: county, policy: nil, settlementSerial: 0),
                           responses: ResponseFactory(division: county), store: InMemorySettlementStore(persons: [insured]))
        let (_, answer) = try here.decide(settlement(of: insured))
        #expect(answer.errCode == ErrorCode.wrongNode.rawValue && here.store.settlements.isEmpty)
    }

    @Test mutating func aReversalRefundsOnceAndALaterOneGetsTheSameAnswerUnderItsOwnMsgid() throws {
        var here = setting()
        let original = settlement(of: insured)
        _ = try here.decide(original)
        let first = reversal(of: original)
        let (_, reversed) = try here.decide(first)
        #expect(reversed.infcode == 0)
        #expect(try here.store.person(insured.psnNo)?.balanceFen == insured.balanceFen, "the account payment came back")
        #expect(try here.store.settlementState(msgid: original.msgid)?.state == "reversed")

        let second = reversal(of: original)
        let (_, again) = try here.decide(second)
        #expect(again.infcode == 0 && again.reqMsgid == second.msgid && again.output == reversed.output)
        #expect(here.store.reversals[second.msgid]?.infcode == 1, "recorded, but no money moved twice")
        #expect(try here.store.person(insured.psnNo)?.balanceFen == insured.balanceFen)
    }

    @Test mutating func aReversalOfNothingSettledHereIsRefusedAndStored() throws {
        var here = setting()
        let nothing = reversal(of: settlement(of: insured))
        let (refused, answer) = try here.decide(nothing)
        #expect(answer.errCode == ErrorCode.unknownSettlement.rawValue)
        #expect(here.store.reversals[nothing.msgid]?.infcode == -1)
        #expect(try here.decide(nothing).decision.answer == refused.answer)
    }

    @Test mutating func aCorrectionTakesWhateverBecameOfTheSettlementOutOfEffect() throws {
        var here = setting()
        // Settled: reversed, and the account payment given back.
        let settled = settlement(of: insured)
        _ = try here.decide(settled)
        let (reversing, reversedAnswer) = try here.decide(correction(of: settled))
        #expect(outcome(reversedAnswer) == "reversed" && reversing.note == .correctionReversal(omsgid: settled.msgid, outcome: "reversed"))
        #expect(try here.store.person(insured.psnNo)?.balanceFen == insured.balanceFen)
        #expect(try here.store.settlementState(msgid: settled.msgid)?.state == "reversed")
        // The same correction again (every attempt has the same msgid): the same answer, nothing twice.
        #expect(try here.decide(correction(of: settled)).decision.answer == reversing.answer)

        // Already reversed by a reversal: said so.
        let reversedFirst = settlement(of: insured)
        _ = try here.decide(reversedFirst)
        _ = try here.decide(reversal(of: reversedFirst))
        #expect(outcome(try here.decide(correction(of: reversedFirst)).answer) == "reversed")

        // Refused: said so.
        let refused = settlement(of: notFiled)
        _ = try here.decide(refused)
        #expect(outcome(try here.decide(correction(of: refused)).answer) == "refused")

        // Never arrived: cancelled, and the original, should it still arrive, is refused.
        let late = settlement(of: insured)
        #expect(outcome(try here.decide(correction(of: late)).answer) == "cancelled")
        let (_, lateAnswer) = try here.decide(late)
        #expect(lateAnswer.errCode == ErrorCode.cancelledByCorrection.rawValue && lateAnswer.reqMsgid == late.msgid)
        #expect(try here.store.person(insured.psnNo)?.balanceFen == insured.balanceFen, "nothing was charged")
    }

    @Test mutating func aCorrectionThatNamesNoSettlementIsRefused() throws {
        var here = setting()
        var request = correction(of: settlement(of: insured))
        request.input = .correction(CorrectionInput())
        let (_, answer) = try here.decide(request)
        #expect(answer.errCode == ErrorCode.missingField.rawValue && here.store.reversals.isEmpty)
    }

    @Test mutating func everyAnswerOfANodeHasItsOwnReference() throws {
        var here = setting()
        let first = try here.decide(settlement(of: insured)).answer
        let second = try here.decide(settlement(of: insured)).answer
        #expect(first.infRefmsgid != second.infRefmsgid && first.infRefmsgid.hasPrefix("410102"))
    }

    /// A node restarted within the second numbers its answers above every one it gave before the
    /// restart: the serial starts each second at the millisecond of the second's first answer.
    @Test func answerSerialsAreNotGivenAgainByARestartWithinTheSameSecond() {
        let second: Int64 = 1_796_000_000_000
        var before = ResponseFactory(division: county)
        let old = (0..<500).map { before.success(requestMsgid: "M\($0)", receivedAtMs: second + 10, nowMs: second + 10 + Int64($0 / 100)).infRefmsgid }
        var after = ResponseFactory(division: county)   // the restarted process, 30 ms later in the same second
        let new = (0..<500).map { after.success(requestMsgid: "N\($0)", receivedAtMs: second + 45, nowMs: second + 45).infRefmsgid }
        #expect(Set(old).count == 500 && Set(new).count == 500)
        #expect(Set(old).isDisjoint(with: new), "an inf_refmsgid given again after the restart")
        // The next second starts again from its own first millisecond, still 30 characters.
        let later = after.success(requestMsgid: "L", receivedAtMs: second + 1_002, nowMs: second + 1_002).infRefmsgid
        #expect(later.count == 30 && later.hasSuffix("0020000001"), "\(later)")
        #expect(new.first?.hasSuffix("0450000001") == true, "\(new.first ?? "")")
    }
}
