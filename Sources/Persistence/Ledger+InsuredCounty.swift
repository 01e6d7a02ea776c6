import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// The insured county's records: persons, settlements and reversals, each with its stored answer.
extension LedgerTransaction: SettlementStore {

    // MARK: Insured county

    /// The transaction code and stored answer of a settlement or reversal msgid already decided here.
    public func storedAnswer(msgid: String) throws -> (infno: String, response: [UInt8])? {
        if let answered, !answered.mayHave(msgid) { return nil }
        let settlement = try db.cachedStatement(sql: "SELECT infno, response FROM settlements WHERE msgid = ?")
        if let row = try Row.fetchOne(settlement, arguments: [msgid]) { return (row[0], Array(row[1] as Data)) }
        let reversal = try db.cachedStatement(sql: "SELECT infno, response FROM reversals WHERE msgid = ?")
        if let row = try Row.fetchOne(reversal, arguments: [msgid]) { return (row[0], Array(row[1] as Data)) }
        return nil
    }

    /// The answer of the successful reversal of `omsgid`, if there was one.
    public func successfulReversal(omsgid: String) throws -> [UInt8]? {
        let statement = try db.cachedStatement(sql: "SELECT response FROM reversals WHERE omsgid = ? AND infcode = 0")
        return try Data.fetchOne(statement, arguments: [omsgid]).map { Array($0) }
    }

    // A look-up and an update for every settlement decided here: read and bound straight
    // through SQLite (`first`, `run`), as GRDB's rows and arguments cost more than the statements.
    public func person(_ psnNo: String) throws -> PersonAccount? {
        try first("""
            SELECT insutype, balance_fen, deductible_used_fen, pool_used_fen, filed_offsite FROM persons WHERE psn_no = ?
            """, { $0.bind(psnNo) }) { row in
            PersonAccount(psnNo: psnNo, insutype: row.text(0), balanceFen: row.int64(1), deductibleUsedFen: row.int64(2),
                          poolUsedFen: row.int64(3), filedOffsite: row.bool(4))
        }
    }

    public func updatePerson(_ person: PersonAccount) throws {
        try run("UPDATE persons SET balance_fen = ?, deductible_used_fen = ?, pool_used_fen = ? WHERE psn_no = ?") { values in
            values.bind(person.balanceFen); values.bind(person.deductibleUsedFen); values.bind(person.poolUsedFen)
            values.bind(person.psnNo)
        }
    }

    /// How many settlements got a setl_id here, to continue setl_id numbering after a restart.
    public func settlementCount() throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT count(*) FROM settlements WHERE setl_id IS NOT NULL") ?? 0
    }

    /// Records a settled settlement with its answer. Throws a constraint error if the msgid exists.
    static let settledInsert: StaticString = """
        INSERT INTO settlements (msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
          medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc,
          hifp_pay, hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, response)
        VALUES (?, ?, 'settled', '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    public func insertSettled(request: WireRequest, split: Split, psnNo: String, setlID: String,
                              nowMs: Int64, response: [UInt8]) throws {
        answered?.noted(request.msgid)
        let bill = split.bill
        try run(Self.settledInsert) { values in
            values.bind(request.msgid); values.bind(request.infno); values.bind(setlID); values.bind(psnNo)
            values.bind(request.mdtrtareaAdmvs); values.bind(request.fixmedinsCode)
            values.bind(bill.medfeeSumamt); values.bind(bill.fulamtOwnpayAmt); values.bind(bill.overlmtSelfpay)
            values.bind(bill.preselfpayAmt); values.bind(bill.inscpScpAmt); values.bind(split.actPayDedc)
            values.bind(split.hifpPay); values.bind(split.hifobPay); values.bind(split.acctPay); values.bind(split.psnCashPay)
            values.bind(split.fundPaySumamt); values.bind(split.acctPayInFund); values.bind(split.balanceAfterFen)
            values.bind(nowMs); values.bind(response)
        }
    }

    /// Records a refused settlement with its answer, so a repeat gets the same answer.
    public func insertRefused(request: WireRequest, errCode: String, nowMs: Int64, response: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO settlements (msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
              medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc,
              hifp_pay, hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, response)
            VALUES (?, ?, 'refused', ?, NULL, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, ?)
            """)
        var psnNo = ""
        var medfee: Int64 = 0
        if case .settlement(let input)? = request.input {
            psnNo = input.psnNo
            medfee = input.medfeeSumamt
        }
        answered?.noted(request.msgid)
        try statement.execute(arguments: [request.msgid, request.infno, errCode, psnNo, request.mdtrtareaAdmvs,
                                          request.fixmedinsCode, medfee, nowMs, Data(response)])
    }

    public func settlement(msgid: String) throws -> StoredSettlement? {
        let statement = try db.cachedStatement(sql: """
            SELECT infno, psn_no, setl_id, state, medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt,
              inscp_scp_amt, act_pay_dedc, hifp_pay, hifob_pay, acct_pay, psn_cash_pay, acct_pay_in_fund, balc
            FROM settlements WHERE msgid = ? AND state != 'refused'
            """)
        guard let row = try Row.fetchOne(statement, arguments: [msgid]) else { return nil }
        let bill = Bill(medfeeSumamt: row[4], fulamtOwnpayAmt: row[5], overlmtSelfpay: row[6],
                        preselfpayAmt: row[7], inscpScpAmt: row[8])
        let split = Split(bill: bill, actPayDedc: row[9], hifpPay: row[10], hifobPay: row[11], acctPay: row[12],
                          psnCashPay: row[13], acctPayInFund: row[14], balanceAfterFen: row[15])
        let state: String = row[3]
        return StoredSettlement(msgid: msgid, infno: row[0], psnNo: row[1], setlID: row[2] ?? "",
                                reversed: state == "reversed", split: split)
    }

    /// Records a reversal's answer; on success marks the original settlement reversed.
    public func insertReversal(msgid: String, omsgid: String, infno: String, infcode: Int32, nowMs: Int64,
                               response: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO reversals (msgid, omsgid, infno, infcode, recorded_at_ms, response) VALUES (?, ?, ?, ?, ?, ?)
            """)
        answered?.noted(msgid)
        try statement.execute(arguments: [msgid, omsgid, infno, infcode, nowMs, Data(response)])
        if infcode == 0 {
            let mark = try db.cachedStatement(sql: "UPDATE settlements SET state = 'reversed', reversal_msgid = ? WHERE msgid = ?")
            try mark.execute(arguments: [msgid, omsgid])
        }
    }

    /// Insured county: a settlement row that refuses `omsgid` should it ever arrive (a correction
    /// reached the insured county before the settlement it corrects).
    public func insertTombstone(omsgid: String, infno: String, psnNo: String, mdtrtareaAdmvs: String, fixmedinsCode: String,
                                nowMs: Int64, response: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO settlements (msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
              medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc,
              hifp_pay, hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, response)
            VALUES (?, ?, 'refused', ?, NULL, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, ?)
            """)
        answered?.noted(omsgid)
        try statement.execute(arguments: [omsgid, infno, ErrorCode.cancelledByCorrection.rawValue, psnNo, mdtrtareaAdmvs,
                                          fixmedinsCode, nowMs, Data(response)])
    }

    /// The state of a settlement decided here: settled, refused, reversed; nil if none.
    public func settlementState(msgid: String) throws -> (state: String, setlID: String)? {
        let statement = try db.cachedStatement(sql: "SELECT state, setl_id FROM settlements WHERE msgid = ?")
        return try Row.fetchOne(statement, arguments: [msgid]).map { ($0[0], ($0[1] as String?) ?? "") }
    }
}
