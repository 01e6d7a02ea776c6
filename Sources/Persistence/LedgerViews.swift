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

    /// Every settlement transit (2207, 2304) this tier recorded, with its final state here: the
    /// latest image of each msgid in the log, read in the order it was written (the view
    /// `transits` would sort the whole log by msgid to find them).
    public func settlementTransits() throws -> [SettlementView] {
        var views: [SettlementView] = []
        var place: [String: Int] = [:]
        for view in try all("""
            SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, state, err_code, setl_id,
                   medfee_sumamt, fund_pay_sumamt, acct_pay FROM transit_log WHERE infno IN ('2207', '2304') ORDER BY seq
            """, read: { row in
                SettlementView(msgid: row.text(0), infno: row.text(1), role: row.text(2), treatment: row.text(3),
                               insured: row.text(4), state: row.text(5), errCode: row.text(6), setlID: row.text(7),
                               medfeeSumamt: row.int64(8), fundPaySumamt: row.int64(9), acctPay: row.int64(10), psnNo: "")
            }) {
            if let earlier = place[view.msgid] {
                views[earlier] = view
            } else {
                place[view.msgid] = views.count
                views.append(view)
            }
        }
        return views
    }

    /// Every settlement transit (2207, 2304) this tier recorded, its latest image: where it was
    /// treated and insured, its state, and how long it was held here and beyond (µs), for the
    /// report's time per hop and load per node. `keep` picks the msgids whose time is wanted
    /// (a sample, on a big network); the others come back with `heldUs` nil.
    public func settlementTimings(keep: (String) -> Bool) throws -> [SettlementTiming] {
        var timings: [SettlementTiming] = []
        var place: [String: Int] = [:]
        for timing in try all("""
            SELECT msgid, mdtrtarea_admvs, insuplc_admdvs, state, err_code, held_us FROM transit_log
            WHERE infno IN ('2207', '2304') ORDER BY seq
            """, read: { row in
                SettlementTiming(msgid: row.text(0), treatment: row.text(1), insured: row.text(2), state: row.text(3),
                                 errCode: row.text(4), heldUs: row.int64(5))
            }) {
            var timing = timing
            if !keep(timing.msgid) { timing.heldUs = nil }
            if let earlier = place[timing.msgid] {
                timings[earlier] = timing
            } else {
                place[timing.msgid] = timings.count
                timings.append(timing)
            }
        }
        return timings
    }

    /// Reversals (2208, 2305, 2601) whose outcome this tier never learned: their msgids. The
    /// latest image of each, from the log in the order it was written, as `settlementTransits`.
    public func unknownReversals() throws -> [String] {
        var latest: [String: Bool] = [:]
        for (msgid, unknown) in try all("""
            SELECT msgid, state = 'unknown' FROM transit_log WHERE infno IN ('2208', '2305', '2601') ORDER BY seq
            """, read: { ($0.text(0), $0.bool(1)) }) {
            latest[msgid] = unknown
        }
        return latest.filter(\.value).keys.sorted()
    }

    /// Every settlement this insured county decided, with its state now.
    public func decidedSettlements() throws -> [SettlementView] {
        try all("""
            SELECT msgid, infno, mdtrtarea_admvs, state, err_code, setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_no
            FROM settlements
            """) { row in
            SettlementView(msgid: row.text(0), infno: row.text(1), role: "insured", treatment: row.text(2), insured: "",
                           state: row.text(3), errCode: row.text(4), setlID: row.text(5), medfeeSumamt: row.int64(6),
                           fundPaySumamt: row.int64(7), acctPay: row.int64(8), psnNo: row.text(9))
        }
    }

    /// Every person's account balance now (insured counties).
    public func balances() throws -> [String: Int64] {
        var balances: [String: Int64] = [:]
        for (psnNo, balance) in try all("SELECT psn_no, balance_fen FROM persons", read: { ($0.text(0), $0.int64(1)) }) {
            balances[psnNo] = balance
        }
        return balances
    }

    /// How many settlements with `msgid` this ledger holds (0 or 1: the key is unique).
    public func settlementRows(msgid: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM settlements WHERE msgid = ?", arguments: [msgid]) ?? 0
    }
}

/// One settlement as one ledger holds it: a tier's transit record, or the insured county's
/// decision (then `psnNo` is set and `insured` is empty: the ledger's own node).
/// What a tier knows of a settlement's passage: for load, errors and time per hop.
public struct SettlementTiming: Equatable, Sendable {
    public var msgid: String
    public var treatment: String
    public var insured: String
    public var state: String
    public var errCode: String
    /// µs from the request's arrival here to its answer's record; nil when not asked for.
    public var heldUs: Int64?
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
