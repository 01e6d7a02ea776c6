import SettlementCore
import SettlementModel
import Testing

/// A province's hand-off to the national store, with its store in memory.
@Suite struct NationalOutboxTests {
    final class Store: OutboxStore {
        var queued: [(setlID: String, record: [UInt8], batch: String?)] = []
        var acknowledged: [String] = []

        func assignOutboxBatch(msgid: String, limit: Int) throws -> Int {
            let free = queued.indices.filter { queued[$0].batch == nil }.prefix(limit)
            for index in free { queued[index].batch = msgid }
            return free.count
        }

        func outboxBatches() throws -> [(msgid: String, records: [[UInt8]])] {
            var order: [String] = []
            var records: [String: [[UInt8]]] = [:]
            for entry in queued {
                guard let batch = entry.batch else { continue }
                if records[batch] == nil { order.append(batch) }
                records[batch, default: []].append(entry.record)
            }
            return order.map { ($0, records[$0]!) }
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
        let batch = try #require(first.first)
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
}
