import Foundation
import GRDB
@testable import Persistence
import SettlementCore
import SettlementModel
import Testing

/// Ledgers written by an earlier release open with this one, their records intact.
@Suite struct LedgerMigrationTests {
    @Test func transitsOfAnEarlierLedgerSurviveTheMoveToTheTransitLog() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migration-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
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
}
