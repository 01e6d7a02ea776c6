import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// What each tier saw of each settlement, reversal and correction (every tier keeps these).
extension LedgerTransaction {
    static let transitUpsert = """
        INSERT INTO transits (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
          medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state, recorded_at_ms, oinfno, psn_no)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(msgid) DO UPDATE SET setl_id = excluded.setl_id, medfee_sumamt = excluded.medfee_sumamt,
          fund_pay_sumamt = excluded.fund_pay_sumamt, acct_pay = excluded.acct_pay, psn_cash_pay = excluded.psn_cash_pay,
          infcode = excluded.infcode, err_code = excluded.err_code, state = excluded.state,
          recorded_at_ms = excluded.recorded_at_ms
        """
    // Built once: recordTransit runs for every message a node passes on.
    static let transitUpsertIfUnknown = transitUpsert + " WHERE transits.state = 'unknown'"
    static let transitOverwrite = transitUpsert + " WHERE true"
    /// A correction's outcome, written on the settlement it concerns. A tier with no record of
    /// that settlement (a relay restarted while it was in flight, or the insured county of a
    /// settlement that never arrived) records the final state with SN-E2006: its amounts were
    /// never seen here. A tier that knew it only as unknown takes the state (and SN-E2006 if it
    /// had only journaled it; a timeout keeps its own code); one that saw it settled keeps its
    /// amounts and becomes reversed.
    static func correctionOutcome(reversed: Bool) -> String {
        """
        INSERT INTO transits (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
          medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state, recorded_at_ms, oinfno, psn_no)
        VALUES (?, ?, ?, ?, ?, ?, '', ?, 0, 0, 0, 0, -1, ?, ?, ?, '', '')
        ON CONFLICT(msgid) DO UPDATE SET state = excluded.state,
          err_code = CASE WHEN transits.state = 'unknown' AND transits.err_code = '' THEN excluded.err_code ELSE transits.err_code END
        WHERE transits.state IN (\(reversed ? "'settled', 'unknown'" : "'unknown'"))
        """
    }
    static let reversalsSettledByCorrection = """
        UPDATE transits SET state = ?, err_code = ? WHERE omsgid = ? AND state = 'unknown' AND infno IN ('2208', '2305')
        """
    static let reversalAfterCorrection = """
        UPDATE transits SET err_code = ?,
          state = (SELECT CASE WHEN s.state = 'reversed' THEN 'reversed' ELSE 'refused' END FROM transits s WHERE s.msgid = ?)
        WHERE msgid = ? AND state = 'unknown'
          AND EXISTS (SELECT 1 FROM transits c WHERE c.msgid = ? AND c.infno = '2601' AND c.state = 'reversed')
          AND EXISTS (SELECT 1 FROM transits s WHERE s.msgid = ? AND s.state IN ('reversed', 'refused'))
        """
    static let correctionReversed = correctionOutcome(reversed: true)
    static let correctionNotInEffect = correctionOutcome(reversed: false)

    /// Records what this tier saw of a settlement or reversal. A later, definite answer for
    /// the same msgid replaces an earlier indefinite ('unknown') one; nothing else is replaced,
    /// except by `resolution`: the outcome a correction (2601) established is final, even over
    /// an answer that arrived here earlier for a copy of the request the network since reversed.
    public func recordTransit(_ record: TransitRecord, resolution: Bool = false) throws {
        let statement = try db.cachedStatement(sql: resolution ? Self.transitOverwrite : Self.transitUpsertIfUnknown)
        try StatementBinder.execute(statement, in: db) { values in
            values.bind(record.msgid); values.bind(record.infno); values.bind(record.role.rawValue)
            values.bind(record.mdtrtareaAdmvs); values.bind(record.insuplcAdmdvs); values.bind(record.fixmedinsCode)
            values.bind(record.omsgid); values.bind(record.setlID); values.bind(record.medfeeSumamt)
            values.bind(record.fundPaySumamt); values.bind(record.acctPay); values.bind(record.psnCashPay)
            values.bind(record.infcode); values.bind(record.errCode); values.bind(record.state.rawValue)
            values.bind(record.recordedAtMs); values.bind(record.oinfno); values.bind(record.psnNo)
        }
        if resolution {
            // The settlement's final state is known here now: so is that of every reversal or
            // correction of it whose own answer this node never got.
            let settle = try db.cachedStatement(sql: """
                UPDATE transits SET state = ?, err_code = ? WHERE omsgid = ? AND state = 'unknown' AND infno IN ('2208', '2305', '2601')
                """)
            try settle.execute(arguments: [record.state == .reversed ? "reversed" : "refused", record.errCode, record.msgid])
        }
        if record.state == .unknown && TransactionCode(rawValue: record.infno)?.isReversal == true {
            // A reversal this tier gave up on after a correction of its settlement already
            // passed here: the correction's outcome is its outcome too.
            let late = try db.cachedStatement(sql: Self.reversalAfterCorrection)
            try late.execute(arguments: [ErrorCode.cancelledByCorrection.rawValue, record.omsgid, record.msgid,
                                         NodeMachine.Resolution.correctionMsgid(of: record.omsgid), record.omsgid])
        }
        if record.state == .reversed && !record.omsgid.isEmpty {
            if record.infno == TransactionCode.correction.rawValue {
                // A correction settles the doubt: reversed if it had settled, refused if it never took effect.
                let reversed = record.correctionOutcome == "reversed"
                let mark = try db.cachedStatement(sql: reversed ? Self.correctionReversed : Self.correctionNotInEffect)
                try mark.execute(arguments: [
                    record.omsgid, record.oinfno, record.role.rawValue, record.mdtrtareaAdmvs, record.insuplcAdmdvs,
                    record.fixmedinsCode, record.setlID, ErrorCode.cancelledByCorrection.rawValue,
                    reversed ? "reversed" : "refused", record.recordedAtMs,
                ])
                // So does every reversal of it whose answer this tier never got, as at the origin:
                // nothing else may pass here to settle them (a hospital asking again can be
                // refused on the way by a tier that is down).
                let reversals = try db.cachedStatement(sql: Self.reversalsSettledByCorrection)
                try reversals.execute(arguments: [reversed ? "reversed" : "refused", ErrorCode.cancelledByCorrection.rawValue,
                                                  record.omsgid])
            } else {
                let mark = try db.cachedStatement(sql: "UPDATE transits SET state = 'reversed' WHERE msgid = ? AND state = 'settled'")
                try mark.execute(arguments: [record.omsgid])
            }
        }
    }
}
