import Foundation
import GRDB
@testable import Persistence
import Testing

/// Ledgers written by an earlier release open with this one, their records intact.
@Suite struct LedgerMigrationTests {
    @Test func transitsOfAnEarlierLedgerSurviveTheMoveToATableWithoutRowid() throws {
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
        // And the table is keyed by msgid alone now.
        let check = try DatabaseQueue(path: path)
        let definition = try check.read { try String.fetchOne($0, sql: "SELECT sql FROM sqlite_master WHERE name = 'transits'") }
        #expect(definition?.contains("WITHOUT ROWID") == true, "\(definition ?? "no table")")
    }
}
