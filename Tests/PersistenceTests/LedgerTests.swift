import Foundation
import Persistence
import SettlementCore
import SettlementModel
import Testing

@Suite struct LedgerTests {
    func temporaryLedger() throws -> (Ledger, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (try Ledger(path: "\(directory)/ledger.sqlite"), directory)
    }

    func request(msgid: String) -> WireRequest {
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        var request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 0)
        request.msgid = msgid
        return request
    }

    let split = Split(bill: .composed(totalFen: 10_000), actPayDedc: 100, hifpPay: 200, hifobPay: 0, acctPay: 300,
                      psnCashPay: 10_000 - 500, acctPayInFund: false, balanceAfterFen: 0)

    @Test func theDatabaseRefusesASecondSettlementWithTheSameMsgid() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ledger.write { tx in
            try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [1, 2])
        }
        #expect(throws: (any Error).self) {
            try ledger.write { tx in
                try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S2", nowMs: 0, response: [3])
            }
        }
        let rows = try ledger.read { try $0.settlementRows(msgid: "M1") }
        let answer = try ledger.read { try $0.storedAnswer(msgid: "M1") }
        let stored = try ledger.read { try $0.settlement(msgid: "M1") }
        #expect(rows == 1)
        #expect(answer?.response == [1, 2])
        #expect(answer?.infno == "2207")
        #expect(stored?.split == split)
    }

    @Test func aFailedTransactionLeavesNothingBehind() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try ledger.write { tx in
                try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [1])
                throw Boom()
            }
        }
        let count = try ledger.read { try $0.count(table: .settlements) }
        #expect(count == 0)
    }

    @Test func reversalMarksTheSettlementAndOnlyOneSucceeds() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ledger.write { tx in
            try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [1])
            try tx.insertReversal(msgid: "R1", omsgid: "M1", infno: "2208", infcode: 0, nowMs: 1, response: [9])
        }
        let reversed = try ledger.read { try $0.settlement(msgid: "M1")?.reversed }
        let reversal = try ledger.read { try $0.successfulReversal(omsgid: "M1") }
        #expect(reversed == true)
        #expect(reversal == [9])
        #expect(throws: (any Error).self) {
            try ledger.write { tx in try tx.insertReversal(msgid: "R2", omsgid: "M1", infno: "2208", infcode: 0, nowMs: 2, response: [8]) }
        }
    }

    @Test func transitRecordsReplaceOnlyAnUnknownOutcome() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let meta = RequestMeta(request(msgid: "M1"))
        var timeout = WireResponse()
        timeout.infcode = -1
        timeout.errCode = ErrorCode.timeout.rawValue
        var settled = WireResponse()
        settled.infcode = 0
        var out = SettlementOutput()
        out.setlID = "S1"
        out.medfeeSumamt = 10_000
        settled.output = .settlement(out)
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(request: meta, response: timeout, role: .relay, nowMs: 1))
        }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == "unknown")
        try ledger.write { tx in try tx.recordTransit(TransitRecord(request: meta, response: settled, role: .relay, nowMs: 2)) }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == "settled")
        try ledger.write { tx in try tx.recordTransit(TransitRecord(request: meta, response: timeout, role: .relay, nowMs: 3)) }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.setlID == "S1")

        // The origin county re-sent the msgid after its hospital gave up, the copy's outcome was
        // in doubt and a correction reversed it: the resolution's outcome replaces the early answer.
        var reversed = WireResponse()
        reversed.infcode = -1
        reversed.errCode = ErrorCode.cancelledByCorrection.rawValue
        let final = TransitRecord(request: meta, response: reversed, role: .relay, nowMs: 4)
        try ledger.write { tx in try tx.recordTransit(final) }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == "settled", "an ordinary answer replaces nothing definite")
        try ledger.write { tx in try tx.recordTransit(final, resolution: true) }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == final.state.rawValue)
        #expect(final.state.rawValue != "settled")
    }

    @Test func thePopulationIsSeededOnceAndSurvivesReopening() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let population = SyntheticPopulation(county: DivisionCode("410102")!, size: 50)
        try ledger.seedPopulation(population)
        var person = try #require(try ledger.read { try $0.person(population.psnNo(3)) })
        person.balanceFen -= 1
        try ledger.write { try $0.updatePerson(person) }
        let reopened = try Ledger(path: ledger.path)
        try reopened.seedPopulation(population)
        let persons = try reopened.read { try $0.count(table: .persons) }
        let balance = try reopened.read { try $0.person(population.psnNo(3))?.balanceFen }
        #expect(persons == 50)
        #expect(balance == person.balanceFen)
    }
}
