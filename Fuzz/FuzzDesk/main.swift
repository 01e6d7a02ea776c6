import Foundation
import FuzzSupport
import SettlementCore
import SettlementModel
import SettlementTestKit

/// The insured county's desk fed any sequence of settlements, reversals, corrections and repeats
/// (in memory, with the ledger's rules), its invariants checked after every step:
///   - a settlement or reversal asked again gets the bytes of its first answer;
///   - every settlement's amounts keep their identities (`AmountIdentities`);
///   - no setl_id is given twice;
///   - each person's balance is the initial one less the account payments still settled, and
///     never below zero.
///
/// Each step is 4 bytes: what (settle, reverse, correct, repeat), which person, which earlier
/// request, and the bill's size.
func fuzzDesk(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 4 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let county = DivisionCode("410102")!
    let policy = Policy(deductibleFen: 20_000, poolRatioOutpatientBp: 5_000, poolRatioInpatientBp: 8_500,
                        annualCapFen: 300_000, largeAmountRatioBp: 8_000, acctPayInFund: bytes[0] & 1 == 1)
    let persons = (0..<4).map { index in
        PersonAccount(psnNo: "4101020000000000000\(index)", insutype: "310", balanceFen: Int64(index) * 7_000, filedOffsite: index != 3)
    }
    let store = InMemorySettlementStore(persons: persons)
    var desk = InsuredCountyDesk(county: county, policy: policy, settlementSerial: 0)
    var responses = ResponseFactory(division: county)
    var hospital = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
    var sent: [WireRequest] = []
    var firstAnswers: [String: [UInt8]] = [:]
    var setlIDs: Set<String> = []
    var nowMs: Int64 = 1_796_000_000_000

    var step = 0
    while step + 4 <= bytes.count {
        let (what, who, which, amount) = (bytes[step], bytes[step + 1], bytes[step + 2], bytes[step + 3])
        step += 4
        nowMs += 1_000
        let person = persons[Int(who) % persons.count]
        let request: WireRequest
        switch what % 4 {
        case 0:
            request = hospital.settlement(psnNo: person.psnNo, insured: county, bill: .composed(totalFen: Int64(amount) * 1_000 + 1),
                                          inpatient: amount & 1 == 1, useAccount: who & 0x80 == 0, nowMs: nowMs)
        case 1:
            guard !sent.isEmpty else { continue }
            let earlier = sent[Int(which) % sent.count]
            request = hospital.reversal(omsgid: earlier.msgid, psnNo: person.psnNo, insured: county,
                                        inpatient: earlier.infno == TransactionCode.inpatientSettlement.rawValue, nowMs: nowMs)
        case 2:
            guard !sent.isEmpty else { continue }
            let earlier = sent[Int(which) % sent.count]
            var correction = earlier
            correction.infno = TransactionCode.correction.rawValue
            correction.msgid = NodeMachine.Resolution.correctionMsgid(of: earlier.msgid)
            var input = CorrectionInput()
            input.omsgid = earlier.msgid
            input.oinfno = earlier.infno
            input.psnNo = person.psnNo
            correction.input = .correction(input)
            request = correction
        default:
            guard !sent.isEmpty else { continue }
            request = sent[Int(which) % sent.count]
        }
        let decision: InsuredCountyDesk.Decision
        do {
            decision = try desk.decide(request, role: .insured, receivedAtMs: nowMs, nowMs: nowMs, responses: &responses, store: store)
        } catch {
            check(false, "the desk threw on \(request.infno) \(request.msgid): \(error)")
            return 0
        }
        // A correction (2601) is asked until its outcome is known and answers as things stand
        // now: only settlements and reversals are answered from what was stored.
        let stored = request.infno != TransactionCode.correction.rawValue
        if stored, let first = firstAnswers[request.msgid] {
            check(first == decision.answer, "\(request.msgid) asked again got another answer")
        } else if firstAnswers[request.msgid] == nil {
            if stored { firstAnswers[request.msgid] = decision.answer }
            if what % 4 != 3 { sent.append(request) }
            let answer = try! WireResponse(serializedBytes: decision.answer)
            if case .settlement(let out)? = answer.output, answer.infcode == 0 {
                check(AmountIdentities.violations(out).isEmpty, "\(AmountIdentities.violations(out))")
                check(setlIDs.insert(out.setlID).inserted, "setl_id \(out.setlID) given twice")
            }
        }
        // One pass over the settlements for every person (a pass per person, comparing person
        // numbers, was half of the target's time).
        var stillPaid = [Int64](repeating: 0, count: persons.count)
        for settlement in store.settlements.values where settlement.state == "settled" {
            let index = settlement.psnNo.utf8.last.map { Int($0) - 48 } ?? -1
            check(persons.indices.contains(index) && persons[index].psnNo == settlement.psnNo,
                  "settlement \(settlement.setlID) of a person the county does not hold")
            stillPaid[index] += settlement.split?.acctPay ?? 0
        }
        for (index, account) in persons.enumerated() {
            let now = try! store.person(account.psnNo)!.balanceFen
            check(now >= 0, "\(account.psnNo) below zero: \(now)")
            check(now == account.balanceFen - stillPaid[index], "\(account.psnNo): balance \(now), expected \(account.balanceFen - stillPaid[index])")
        }
    }
    return 0
}

runFuzzer { data, size in fuzzDesk(data, size) }
