import SettlementCore
import SettlementModel

/// An upload store in memory with the ledger's rules (one record per setl_id at a tier, one
/// decision per batch msgid), tickets included, for testing the upload screen.
public final class InMemoryUploadStore: InMemoryTicketStore, UploadStore {
    public struct Reject: Equatable, Sendable {
        public var msgid: String
        public var position: Int
        public var setlID: String
        public var fixmedinsCode: String
        public var ruleID: String
        public var corrected = false
    }

    public private(set) var batches: [String: UploadBatchDecision] = [:]
    /// Every setl_id claimed here.
    public private(set) var claimed: Set<String> = []
    /// Provincial and national tiers: batch msgid → its records as stored (an UploadInput's
    /// records field).
    public private(set) var storedBatches: [String: [UInt8]] = [:]
    /// Provincial tier: the stored batches queued for the national store, in order.
    public private(set) var nationalOutbox: [(msgid: String, records: Int)] = []
    public private(set) var rejects: [Reject] = []
    public private(set) var counts: [String: Int] = [:]

    public override init() { super.init() }

    public func uploadBatch(msgid: String) throws -> UploadBatchDecision? { batches[msgid] }

    public func saveUploadBatch(msgid: String, decision: UploadBatchDecision) throws {
        guard batches[msgid] == nil else { throw InMemorySettlementStore.DuplicateKey(table: "upload_batches", key: msgid) }
        batches[msgid] = decision
    }

    public func claimUploadRecord(setlID: String) throws -> Bool {
        claimed.insert(setlID).inserted
    }

    public func storeUploadRecords(msgid: String, input: [UInt8], records: Int, nowMs: Int64) throws {
        guard storedBatches[msgid] == nil else { throw InMemorySettlementStore.DuplicateKey(table: "upload_stored", key: msgid) }
        storedBatches[msgid] = input
    }

    public func enqueueForNational(storedBatch msgid: String, records: Int) throws {
        nationalOutbox.append((msgid, records))
    }

    public func recordUploadReject(msgid: String, position: Int, batchIndex: Int32, setlID: String, fixmedinsCode: String,
                                   ruleID: String, field: String, nowMs: Int64) throws {
        guard !rejects.contains(where: { $0.msgid == msgid && $0.position == position }) else { return }
        rejects.append(Reject(msgid: msgid, position: position, setlID: setlID, fixmedinsCode: fixmedinsCode, ruleID: ruleID))
    }

    public func markRejectCorrected(setlID: String, fixmedinsCode: String, nowMs: Int64) throws -> Bool {
        var any = false
        for index in rejects.indices where rejects[index].setlID == setlID && rejects[index].fixmedinsCode == fixmedinsCode
            && !rejects[index].corrected {
            rejects[index].corrected = true
            any = true
        }
        return any
    }

    public func uncorrectedRejects(fixmedinsCode: String) throws -> Int {
        rejects.filter { $0.fixmedinsCode == fixmedinsCode && !$0.corrected }.count
    }

    public func addUploadCount(_ name: String, _ amount: Int) throws { counts[name, default: 0] += amount }
}
