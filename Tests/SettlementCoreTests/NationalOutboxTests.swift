import SettlementCore
import SettlementModel
import Testing

/// A province's hand-off to the national store, with its store in memory.
@Suite struct NationalOutboxTests {
    final class Store: OutboxStore {
        var queued: [(setlID: String, record: [UInt8], batch: String?)] = []
        var acknowledged: [String] = []
        /// The batches whose records were read, in order.
        var recordsRead: [String] = []

        func assignOutboxBatch(msgid: String, limit: Int) throws -> Int {
            let free = queued.indices.filter { queued[$0].batch == nil }.prefix(limit)
            for index in free { queued[index].batch = msgid }
            return free.count
        }

        func outboxBatchIDs() throws -> [String] {
            var order: [String] = []
            for entry in queued { if let batch = entry.batch, !order.contains(batch) { order.append(batch) } }
            return order
        }

        func outboxInput(batch msgid: String) throws -> [UInt8] {
            recordsRead.append(msgid)
            return WireCodec.uploadInput(records: queued.filter { $0.batch == msgid }.map(\.record), catalogVersion: "")
        }

        func acknowledgeOutboxBatch(msgid: String) throws {
            queued.removeAll { $0.batch == msgid }
            acknowledged.append(msgid)
        }

        func queue(_ setlIDs: [String]) throws {
            for setlID in setlIDs {
                var record = UploadRecord()
                record.setlID = setlID
                queued.append((setlID, try record.serializedBytes(), nil))
            }
        }
    }

    /// A batch as the national tier decodes it.
    func decoded(_ batch: NationalOutbox.Batch) throws -> WireRequest {
        let request = try WireRequest(serializedBytes: batch.body)
        #expect(request.msgid == batch.msgid)
        return request
    }

    func answer(_ msgid: String, code: String = "") -> WireResponse {
        var response = WireResponse()
        response.reqMsgid = msgid
        response.infcode = code.isEmpty ? 0 : -1
        response.errCode = code
        return response
    }

    @Test func recordsGoUpInBatchesUntilEachIsAcknowledgedAndAreResentMeanwhile() throws {
        let store = Store()
        var outbox = NationalOutbox(province: DivisionCode("370000")!)
        outbox.batchLimit = 2
        try store.queue(["S1", "S2", "S3"])
        outbox.recordsQueued()
        let first = try outbox.due(nowMs: 1_000, catalogVersion: "V1", store: store)
        #expect(first.count == 1, "one new batch per flush, at most batchLimit records")
        let batch = try decoded(try #require(first.first))
        guard case .upload(let input)? = batch.input else { Issue.record("no upload"); return }
        #expect(input.records.map(\.setlID) == ["S1", "S2"] && input.catalogVersion == "V1")
        #expect(batch.infno == "4101" && batch.mdtrtareaAdmvs == "370000" && batch.insuplcAdmdvs == "370000")
        outbox.sent(batch.msgid, nowMs: 1_000)
        #expect(outbox.awaits(batch.msgid))

        // The next flush makes the second batch; the first is not due again before resendMs.
        let second = try outbox.due(nowMs: 1_100, catalogVersion: "V1", store: store)
        #expect(second.count == 1 && second.first?.msgid != batch.msgid)
        outbox.sent(second[0].msgid, nowMs: 1_100)
        let resent = try outbox.due(nowMs: 1_000 + outbox.resendMs, catalogVersion: "V1", store: store)
        #expect(resent.map(\.msgid) == [batch.msgid], "unacknowledged: the same msgid again, so it is stored once")

        let firstAnswer = try outbox.answered(answer(batch.msgid), store: store)
        #expect(firstAnswer == .stored)
        #expect(store.acknowledged == [batch.msgid] && !outbox.awaits(batch.msgid))
        // Refused above: due again at the next flush.
        let refused = try outbox.answered(answer(second[0].msgid, code: ErrorCode.catalogNotLoaded.rawValue), store: store)
        #expect(refused == .refused(code: ErrorCode.catalogNotLoaded.rawValue))
        let dueAgain = try outbox.due(nowMs: 1_200, catalogVersion: "V1", store: store)
        #expect(dueAgain.map(\.msgid) == [second[0].msgid])
        let secondAnswer = try outbox.answered(answer(second[0].msgid), store: store)
        #expect(secondAnswer == .stored)
    }

    @Test func anIdleOutboxStopsLookingUntilSomethingIsQueued() throws {
        let store = Store()
        var outbox = NationalOutbox(province: DivisionCode("370000")!)
        #expect(outbox.hasWork, "after a start, whatever an earlier run left is looked for")
        #expect(try outbox.due(nowMs: 1, catalogVersion: "V1", store: store).isEmpty)
        #expect(!outbox.hasWork)
        try store.queue(["S1"])
        outbox.recordsQueued()
        #expect(outbox.hasWork)
        let due = try outbox.due(nowMs: 2, catalogVersion: "V1", store: store)
        #expect(due.count == 1)
    }

    @Test func atMostMaxInFlightBatchesAwaitAnAnswerAndAnAnswerFreesAPlace() throws {
        let store = Store()
        var outbox = NationalOutbox(province: DivisionCode("370000")!)
        outbox.batchLimit = 1
        outbox.maxInFlight = 2
        try store.queue(["S1", "S2", "S3"])
        outbox.recordsQueued()
        var sent: [String] = []
        for now in Int64(1)...3 {
            for batch in try outbox.due(nowMs: now, catalogVersion: "V1", store: store) {
                outbox.sent(batch.msgid, nowMs: now)
                sent.append(batch.msgid)
            }
        }
        #expect(sent.count == 2, "a third batch waits while two await an answer")
        #expect(store.queued.filter { $0.batch == nil }.map(\.setlID) == ["S3"])
        _ = try outbox.answered(answer(sent[0]), store: store)
        let next = try outbox.due(nowMs: 4, catalogVersion: "V1", store: store).map(decoded)
        guard case .upload(let input)? = next.first?.input else { Issue.record("no batch after an answer"); return }
        #expect(next.count == 1 && input.records.map(\.setlID) == ["S3"])
    }

    @Test func aFlushReadsTheRecordsOfTheBatchesItSendsOnly() throws {
        let store = Store()
        var outbox = NationalOutbox(province: DivisionCode("370000")!)
        outbox.batchLimit = 1
        try store.queue(["S1", "S2"])
        outbox.recordsQueued()
        let first = try outbox.due(nowMs: 1, catalogVersion: "V1", store: store)
        outbox.sent(first[0].msgid, nowMs: 1)
        store.recordsRead = []
        let second = try outbox.due(nowMs: 2, catalogVersion: "V1", store: store)
        #expect(second.count == 1 && store.recordsRead == [second[0].msgid],
                "the batch in flight and not due again is left in the store")
    }
}
