import Foundation
import GRDB
import SettlementCore
import SettlementModel

// MARK: Uploads

extension LedgerTransaction {
    public func uploadBatch(msgid: String) throws -> UploadBatchDecision? {
        let statement = try db.cachedStatement(sql: "SELECT received, own_rejects, forwarded, answer FROM upload_batches WHERE msgid = ?")
        guard let row = try Row.fetchOne(statement, arguments: [msgid]) else { return nil }
        return UploadBatchDecision(received: row[0], ownRejects: Array(row[1] as Data),
                                   forwarded: (row[2] as Data?).map { Array($0) }, answer: (row[3] as Data?).map { Array($0) })
    }

    public func saveUploadBatch(msgid: String, decision: UploadBatchDecision) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO upload_batches (msgid, received, own_rejects, forwarded, answer) VALUES (?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [msgid, decision.received, Data(decision.ownRejects),
                                          decision.forwarded.map { Data($0) }, decision.answer.map { Data($0) }])
    }

    /// Claims `setlID` for this tier: false when a record with it already passed here (a duplicate).
    public func claimUploadRecord(setlID: String, msgid: String, fixmedinsCode: String, mdtrtareaAdmvs: String,
                                  record: [UInt8]?, nowMs: Int64) throws -> Bool {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO upload_records (setl_id, msgid, fixmedins_code, mdtrtarea_admvs, record, stored_at_ms)
            VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(setl_id) DO NOTHING
            """)
        try StatementBinder.execute(statement, in: db) { values in
            values.bind(setlID); values.bind(msgid); values.bind(fixmedinsCode); values.bind(mdtrtareaAdmvs)
            values.bind(record); values.bind(nowMs)
        }
        return db.changesCount == 1
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
        let statement = try db.cachedStatement(sql: """
            INSERT INTO upload_counts (name, count) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET count = count + excluded.count
            """)
        try statement.execute(arguments: [name, amount])
    }

    public func uploadCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT name, count FROM upload_counts") { counts[row[0]] = row[1] }
        return counts
    }

    public func enqueueForNational(setlID: String, record: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO upload_outbox (setl_id, record) VALUES (?, ?)")
        try StatementBinder.execute(statement, in: db) { values in values.bind(setlID); values.bind(record) }
    }

    /// Assigns up to `limit` unassigned outbox records to a new batch `msgid`; returns how many.
    public func assignOutboxBatch(msgid: String, limit: Int) throws -> Int {
        try db.execute(sql: """
            UPDATE upload_outbox SET batch_msgid = ? WHERE seq IN
              (SELECT seq FROM upload_outbox WHERE batch_msgid IS NULL ORDER BY seq LIMIT ?)
            """, arguments: [msgid, limit])
        return db.changesCount
    }

    /// Batches assigned but not yet acknowledged by the national tier, oldest first.
    public func outboxBatchIDs() throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT batch_msgid FROM upload_outbox WHERE batch_msgid IS NOT NULL GROUP BY batch_msgid ORDER BY min(seq)
            """)
    }

    public func outboxRecords(batch msgid: String) throws -> [[UInt8]] {
        let statement = try db.cachedStatement(sql: "SELECT record FROM upload_outbox WHERE batch_msgid = ? ORDER BY seq")
        return try Data.fetchAll(statement, arguments: [msgid]).map { Array($0) }
    }

    public func acknowledgeOutboxBatch(msgid: String) throws {
        try db.execute(sql: "DELETE FROM upload_outbox WHERE batch_msgid = ?", arguments: [msgid])
    }

    public func outboxPending() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM upload_outbox") ?? 0
    }

    public func maxOutboxSeq() throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'upload_outbox'") ?? 0
    }

    /// Stored records (provincial and national tiers): setl_id, institution, place of treatment.
    public func storedUploadKeys(sinceMs: Int64 = 0) throws -> [(setlID: String, fixmedinsCode: String)] {
        try Row.fetchAll(db, sql: "SELECT setl_id, fixmedins_code FROM upload_records WHERE stored_at_ms >= ?",
                         arguments: [sinceMs]).map { ($0[0], $0[1]) }
    }

    public func uploadRejectKeys(sinceMs: Int64 = 0) throws -> [(setlID: String, fixmedinsCode: String, ruleID: String)] {
        try Row.fetchAll(db, sql: "SELECT setl_id, fixmedins_code, rule_id FROM upload_rejects WHERE rejected_at_ms >= ?",
                         arguments: [sinceMs]).map { ($0[0], $0[1], $0[2]) }
    }
}

extension LedgerTransaction: UploadStore, OutboxStore {}
