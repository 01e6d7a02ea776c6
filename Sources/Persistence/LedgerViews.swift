import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// Reading a ledger (status, reconciliation, reports, tests): views of what it holds.
extension LedgerTransaction {
    public struct TransitRow: Equatable, Sendable {
        public var msgid: String
        public var infno: String
        public var role: String
        public var state: String
        public var setlID: String
        public var medfeeSumamt: Int64
        public var fundPaySumamt: Int64
        public var acctPay: Int64
    }

    public func transit(msgid: String) throws -> TransitRow? {
        let row = try Row.fetchOne(db, sql: """
            SELECT msgid, infno, role, state, setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay FROM transits WHERE msgid = ?
            """, arguments: [msgid])
        return row.map { TransitRow(msgid: $0[0], infno: $0[1], role: $0[2], state: $0[3], setlID: $0[4],
                                    medfeeSumamt: $0[5], fundPaySumamt: $0[6], acctPay: $0[7]) }
    }

    public func count(table: LedgerTable) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.rawValue)") ?? 0
    }

    /// Every settlement transit (2207, 2304) this tier recorded, with its final state here.
    public func settlementTransits(_ part: MsgidPartition = .whole) throws -> [SettlementView] {
        try Row.fetchAll(db, sql: """
            SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, state, err_code, setl_id,
                   medfee_sumamt, fund_pay_sumamt, acct_pay FROM transits WHERE infno IN ('2207', '2304')\(part.sql)
            """).map { SettlementView(msgid: $0[0], infno: $0[1], role: $0[2], treatment: $0[3], insured: $0[4], state: $0[5],
                                      errCode: $0[6], setlID: $0[7], medfeeSumamt: $0[8], fundPaySumamt: $0[9], acctPay: $0[10],
                                      psnNo: "") }
    }

    /// Reversals (2208, 2305, 2601) whose outcome this tier never learned: their msgids.
    public func unknownReversals() throws -> [String] {
        try String.fetchAll(db, sql: "SELECT msgid FROM transits WHERE infno IN ('2208', '2305', '2601') AND state = 'unknown'")
    }

    /// Every settlement this insured county decided, with its state now.
    public func decidedSettlements(_ part: MsgidPartition = .whole) throws -> [SettlementView] {
        try Row.fetchAll(db, sql: """
            SELECT msgid, infno, mdtrtarea_admvs, state, err_code, setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_no
            FROM settlements WHERE 1\(part.sql)
            """).map { SettlementView(msgid: $0[0], infno: $0[1], role: "insured", treatment: $0[2], insured: "", state: $0[3],
                                      errCode: $0[4], setlID: ($0[5] as String?) ?? "", medfeeSumamt: $0[6], fundPaySumamt: $0[7],
                                      acctPay: $0[8], psnNo: $0[9]) }
    }

    /// Every person's account balance now (insured counties).
    public func balances() throws -> [String: Int64] {
        var balances: [String: Int64] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT psn_no, balance_fen FROM persons") { balances[row[0]] = row[1] }
        return balances
    }

    /// How many settlements with `msgid` this ledger holds (0 or 1: the key is unique).
    public func settlementRows(msgid: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM settlements WHERE msgid = ?", arguments: [msgid]) ?? 0
    }
}

/// One settlement as one ledger holds it: a tier's transit record, or the insured county's
/// decision (then `psnNo` is set and `insured` is empty: the ledger's own node).
/// One of `count` parts of the msgids, by their last two characters: what a reconciliation
/// holds in memory at once when the ledgers are too large to read whole (a simulated day).
public struct MsgidPartition: Sendable, Equatable {
    public let index: Int
    public let count: Int

    public init(index: Int, of count: Int) {
        precondition(count >= 1 && (0..<count).contains(index), "partition \(index) of \(count)")
        self.index = index
        self.count = count
    }

    public static let whole = MsgidPartition(index: 0, of: 1)

    /// The condition, appended to a query's WHERE (nothing for the whole).
    var sql: String {
        count == 1 ? "" : " AND (unicode(substr(msgid, -1)) * 31 + unicode(substr(msgid, -2, 1))) % \(count) = \(index)"
    }
}

public struct SettlementView: Equatable, Sendable {
    public var msgid: String
    public var infno: String
    public var role: String
    public var treatment: String
    public var insured: String
    public var state: String
    public var errCode: String
    public var setlID: String
    public var medfeeSumamt: Int64
    public var fundPaySumamt: Int64
    public var acctPay: Int64
    public var psnNo: String

    public init(msgid: String, infno: String, role: String, treatment: String, insured: String, state: String, errCode: String,
                setlID: String, medfeeSumamt: Int64, fundPaySumamt: Int64, acctPay: Int64, psnNo: String) {
        self.msgid = msgid; self.infno = infno; self.role = role; self.treatment = treatment; self.insured = insured
        self.state = state; self.errCode = errCode; self.setlID = setlID; self.medfeeSumamt = medfeeSumamt
        self.fundPaySumamt = fundPaySumamt; self.acctPay = acctPay; self.psnNo = psnNo
    }
}

public enum LedgerTable: String, Sendable {
    case persons, settlements, reversals, transits
    /// Each setl_id that passed a tier; at the national tier, the records stored.
    case uploadClaims = "upload_claims"
    case uploadRecords = "upload_records", uploadRejects = "upload_rejects", uploadOutboxChunks = "upload_outbox_chunks",
         uploadStored = "upload_stored"
}
