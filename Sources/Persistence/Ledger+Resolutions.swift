import Foundation
import GRDB
import SettlementCore
import SettlementModel

// MARK: Resolutions (origin county)

extension LedgerTransaction {
    public func saveResolution(_ r: NodeMachine.Resolution) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO resolutions (omsgid, oinfno, psn_no, insuplc_admdvs, mdtrtarea_admvs, fixmedins_code, attempts, next_attempt_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(omsgid) DO UPDATE SET attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms
            WHERE resolutions.resolved_at_ms IS NULL
            """)
        try statement.execute(arguments: [r.omsgid, r.oinfno, r.psnNo, r.insured, r.treatment, r.fixmedinsCode,
                                          r.attempts, r.nextAttemptMs])
    }

    public func resolve(omsgid: String, finalAnswer: [UInt8], nowMs: Int64) throws {
        try db.execute(sql: "UPDATE resolutions SET resolved_at_ms = ?, final_answer = ? WHERE omsgid = ?",
                       arguments: [nowMs, Data(finalAnswer), omsgid])
    }

    /// Origin county: hospitals' requests journaled as in flight whose outcome this node never
    /// learned (it stopped, or crashed, before their answers came back).
    public func inFlightAtOrigin() throws -> [RequestMeta] {
        try Row.fetchAll(db, sql: """
            SELECT msgid, infno, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, oinfno, psn_no
            FROM transits WHERE state = 'unknown' AND role = 'origin'
            """).map { row in
            var meta = RequestMeta(omsgid: row[0], infno: row[1], treatment: row[2], insured: row[3], fixmedinsCode: row[4])
            meta.omsgid = row[5]
            meta.oinfno = row[6]
            meta.psnNo = row[7]
            meta.isReversal = TransactionCode(rawValue: meta.infno)?.isReversal ?? false
            return meta
        }
    }

    public func openResolutions() throws -> [NodeMachine.Resolution] {
        try Row.fetchAll(db, sql: """
            SELECT omsgid, oinfno, psn_no, insuplc_admdvs, mdtrtarea_admvs, fixmedins_code, attempts, next_attempt_ms
            FROM resolutions WHERE resolved_at_ms IS NULL
            """).map { NodeMachine.Resolution(omsgid: $0[0], oinfno: $0[1], psnNo: $0[2], insured: $0[3], treatment: $0[4],
                                              fixmedinsCode: $0[5], attempts: $0[6], nextAttemptMs: $0[7]) }
    }

    /// The final answer of a resolved settlement, for the hospital asking again.
    public func finalAnswer(omsgid: String) throws -> [UInt8]? {
        let statement = try db.cachedStatement(sql: "SELECT final_answer FROM resolutions WHERE omsgid = ? AND resolved_at_ms IS NOT NULL")
        return try Data.fetchOne(statement, arguments: [omsgid]).map { Array($0) }
    }

    public func resolvedMsgids() throws -> [String] {
        try String.fetchAll(db, sql: "SELECT omsgid FROM resolutions WHERE resolved_at_ms IS NOT NULL")
    }

    public func resolutionCounts() throws -> (open: Int, resolved: Int) {
        let open = try Int.fetchOne(db, sql: "SELECT count(*) FROM resolutions WHERE resolved_at_ms IS NULL") ?? 0
        let resolved = try Int.fetchOne(db, sql: "SELECT count(*) FROM resolutions WHERE resolved_at_ms IS NOT NULL") ?? 0
        return (open, resolved)
    }
}
