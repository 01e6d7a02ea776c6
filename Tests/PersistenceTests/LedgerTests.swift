import Foundation
import GRDB
@testable import Persistence
import SettlementCore
import SettlementModel
import Testing

@Suite struct LedgerTests {
    func temporaryLedger() throws -> (Ledger, String) {
        let directory = try makeTemporaryDirectory("ledger")
        return (try Ledger(path: "\(directory)/ledger.sqlite"), directory)
    }

    func request(msgid: String) -> WireRequest {
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        var request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 0)
        request.msgid = msgid
        return request
    }

    /// The insured county's answer of a settled bill of 100 yuan.
    func settledAnswer(setlID: String) -> WireResponse {
        var settled = WireResponse()
        settled.infcode = 0
        var out = SettlementOutput()
        out.setlID = setlID
        out.medfeeSumamt = 10_000
        settled.output = .settlement(out)
        return settled
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

    /// A full disk (`refusesChanges`): a transaction that would change the ledger rolls back and
    /// throws `DiskFull`, by `write` or by `transaction`; one that only reads commits; a change
    /// allowed on purpose (the disk_full ticket) is written.
    @Test func aLedgerOnAFullDiskRefusesChangesButReads() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ledger.write { tx in
            try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [1])
        }
        ledger.refusesChanges = true
        #expect(throws: Ledger.DiskFull.self) {
            try ledger.write { tx in
                try tx.insertSettled(request: request(msgid: "M2"), split: split, psnNo: "P", setlID: "S2", nowMs: 0, response: [2])
            }
        }
        #expect(throws: Ledger.DiskFull.self) {
            try ledger.transaction { tx in
                try tx.insertSettled(request: request(msgid: "M3"), split: split, psnNo: "P", setlID: "S3", nowMs: 0, response: [3])
            }
        }
        #expect(try ledger.transaction { try $0.count(table: .settlements) } == 1, "a transaction that only reads commits")
        try ledger.allowingChanges {
            try ledger.write { tx in
                try tx.insertSettled(request: request(msgid: "M4"), split: split, psnNo: "P", setlID: "S4", nowMs: 0, response: [4])
            }
        }
        #expect(ledger.refusesChanges)
        #expect(try ledger.read { try $0.count(table: .settlements) } == 2)
        #expect(Ledger.isDiskFull(DatabaseError(resultCode: .SQLITE_FULL)) && !Ledger.isDiskFull(DatabaseError(resultCode: .SQLITE_BUSY)))
    }

    /// Transits are appended to a log and found through an index in memory: a round that rolls
    /// back (a failed commit) must leave the index as it found it, or the next record of the same
    /// msgid would update an image that was never written.
    @Test func aTransitRolledBackIsForgottenByTheRulesAndTheLedgerReopensWithTheLatestImages() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        struct Boom: Error {}
        let first = RequestMeta(request(msgid: "M1"))
        try ledger.write { tx in try tx.recordTransit(TransitRecord(inFlight: first, nowMs: 1)) }
        #expect(throws: Boom.self) {
            try ledger.write { tx in
                try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request(msgid: "M2")), nowMs: 2))
                try tx.recordTransit(TransitRecord(request: first, response: settledAnswer(setlID: "S1"), role: .origin, nowMs: 2))
                throw Boom()
            }
        }
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == "unknown")
        #expect(try ledger.read { try $0.transit(msgid: "M2") } == nil)
        // Had the index kept M2, this would update an image that does not exist.
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(request: RequestMeta(request(msgid: "M2")), response: settledAnswer(setlID: "S2"),
                                               role: .relay, nowMs: 3))
        }
        // Likewise for a node's round (`transaction`).
        #expect(throws: Boom.self) {
            try ledger.transaction { tx in
                try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request(msgid: "M3")), nowMs: 3))
                throw Boom()
            }
        }
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(request: RequestMeta(request(msgid: "M3")), response: settledAnswer(setlID: "S3"),
                                               role: .relay, nowMs: 4))
            try tx.recordTransit(TransitRecord(request: first, response: settledAnswer(setlID: "S1"), role: .origin, nowMs: 4))
        }
        let reopened = try Ledger(path: ledger.path)
        for (msgid, setlID) in [("M1", "S1"), ("M2", "S2"), ("M3", "S3")] {
            let transit = try reopened.read { try $0.transit(msgid: msgid) }
            #expect(transit?.state == "settled" && transit?.setlID == setlID, "\(msgid): \(String(describing: transit))")
        }
        #expect(try reopened.read { try $0.count(table: .transits) } == 3)
        // The reopened index knows M1 is settled: a late timeout replaces nothing.
        var timeout = WireResponse()
        timeout.infcode = -1
        timeout.errCode = ErrorCode.timeout.rawValue
        try reopened.write { tx in try tx.recordTransit(TransitRecord(request: first, response: timeout, role: .origin, nowMs: 5)) }
        #expect(try reopened.read { try $0.transit(msgid: "M1") }?.state == "settled")
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

    /// A refusal decided on the way (SN-E3001: not delivered) speaks for its attempt only: the
    /// same msgid asked again and settled is recorded over it. A refusal the insured county
    /// decided (SN-E2001) stays, as a settled outcome does.
    @Test func aRefusalOfAnAttemptGivesWayToTheNextAttempt() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func refusal(_ code: ErrorCode) -> WireResponse {
            var answer = WireResponse()
            answer.infcode = -1
            answer.errCode = code.rawValue
            return answer
        }
        let repeated = RequestMeta(request(msgid: "M1")), decided = RequestMeta(request(msgid: "M2"))
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(request: repeated, response: refusal(.unreachable), role: .relay, nowMs: 1))
            try tx.recordTransit(TransitRecord(request: decided, response: refusal(.unknownPerson), role: .relay, nowMs: 1))
        }
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(request: repeated, response: settledAnswer(setlID: "S1"), role: .relay, nowMs: 2))
            try tx.recordTransit(TransitRecord(request: decided, response: settledAnswer(setlID: "S2"), role: .relay, nowMs: 2))
        }
        let first = try ledger.read { try $0.transit(msgid: "M1") }, second = try ledger.read { try $0.transit(msgid: "M2") }
        #expect(first?.state == "settled" && first?.setlID == "S1", "\(String(describing: first))")
        #expect(second?.state == "refused" && second?.setlID == "", "\(String(describing: second))")
        #expect(ErrorCode.allCases.filter(\.refusesOnlyTheAttempt).allSatisfy { $0.isDefinite && $0.rawValue.hasPrefix("SN-E3") })
    }

    @Test func transitRecordsReplaceOnlyAnUnknownOutcome() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let meta = RequestMeta(request(msgid: "M1"))
        var timeout = WireResponse()
        timeout.infcode = -1
        timeout.errCode = ErrorCode.timeout.rawValue
        let settled = settledAnswer(setlID: "S1")
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

    func correction(of omsgid: String, outcome: String, setlID: String = "") -> (RequestMeta, WireResponse) {
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        var request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 0)
        request.infno = TransactionCode.correction.rawValue
        request.msgid = "CR" + omsgid
        var input = CorrectionInput()
        input.omsgid = omsgid
        input.oinfno = "2207"
        request.input = .correction(input)
        var answer = WireResponse()
        answer.infcode = 0
        var out = CorrectionOutput()
        out.omsgid = omsgid
        out.outcome = outcome
        out.setlID = setlID
        answer.output = .correction(out)
        return (RequestMeta(request), answer)
    }

    func view(_ ledger: Ledger, _ msgid: String) throws -> SettlementView? {
        try ledger.read { try $0.settlementTransits() }.first { $0.msgid == msgid }
    }

    /// A relay killed while a settlement was in flight never recorded it (its answer found
    /// nobody waiting after the restart). The correction that later resolved it passes through
    /// that relay, which records the settlement's final state; its amounts stay unseen.
    @Test func aCorrectionPassingATierWithoutARecordOfTheSettlementRecordsItsFinalState() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (reversing, reversed) = correction(of: "M1", outcome: "reversed", setlID: "410102000000000042")
        try ledger.write { tx in try tx.recordTransit(TransitRecord(request: reversing, response: reversed, role: .relay, nowMs: 5)) }
        let original = try #require(try view(ledger, "M1"), "the relay has no record of the settlement the correction reversed")
        #expect(original.state == "reversed" && original.infno == "2207" && original.setlID == "410102000000000042")
        #expect(original.treatment == "370211" && original.insured == "410102")
        #expect(original.errCode == ErrorCode.cancelledByCorrection.rawValue, "amounts never seen must be marked so")

        // Never in effect (cancelled before it arrived, or refused): recorded as refused.
        let (cancelling, cancelled) = correction(of: "M2", outcome: "cancelled")
        try ledger.write { tx in try tx.recordTransit(TransitRecord(request: cancelling, response: cancelled, role: .insured, nowMs: 6)) }
        #expect(try view(ledger, "M2")?.state == "refused")
    }

    /// The origin's in-flight journal (state unknown, no error code) takes a correction's
    /// outcome with the marker that its amounts were never seen; a settlement seen settled keeps
    /// its amounts and becomes reversed.
    @Test func aCorrectionMarksAJournaledRequestUnseenAndASettledOneReversed() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journaled = TransitRecord(inFlight: RequestMeta(request(msgid: "M1")), nowMs: 1)
        let settled = settledAnswer(setlID: "S2")
        try ledger.write { tx in
            try tx.recordTransit(journaled)
            try tx.recordTransit(TransitRecord(request: RequestMeta(request(msgid: "M2")), response: settled, role: .relay, nowMs: 1))
        }
        #expect(try view(ledger, "M1")?.state == "unknown")
        #expect(try ledger.read { try $0.inFlightAtOrigin() }.map(\.msgid) == ["M1"])
        for msgid in ["M1", "M2"] {
            let (meta, answer) = correction(of: msgid, outcome: "reversed")
            try ledger.write { tx in try tx.recordTransit(TransitRecord(request: meta, response: answer, role: .relay, nowMs: 2)) }
        }
        let first = try #require(try view(ledger, "M1"))
        #expect(first.state == "reversed" && first.errCode == ErrorCode.cancelledByCorrection.rawValue)
        let second = try #require(try view(ledger, "M2"))
        #expect(second.state == "reversed" && second.errCode.isEmpty && second.setlID == "S2" && second.medfeeSumamt == 10_000)
        #expect(try ledger.read { try $0.inFlightAtOrigin() }.isEmpty)
    }

    /// What the origin needs after a crash to resolve a journaled reversal: the settlement it
    /// reverses, its code and the person. Resolving that settlement settles the reversal too.
    @Test func aJournaledReversalIsFoundAfterARestartAndSettledByItsResolution() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!, firstSequence: 3)
        let reversal = factory.reversal(omsgid: "M1", psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                        inpatient: false, nowMs: 0)
        try ledger.write { tx in try tx.recordTransit(TransitRecord(inFlight: RequestMeta(reversal), nowMs: 1)) }
        let reopened = try Ledger(path: ledger.path)
        let found = try #require(try reopened.read { try $0.inFlightAtOrigin() }.first)
        #expect(found.msgid == reversal.msgid && found.infno == "2208" && found.omsgid == "M1" && found.oinfno == "2207")
        #expect(found.psnNo == "41010200000000000001" && found.insuplcAdmdvs == "410102" && found.isReversal)
        #expect(try reopened.read { try $0.unknownReversals() } == [reversal.msgid])

        var final = WireResponse()
        final.infcode = -1
        final.errCode = ErrorCode.cancelledByCorrection.rawValue
        var record = TransitRecord(request: RequestMeta(omsgid: "M1", infno: "2207", treatment: "370211", insured: "410102",
                                                        fixmedinsCode: "H37021100001"), response: final, role: .origin, nowMs: 9)
        record.state = .reversed
        try reopened.write { tx in try tx.recordTransit(record, resolution: true) }
        #expect(try reopened.read { try $0.unknownReversals() }.isEmpty)
        #expect(try reopened.read { try $0.inFlightAtOrigin() }.isEmpty)
    }

    /// A relay gave up on a reversal (its answer was lost with a killed tier beyond it), and
    /// the hospital's next ask was refused by a tier before it that was down, so no answer of
    /// that reversal ever passes here again. The correction that resolves its settlement does,
    /// before or after this relay's own timeout: either way the reversal ends in its outcome.
    @Test func aRelaysReversalInDoubtTakesTheOutcomeOfTheCorrectionOfItsSettlement() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var timeout = WireResponse()
        timeout.infcode = -1
        timeout.errCode = ErrorCode.timeout.rawValue
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!, firstSequence: 3)
        func reversal(of omsgid: String) -> RequestMeta {
            RequestMeta(factory.reversal(omsgid: omsgid, psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         inpatient: false, nowMs: 0))
        }
        func record(_ meta: RequestMeta, _ answer: WireResponse, at nowMs: Int64) throws {
            try ledger.write { tx in try tx.recordTransit(TransitRecord(request: meta, response: answer, role: .relay, nowMs: nowMs)) }
        }
        func state(_ msgid: String) throws -> String? { try ledger.read { try $0.transit(msgid: msgid) }?.state }
        let settled = settledAnswer(setlID: "S1")

        // The timeout first, then the correction.
        let first = reversal(of: "M1")
        try record(RequestMeta(request(msgid: "M1")), settled, at: 1)
        try record(first, timeout, at: 2)
        #expect(try ledger.read { try $0.unknownReversals() } == [first.msgid])
        let (reversing, reversedByCorrection) = correction(of: "M1", outcome: "reversed")
        try record(reversing, reversedByCorrection, at: 3)
        #expect(try state(first.msgid) == "reversed" && state("M1") == "reversed")

        // The correction first (the relay's wait was the longer, its request having been held
        // on a delayed link), then the timeout.
        let second = reversal(of: "M2")
        try record(RequestMeta(request(msgid: "M2")), settled, at: 4)
        let (reversingSecond, reversedSecond) = correction(of: "M2", outcome: "reversed")
        try record(reversingSecond, reversedSecond, at: 5)
        try record(second, timeout, at: 6)
        #expect(try state(second.msgid) == "reversed")

        // A settlement the correction found never in effect: its reversal did not take effect either.
        let third = reversal(of: "M3")
        let (cancelling, cancelled) = correction(of: "M3", outcome: "cancelled")
        try record(cancelling, cancelled, at: 7)
        try record(third, timeout, at: 8)
        #expect(try state(third.msgid) == "refused" && state("M3") == "refused")
        #expect(try ledger.read { try $0.unknownReversals() }.isEmpty)

        // Without a correction of its settlement, a reversal in doubt stays in doubt.
        let fourth = reversal(of: "M4")
        try record(RequestMeta(request(msgid: "M4")), settled, at: 9)
        try record(fourth, timeout, at: 10)
        #expect(try ledger.read { try $0.unknownReversals() } == [fourth.msgid])
    }

    /// A province's batch to the national store mixes many hospitals' batches, so their
    /// records' batch_index values repeat in it. Both rejects are kept, each correctable.
    @Test func rejectsOfOneBatchWithTheSameHospitalIndexAreAllKept() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ledger.write { tx in
            try tx.recordUploadReject(msgid: "B1", position: 0, batchIndex: 7, setlID: "S1", fixmedinsCode: "H1",
                                      ruleID: "DQ-R204", field: "setl_id", nowMs: 1)
            try tx.recordUploadReject(msgid: "B1", position: 1, batchIndex: 7, setlID: "S2", fixmedinsCode: "H2",
                                      ruleID: "DQ-R204", field: "setl_id", nowMs: 1)
        }
        #expect(try ledger.read { try $0.count(table: .uploadRejects) } == 2)
        #expect(try ledger.read { try $0.uncorrectedRejects(fixmedinsCode: "H2") } == 1)
        #expect(try ledger.write { try $0.markRejectCorrected(setlID: "S2", fixmedinsCode: "H2", nowMs: 2) })
        #expect(try ledger.read { try $0.uncorrectedRejects(fixmedinsCode: "H2") } == 0)
    }

    /// The national outbox in the ledger: batches oldest first, each with its own records in
    /// the order queued, and gone once acknowledged (across a reopening, as after a restart).
    /// The records of one batch screened here stay together, in one batch for the national store.
    @Test func theOutboxKeepsBatchesInOrderWithTheirOwnRecords() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func records(_ values: ClosedRange<UInt8>) -> [[UInt8]] { values.map { [$0] } }
        try ledger.write { tx in
            for (msgid, range) in [("U1", 1...2), ("U2", 3...3), ("U3", 4...6), ("U4", 7...7)] as [(String, ClosedRange<UInt8>)] {
                try tx.storeUploadRecords(msgid: msgid, input: WireCodec.uploadInput(records: records(range), catalogVersion: ""),
                                          records: range.count, nowMs: 0)
                try tx.enqueueForNational(storedBatch: msgid, records: range.count)
            }
            #expect(try tx.count(table: .uploadStored) == 4)
            #expect(try tx.assignOutboxBatch(msgid: "B2", limit: 3) == 3, "two chunks fit in 3")
            #expect(try tx.assignOutboxBatch(msgid: "B1", limit: 2) == 3, "a chunk larger than the limit goes alone")
        }
        let reopened = try Ledger(path: ledger.path)
        try reopened.write { tx in
            #expect(try tx.outboxBatchIDs() == ["B2", "B1"], "oldest first, whatever the msgids")
            #expect(try tx.outboxInput(batch: "B1") == WireCodec.uploadInput(records: records(4...6), catalogVersion: ""))
            #expect(try tx.outboxInput(batch: "B2") == WireCodec.uploadInput(records: records(1...3), catalogVersion: ""))
            try tx.acknowledgeOutboxBatch(msgid: "B2")
            #expect(try tx.outboxBatchIDs() == ["B1"])
            #expect(try tx.outboxPending() == 4)
            #expect(try tx.assignOutboxBatch(msgid: "B3", limit: 10) == 1)
            #expect(try tx.outboxInput(batch: "B3") == WireCodec.uploadInput(records: records(7...7), catalogVersion: ""))
        }
    }

    /// A ledger written before the outbox kept chunks: what it queued goes on in its order and
    /// its batches.
    @Test func anOlderLedgersOutboxIsCarriedOver() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-outbox-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        let old = try DatabaseQueue(path: path)
        try Ledger.migrator.migrate(old, upTo: "v10-settlement-check")
        try old.write { db in
            for (index, batch) in [("B1" as String?), "B1", nil].enumerated() {
                try db.execute(sql: "INSERT INTO upload_outbox (setl_id, record, batch_msgid) VALUES (?, ?, ?)",
                               arguments: ["S\(index)", Data([UInt8(index)]), batch])
            }
        }
        try old.close()
        let ledger = try Ledger(path: path)
        try ledger.write { (tx: LedgerTransaction) throws in
            #expect(try tx.outboxPending() == 3)
            #expect(try tx.outboxBatchIDs() == ["B1"])
            #expect(try tx.outboxInput(batch: "B1") == WireCodec.uploadInput(records: [[0], [1]], catalogVersion: ""))
            #expect(try tx.assignOutboxBatch(msgid: "B2", limit: 5) == 1)
            #expect(try tx.outboxInput(batch: "B2") == WireCodec.uploadInput(records: [[2]], catalogVersion: ""))
        }
    }

    /// The registry may hear of a ticket's close before its opening: the state stays closed,
    /// and the opening's time (the earlier) is kept when it comes.
    @Test func aTicketsStateOnlyMovesForwardAndKeepsTheEarliestOpening() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func ticket(_ state: TicketState, openedAtMs: Int64, closedAtMs: Int64? = nil) -> Ticket {
            Ticket(ticketID: "TK1", kind: .nodeUnresponsive, code: "SN-E3002", subject: "410102", responsible: "410102",
                   openedBy: "410100", state: state, reason: "silent", occurrences: 1, openedAtMs: openedAtMs,
                   acknowledgedAtMs: nil, closedAtMs: closedAtMs)
        }
        try ledger.write { tx in
            try tx.upsertTicket(ticket(.closed, openedAtMs: 2_000, closedAtMs: 2_000))
            try tx.upsertTicket(ticket(.open, openedAtMs: 1_000))
        }
        let stored = try #require(try ledger.read { try $0.ticket("TK1") })
        #expect(stored.state == .closed && stored.openedAtMs == 1_000 && stored.closedAtMs == 2_000)
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

    /// The insured county's hot reads come straight from SQLite's columns: each field as written.
    @Test func personsAndStoredAnswersReadBackAsWritten() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let population = SyntheticPopulation(county: DivisionCode("410102")!, size: 200)
        try ledger.seedPopulation(population)
        for index in 0..<population.size {
            let expected = population.person(index)
            let read = try #require(try ledger.read { try $0.person(expected.psnNo) })
            #expect(read == PersonAccount(psnNo: expected.psnNo, insutype: expected.insutype, balanceFen: expected.initialBalanceFen,
                                          filedOffsite: expected.filedOffsite))
        }
        #expect(Set((0..<population.size).map { population.person($0).filedOffsite }) == [true, false], "both kinds read")
        var changed = try #require(try ledger.read { try $0.person(population.psnNo(7)) })
        changed.balanceFen = 0; changed.deductibleUsedFen = 12_345; changed.poolUsedFen = 678
        try ledger.write { try $0.updatePerson(changed) }
        #expect(try ledger.read { try $0.person(population.psnNo(7)) } == changed)
        #expect(try ledger.read { try $0.person("no such person") } == nil)

        try ledger.write { tx in
            try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [0, 1, 255])
            try tx.insertReversal(msgid: "R1", omsgid: "M1", infno: "2208", infcode: 0, nowMs: 1, response: [])
        }
        let settled = try ledger.read { try $0.storedAnswer(msgid: "M1") }
        #expect(settled?.infno == "2207" && settled?.response == [0, 1, 255])
        let reversal = try ledger.read { try $0.storedAnswer(msgid: "R1") }
        #expect(reversal?.infno == "2208" && reversal?.response == [])
        #expect(try ledger.read { try $0.storedAnswer(msgid: "M9") } == nil)
    }

    /// The writer asks its filter of msgids with a stored answer before the tables: every kind
    /// of stored answer must pass it, in the transaction that stored it, in later ones, and
    /// after the ledger reopens.
    @Test func theWriterFindsEveryStoredAnswerThroughItsFilter() throws {
        let (ledger, directory) = try temporaryLedger()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let kinds: [(msgid: String, infno: String, response: [UInt8])] = [("M1", "2207", [1]), ("M2", "2207", [2]),
                                                                          ("R1", "2208", [3]), ("T1", "2601", [4])]
        func storedByTheWriter(_ ledger: Ledger) throws -> [String: [UInt8]] {
            try ledger.write { tx in
                var found: [String: [UInt8]] = [:]
                for kind in kinds { found[kind.msgid] = try tx.storedAnswer(msgid: kind.msgid)?.response }
                #expect(try tx.storedAnswer(msgid: "M9") == nil)
                return found
            }
        }
        let inTheSameTransaction = try ledger.write { tx in
            try tx.insertSettled(request: request(msgid: "M1"), split: split, psnNo: "P", setlID: "S1", nowMs: 0, response: [1])
            try tx.insertRefused(request: request(msgid: "M2"), errCode: "SN-E2001", nowMs: 0, response: [2])
            try tx.insertReversal(msgid: "R1", omsgid: "M1", infno: "2208", infcode: 0, nowMs: 1, response: [3])
            try tx.insertTombstone(omsgid: "T1", infno: "2601", psnNo: "P", mdtrtareaAdmvs: "370211", fixmedinsCode: "H37021100001",
                                   nowMs: 1, response: [4])
            return try kinds.map { try tx.storedAnswer(msgid: $0.msgid)?.response }
        }
        let expected = Dictionary(uniqueKeysWithValues: kinds.map { ($0.msgid, $0.response) })
        #expect(inTheSameTransaction == kinds.map(\.response))
        #expect(try storedByTheWriter(ledger) == expected)
        #expect(try storedByTheWriter(try Ledger(path: ledger.path)) == expected)
    }
}

/// The digest a simulation's replay compares: alike for the same rows, different for any change.
@Suite struct LedgerDigestTests {
    @Test func twoLedgersWithTheSameRowsDigestAlikeAndAnyChangeShows() throws {
        let directory = try makeTemporaryDirectory("digest")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let helper = LedgerTests()
        func ledger(_ name: String, setlID: String, response: [UInt8]) throws -> String {
            let ledger = try Ledger(path: "\(directory)/\(name).sqlite")
            try ledger.write { tx in
                try tx.insertSettled(request: helper.request(msgid: "M1"), split: helper.split, psnNo: "P", setlID: setlID,
                                     nowMs: 7, response: response)
            }
            return try ledger.contentDigest()
        }
        let first = try ledger("a", setlID: "S1", response: [1, 2])
        #expect(try ledger("b", setlID: "S1", response: [1, 2]) == first)
        #expect(try ledger("c", setlID: "S2", response: [1, 2]) != first)
        #expect(try ledger("d", setlID: "S1", response: [1, 3]) != first)
        // Values do not run together: "S1" then [1, 2] is not "S" then "1" and [1, 2].
        #expect(try ledger("e", setlID: "S", response: [1, 2]) != first)
    }
}
