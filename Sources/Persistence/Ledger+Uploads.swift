import Foundation
import GRDB
import SettlementCore
import SettlementModel

// MARK: Uploads

extension LedgerTransaction {
    public func uploadBatch(msgid: String) throws -> UploadBatchDecision? {
        let statement = try db.cachedStatement(sql: """
            SELECT received, own_rejects, forwarded, answer, passed_digest, rejected_positions FROM upload_batches WHERE msgid = ?
            """)
        guard let row = try Row.fetchOne(statement, arguments: [msgid]) else { return nil }
        var passedUp: PassedUp?
        if let forwarded = row[2] as Data? {
            passedUp = PassedUp(rejectedPositions: [], digest: 0, bytes: Array(forwarded))
        } else if let digest = row[4] as Int64? {
            passedUp = PassedUp(rejectedPositions: Self.positions((row[5] as Data?) ?? Data()), digest: UInt64(bitPattern: digest))
        }
        return UploadBatchDecision(received: row[0], ownRejects: Array(row[1] as Data), passedUp: passedUp,
                                   answer: (row[3] as Data?).map { Array($0) })
    }

    public func saveUploadBatch(msgid: String, decision: UploadBatchDecision) throws {
        try run("""
            INSERT INTO upload_batches (msgid, received, own_rejects, forwarded, answer, passed_digest, rejected_positions)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """) { values in
            values.bind(msgid); values.bind(Int64(decision.received)); values.bind(decision.ownRejects)
            values.bind(decision.passedUp?.bytes); values.bind(decision.answer)
            values.bind(decision.passedUp.map { Int64(bitPattern: $0.digest) })
            values.bind(decision.passedUp.map { Self.bytes(of: $0.rejectedPositions) })
        }
    }

    /// Positions as 32-bit little-endian integers, one after another.
    static func bytes(of positions: [Int]) -> [UInt8] {
        positions.flatMap { position in withUnsafeBytes(of: UInt32(truncatingIfNeeded: position).littleEndian, Array.init) }
    }

    static func positions(_ bytes: Data) -> [Int] {
        bytes.withUnsafeBytes { raw in
            stride(from: 0, to: raw.count - 3, by: 4).map { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0, as: UInt32.self))) }
        }
    }

    /// Claims `setlID` for this tier: false when a record with it already passed here (a duplicate).
    /// The claim is the setl_id alone: who sent the record, and when, is in its batch's row.
    public func claimUploadRecord(setlID: String) throws -> Bool {
        try run("INSERT INTO upload_claims (setl_id) VALUES (?) ON CONFLICT(setl_id) DO NOTHING") { values in
            values.bind(setlID)
        } == 1
    }

    public func storeUploadRecords(msgid: String, input: [UInt8], records: Int, nowMs: Int64) throws {
        try run("INSERT INTO upload_stored (msgid, records, input, stored_at_ms) VALUES (?, ?, ?, ?)") { values in
            values.bind(msgid); values.bind(Int64(records)); values.bind(input); values.bind(nowMs)
        }
    }

    /// `position`: the record's place in the batch as this tier received it (unique in the batch);
    /// `batchIndex`: its place in the hospital's batch, for the reports.
    public func recordUploadReject(msgid: String, position: Int, batchIndex: Int32, setlID: String, fixmedinsCode: String,
                                   ruleID: String, field: String, nowMs: Int64) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO upload_rejects (msgid, position, batch_index, setl_id, fixmedins_code, rule_id, field, rejected_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """)
        try statement.execute(arguments: [msgid, position, batchIndex, setlID, fixmedinsCode, ruleID, field, nowMs])
    }

    /// Marks this tier's uncorrected rejects of `setlID` from `fixmedinsCode` corrected; true
    /// when there was one.
    public func markRejectCorrected(setlID: String, fixmedinsCode: String, nowMs: Int64) throws -> Bool {
        let statement = try db.cachedStatement(sql: """
            UPDATE upload_rejects SET corrected_at_ms = ?
            WHERE fixmedins_code = ? AND setl_id = ? AND corrected_at_ms IS NULL
            """)
        try statement.execute(arguments: [nowMs, fixmedinsCode, setlID])
        return db.changesCount > 0
    }

    /// Rejects of `fixmedinsCode`'s records at this tier still waiting for a correction.
    public func uncorrectedRejects(fixmedinsCode: String) throws -> Int {
        let statement = try db.cachedStatement(sql: """
            SELECT count(*) FROM upload_rejects WHERE fixmedins_code = ? AND corrected_at_ms IS NULL
            """)
        return try Int.fetchOne(statement, arguments: [fixmedinsCode]) ?? 0
    }

    /// Adds to the tier's counters ('received', 'accepted' or a rule id).
    public func addUploadCount(_ name: String, _ amount: Int) throws {
        guard amount != 0 else { return }
        try run("""
            INSERT INTO upload_counts (name, count) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET count = count + excluded.count
            """) { values in values.bind(name); values.bind(Int64(amount)) }
    }

    public func uploadCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, count FROM upload_counts") { counts[row[0]] = row[1] }
        return counts
    }

    /// Queues the records stored for batch `msgid` for the national store, as one chunk that
    /// refers to them (their bytes are not written twice).
    public func enqueueForNational(storedBatch msgid: String, records: Int) throws {
        guard records > 0 else { return }
        try run("INSERT INTO upload_outbox_chunks (records, input, stored_msgid) VALUES (?, x'', ?)") { values in
            values.bind(Int64(records)); values.bind(msgid)
        }
    }

    /// Gives unassigned chunks, oldest first, the batch `msgid`: as many as fit in `limit`
    /// records, and at least one. Returns how many records the batch holds.
    public func assignOutboxBatch(msgid: String, limit: Int) throws -> Int {
        let free = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT seq, records FROM upload_outbox_chunks WHERE batch_msgid IS NULL ORDER BY seq LIMIT ?
            """), arguments: [max(1, limit)])
        var taken: [Int64] = [], records = 0
        for row in free {
            let count: Int = row[1]
            if !taken.isEmpty && records + count > limit { break }
            taken.append(row[0])
            records += count
        }
        let assign = try db.cachedStatement(sql: "UPDATE upload_outbox_chunks SET batch_msgid = ? WHERE seq = ?")
        for seq in taken { try assign.execute(arguments: [msgid, seq]) }
        return records
    }

    /// Batches assigned but not yet acknowledged by the national tier, oldest first.
    public func outboxBatchIDs() throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT batch_msgid FROM upload_outbox_chunks WHERE batch_msgid IS NOT NULL GROUP BY batch_msgid ORDER BY min(seq)
            """)
    }

    /// The records of batch `msgid` in the order queued, as the records field of an UploadInput.
    public func outboxInput(batch msgid: String) throws -> [UInt8] {
        // A chunk queued before v12 holds its records itself.
        let statement = try db.cachedStatement(sql: """
            SELECT coalesce(s.input, c.input) FROM upload_outbox_chunks c LEFT JOIN upload_stored s ON s.msgid = c.stored_msgid
            WHERE c.batch_msgid = ? ORDER BY c.seq
            """)
        var input: [UInt8] = []
        for chunk in try Data.fetchAll(statement, arguments: [msgid]) { input.append(contentsOf: chunk) }
        return input
    }

    public func acknowledgeOutboxBatch(msgid: String) throws {
        try db.execute(sql: "DELETE FROM upload_outbox_chunks WHERE batch_msgid = ?", arguments: [msgid])
    }

    /// Records waiting for the national store (sent or not).
    public func outboxPending() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT coalesce(sum(records), 0) FROM upload_outbox_chunks") ?? 0
    }

    /// Stored records (provincial and national tiers) since `sinceMs`: setl_id and institution,
    /// read from the batches stored (and, for a ledger older than v13, from its claim rows).
    public func storedUploadKeys(sinceMs: Int64 = 0) throws -> [(setlID: String, fixmedinsCode: String)] {
        var keys = try Row.fetchAll(db, sql: "SELECT setl_id, fixmedins_code FROM upload_records WHERE stored_at_ms >= ?",
                                    arguments: [sinceMs]).map { (setlID: $0[0] as String, fixmedinsCode: $0[1] as String) }
        // Batches stored before v13 have no time (0): their keys are the claim rows above.
        for input in try Data.fetchAll(db, sql: "SELECT input FROM upload_stored WHERE stored_at_ms >= ? AND stored_at_ms > 0",
                                       arguments: [sinceMs]) {
            keys += try UploadInput(serializedBytes: input).records.map { ($0.setlID, $0.fixmedinsCode) }
        }
        return keys
    }

    public func uploadRejectKeys(sinceMs: Int64 = 0) throws -> [(setlID: String, fixmedinsCode: String, ruleID: String)] {
        try Row.fetchAll(db, sql: "SELECT setl_id, fixmedins_code, rule_id FROM upload_rejects WHERE rejected_at_ms >= ?",
                         arguments: [sinceMs]).map { ($0[0], $0[1], $0[2]) }
    }
}

extension LedgerTransaction: UploadStore, OutboxStore {}
