import Foundation
import GRDB
@testable import Persistence
import SettlementCore
import SettlementModel
import Testing

/// Ledgers written by an earlier release open with this one, their records intact.
@Suite struct LedgerMigrationTests {
    @Test func transitsOfAnEarlierLedgerSurviveTheMoveToTheTransitLog() throws {
        let directory = try makeTemporaryDirectory("migration")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        do {
            // The schema as the release before v8 left it, with one transit of each kind that matters.
            let earlier = try DatabaseQueue(path: path)
            try Ledger.migrator.migrate(earlier, upTo: "v7-reject-position")
            try earlier.write { db in
                try db.execute(sql: """
                    INSERT INTO transits (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                      medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state, recorded_at_ms, oinfno, psn_no)
                    VALUES ('M1', '2207', 'relay', '370211', '410102', 'H1', '', 'S1', 10000, 6000, 1000, 3000, 0, '', 'settled', 5, '', ''),
                           ('M2', '2208', 'origin', '370211', '410102', 'H1', 'M1', '', 0, 0, 0, 0, -1, '', 'unknown', 6, '2207', 'P1')
                    """)
            }
        }
        let ledger = try Ledger(path: path)
        let settled = try #require(try ledger.read { try $0.transit(msgid: "M1") })
        #expect(settled.state == "settled" && settled.setlID == "S1" && settled.medfeeSumamt == 10_000 && settled.fundPaySumamt == 6_000)
        // The reversal journaled in flight is still found by the restart's question.
        let inFlight = try ledger.read { try $0.inFlightAtOrigin() }
        #expect(inFlight.map(\.msgid) == ["M2"] && inFlight.first?.omsgid == "M1")
        // A transit moved over is found by the rules: the reversal's outcome replaces its unknown one.
        var answer = WireResponse()
        answer.infcode = 0
        var meta = RequestMeta(omsgid: "M2", infno: "2208", treatment: "370211", insured: "410102", fixmedinsCode: "H1")
        meta.omsgid = "M1"
        meta.isReversal = true
        try ledger.write { tx in try tx.recordTransit(TransitRecord(request: meta, response: answer, role: .origin, nowMs: 7)) }
        #expect(try ledger.read { try $0.transit(msgid: "M2") }?.state == "reversed")
        #expect(try ledger.read { try $0.transit(msgid: "M1") }?.state == "reversed", "the settlement it reversed")
        // Transits are a log in rowid order now, read through the view of each msgid's latest image.
        let check = try DatabaseQueue(path: path)
        let kinds = try check.read { try Row.fetchAll($0, sql: "SELECT name, type FROM sqlite_master WHERE name IN ('transits', 'transit_log')") }
        #expect(Dictionary(uniqueKeysWithValues: kinds.map { ($0[0] as String, $0[1] as String) }) == ["transits": "view", "transit_log": "table"])
        #expect(try check.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM transit_log") } == 4, "two moved, two images appended")
    }

    /// v13 keeps a claim as its setl_id alone: what an older ledger claimed is still refused as
    /// a duplicate, and the audit still finds every stored record's keys, old and new.
    @Test func claimsOfAnEarlierLedgerStillRefuseDuplicates() throws {
        let directory = try makeTemporaryDirectory("migration")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        func record(_ setlID: String) throws -> [UInt8] {
            var record = UploadRecord()
            record.setlID = setlID
            record.fixmedinsCode = "H37021100001"
            return try record.serializedBytes()
        }
        do {
            // A national store as v12 left it: one batch stored, its two records claimed.
            let earlier = try DatabaseQueue(path: path)
            try Ledger.migrator.migrate(earlier, upTo: "v12-upload-store")
            try earlier.write { db in
                try db.execute(sql: """
                    INSERT INTO upload_records (setl_id, msgid, fixmedins_code, mdtrtarea_admvs, stored_at_ms)
                    VALUES ('S1', 'U1', 'H37021100001', '370211', 5), ('S2', 'U1', 'H37021100001', '370211', 5)
                    """)
                try db.execute(sql: "INSERT INTO upload_stored (msgid, records, input) VALUES ('U1', 2, ?)",
                               arguments: [Data(WireCodec.uploadInput(records: [try record("S1"), try record("S2")], catalogVersion: ""))])
            }
        }
        let ledger = try Ledger(path: path)
        try ledger.write { tx in
            #expect(try !tx.claimUploadRecord(setlID: "S1"), "claimed before the migration: a duplicate")
            #expect(try tx.claimUploadRecord(setlID: "S3"))
            #expect(try !tx.claimUploadRecord(setlID: "S3"), "claimed once")
            try tx.storeUploadRecords(msgid: "U2", input: WireCodec.uploadInput(records: [try record("S3")], catalogVersion: ""),
                                      records: 1, nowMs: 9)
        }
        #expect(try ledger.read { try $0.count(table: .uploadClaims) } == 3)
        let keys = try ledger.read { try $0.storedUploadKeys() }
        #expect(keys.map(\.setlID).sorted() == ["S1", "S2", "S3"], "each stored record once")
        #expect(try ledger.read { try $0.storedUploadKeys(sinceMs: 6) }.map(\.setlID) == ["S3"], "only what was stored since")
    }

    /// v14 keeps what a county or city passed up as rejected positions and a digest: a batch an
    /// older ledger passed up still has its bytes for a repeat, and a new one reads back as written.
    @Test func whatAnEarlierLedgerPassedUpIsStillThereForARepeat() throws {
        let directory = try makeTemporaryDirectory("migration")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        let forwarded: [UInt8] = [0x0A, 0x02, 0x0A, 0x00]
        do {
            let earlier = try DatabaseQueue(path: path)
            try Ledger.migrator.migrate(earlier, upTo: "v13-upload-claims")
            try earlier.write { db in
                try db.execute(sql: "INSERT INTO upload_batches (msgid, received, own_rejects, forwarded) VALUES ('U1', 3, x'', ?)",
                               arguments: [Data(forwarded)])
            }
        }
        let ledger = try Ledger(path: path)
        let older = try #require(try ledger.read { try $0.uploadBatch(msgid: "U1") })
        #expect(older.received == 3 && older.passedUp?.bytes == forwarded && older.answer == nil)
        let decision = UploadBatchDecision(received: 70_000, ownRejects: [1, 2],
                                           passedUp: PassedUp(rejectedPositions: [0, 255, 256, 69_999], digest: .max - 1), answer: nil)
        try ledger.write { tx in try tx.saveUploadBatch(msgid: "U2", decision: decision) }
        #expect(try ledger.read { try $0.uploadBatch(msgid: "U2") } == decision)
        let answered = UploadBatchDecision(received: 2, ownRejects: [], passedUp: nil, answer: [7])
        try ledger.write { tx in try tx.saveUploadBatch(msgid: "U3", decision: answered) }
        #expect(try ledger.read { try $0.uploadBatch(msgid: "U3") } == answered)
    }
}

/// Every ledger runs on the SQLite built with the package (`CSQLite`, with the lookaside
/// allocator Debian's build leaves out), not on the system library GRDB also links.
@Suite struct LedgerEngineTests {
    @Test func ledgersRunOnTheSQLiteBuiltHere() throws {
        #expect(Ledger.sqliteVersion == "3.54.1")
        let directory = try makeTemporaryDirectory("engine")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try Ledger(path: "\(directory)/ledger.sqlite")
        let version = try DatabaseQueue(path: ledger.path).read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }
        #expect(version == "3.54.1", "what the ledger's own connections run")
    }
}

/// The hot inserts stay cheap: SQLite builds a temporary index for a CHECK with an IN list of
/// more than two values on every insert, which cost more than the rest of the insert.
@Suite struct LedgerInsertPlanTests {
    @Test(arguments: [LedgerTransaction.transitAppend.description, LedgerTransaction.settledInsert.description])
    func aHotInsertBuildsNoTemporaryIndex(sql: String) throws {
        let directory = try makeTemporaryDirectory("plan")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ledger = try Ledger(path: "\(directory)/ledger.sqlite")
        let parameters = StatementArguments(Array(repeating: DatabaseValue.null, count: sql.filter { $0 == "?" }.count))
        let plan = try DatabaseQueue(path: ledger.path).read { db in
            try Row.fetchAll(db, sql: "EXPLAIN " + sql, arguments: parameters).map { $0[1] as String }   // the opcode column
        }
        #expect(!plan.isEmpty && !plan.contains("OpenEphemeral"), "\(plan)")
    }

    @Test func settlementsOfAnEarlierLedgerSurviveTheirTablesRebuild() throws {
        let directory = try makeTemporaryDirectory("migration")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        do {
            let earlier = try DatabaseQueue(path: path)
            try Ledger.migrator.migrate(earlier, upTo: "v9-transit-log")
            try earlier.write { db in
                try db.execute(sql: """
                    INSERT INTO settlements VALUES ('M1', '2207', 'reversed', '', 'S1', 'P1', '370211', 'H1', 10000, 0, 0, 0, 10000,
                      100, 6000, 0, 1000, 2900, 6100, 0, 5000, 7, 'R1', x'0102')
                    """)
            }
        }
        let ledger = try Ledger(path: path)
        let settlement = try #require(try ledger.read { try $0.settlement(msgid: "M1") })
        #expect(settlement.reversed && settlement.setlID == "S1" && settlement.split.hifpPay == 6_000 && settlement.split.balanceAfterFen == 5_000)
        #expect(try ledger.read { try $0.storedAnswer(msgid: "M1") }?.response == [1, 2])
        // The constraints came along: the setl_id is still unique and the state still checked.
        #expect(throws: (any Error).self) {
            try DatabaseQueue(path: path).write { db in
                try db.execute(sql: "INSERT INTO settlements SELECT 'M2', infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code, medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc, hifp_pay, hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, reversal_msgid, response FROM settlements")
            }
        }
        #expect(throws: (any Error).self) {
            try DatabaseQueue(path: path).write { db in try db.execute(sql: "UPDATE settlements SET state = 'lost'") }
        }
    }
}
