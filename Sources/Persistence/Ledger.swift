import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// An error of the ledger database, naming the file.
public struct LedgerError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public var description: String { "ledger \(path): \(message)" }
}

/// One node's durable ledger: a SQLite database in WAL mode, written by one thread.
///
/// Every write goes through `write(_:)`, one transaction with one sync at commit: the node
/// loop gathers all the work of one poll round into it (group commit), and sends the answers
/// only after it returns, so every answer that leaves is already durable.
public final class Ledger {
    private let queue: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.label = "ledger"
        config.prepareDatabase { db in
            // WAL: readers (cluster status, reconcile) never block the writer.
            // synchronous FULL: each commit is synced, so an answer that left is never lost.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try Self.migrator.migrate(queue)
        } catch {
            throw LedgerError(path: path, message: "cannot open: \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                -- Insured persons of this county (county nodes only). Personal data: never logged.
                CREATE TABLE persons (
                    psn_no TEXT PRIMARY KEY NOT NULL,
                    psn_name TEXT NOT NULL,
                    insutype TEXT NOT NULL,
                    balance_fen INTEGER NOT NULL,
                    deductible_used_fen INTEGER NOT NULL,
                    pool_used_fen INTEGER NOT NULL,
                    filed_offsite INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- The authoritative record of every settlement decided here (insured county).
                -- msgid is the idempotency key: the database refuses a second row.
                CREATE TABLE settlements (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    infno TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('settled', 'refused', 'reversed')),
                    err_code TEXT NOT NULL,
                    setl_id TEXT UNIQUE,
                    psn_no TEXT NOT NULL,
                    mdtrtarea_admvs TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    medfee_sumamt INTEGER NOT NULL,
                    fulamt_ownpay_amt INTEGER NOT NULL,
                    overlmt_selfpay INTEGER NOT NULL,
                    preselfpay_amt INTEGER NOT NULL,
                    inscp_scp_amt INTEGER NOT NULL,
                    act_pay_dedc INTEGER NOT NULL,
                    hifp_pay INTEGER NOT NULL,
                    hifob_pay INTEGER NOT NULL,
                    acct_pay INTEGER NOT NULL,
                    psn_cash_pay INTEGER NOT NULL,
                    fund_pay_sumamt INTEGER NOT NULL,
                    acct_pay_in_fund INTEGER NOT NULL,
                    balc INTEGER NOT NULL,
                    settled_at_ms INTEGER NOT NULL,
                    reversal_msgid TEXT,
                    response BLOB NOT NULL
                );
                -- Reversals decided here; one successful reversal per original settlement.
                -- infcode: 0 reversed, -1 refused, 1 a repeat answered with the earlier success.
                CREATE TABLE reversals (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    omsgid TEXT NOT NULL,
                    infno TEXT NOT NULL,
                    infcode INTEGER NOT NULL,
                    recorded_at_ms INTEGER NOT NULL,
                    response BLOB NOT NULL
                );
                CREATE UNIQUE INDEX reversals_one_success ON reversals(omsgid) WHERE infcode = 0;
                -- What every tier on a route records as the answer passes: reconciliation and clearing.
                CREATE TABLE transits (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    infno TEXT NOT NULL,
                    role TEXT NOT NULL,
                    mdtrtarea_admvs TEXT NOT NULL,
                    insuplc_admdvs TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    omsgid TEXT NOT NULL,
                    setl_id TEXT NOT NULL,
                    medfee_sumamt INTEGER NOT NULL,
                    fund_pay_sumamt INTEGER NOT NULL,
                    acct_pay INTEGER NOT NULL,
                    psn_cash_pay INTEGER NOT NULL,
                    infcode INTEGER NOT NULL,
                    err_code TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('settled', 'refused', 'reversed', 'unknown')),
                    recorded_at_ms INTEGER NOT NULL
                );
                CREATE INDEX transits_omsgid ON transits(omsgid) WHERE omsgid != '';
                """)
        }
        migrator.registerMigration("v3-resolutions") { db in
            try db.execute(sql: """
                -- Origin county: settlements whose outcome is unknown, resolved by correction reversal (2601).
                CREATE TABLE resolutions (
                    omsgid TEXT PRIMARY KEY NOT NULL,
                    oinfno TEXT NOT NULL,
                    psn_no TEXT NOT NULL,
                    insuplc_admdvs TEXT NOT NULL,
                    mdtrtarea_admvs TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt_ms INTEGER NOT NULL,
                    resolved_at_ms INTEGER,
                    final_answer BLOB          -- what the hospital gets when it asks again
                );
                """)
        }
        migrator.registerMigration("v4-tickets") { db in
            try db.execute(sql: """
                -- Tickets this node opened or is responsible for.
                CREATE TABLE tickets (
                    ticket_id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL,
                    code TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    responsible TEXT NOT NULL,
                    opened_by TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'closed')),
                    reason TEXT NOT NULL,
                    occurrences INTEGER NOT NULL,
                    opened_at_ms INTEGER NOT NULL,
                    acknowledged_at_ms INTEGER,
                    closed_at_ms INTEGER
                );
                CREATE INDEX tickets_open ON tickets(kind, subject, responsible) WHERE state != 'closed';
                -- Ticket events waiting to reach the responsible node or the national registry.
                CREATE TABLE ticket_outbox (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    destination TEXT NOT NULL,
                    body BLOB NOT NULL
                );
                -- National tier: the registry, every state change with its time.
                CREATE TABLE ticket_events (
                    ticket_id TEXT NOT NULL,
                    event TEXT NOT NULL,
                    node TEXT NOT NULL,
                    at_ms INTEGER NOT NULL,
                    PRIMARY KEY (ticket_id, event)
                );
                """)
        }
        migrator.registerMigration("v2-uploads") { db in
            try db.execute(sql: """
                -- Every setl_id that passed this tier's checks: the store duplicates are caught in.
                -- At the provincial and national tiers it is also the concentration store (record).
                CREATE TABLE upload_records (
                    setl_id TEXT PRIMARY KEY NOT NULL,
                    msgid TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    mdtrtarea_admvs TEXT NOT NULL,
                    record BLOB,
                    stored_at_ms INTEGER NOT NULL
                ) WITHOUT ROWID;
                -- Records this tier refused, for operators and the reports.
                CREATE TABLE upload_rejects (
                    msgid TEXT NOT NULL,
                    batch_index INTEGER NOT NULL,
                    setl_id TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    rule_id TEXT NOT NULL,
                    field TEXT NOT NULL,
                    rejected_at_ms INTEGER NOT NULL,
                    PRIMARY KEY (msgid, batch_index)
                );
                -- This tier's decision per batch msgid: a repeated batch is never counted twice.
                CREATE TABLE upload_batches (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    received INTEGER NOT NULL,
                    own_rejects BLOB NOT NULL,      -- serialized UploadOutput with this tier's rejects
                    forwarded BLOB,                 -- serialized UploadInput passed up (county, city)
                    answer BLOB                     -- serialized Response (provincial, national)
                );
                -- received = accepted + sum of rejected by rule, exactly, per tier.
                CREATE TABLE upload_counts (
                    name TEXT PRIMARY KEY NOT NULL,  -- 'received', 'accepted', or a rule id
                    count INTEGER NOT NULL
                );
                -- Provincial tier: accepted records waiting to reach the national store.
                CREATE TABLE upload_outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    setl_id TEXT NOT NULL,
                    record BLOB NOT NULL,
                    batch_msgid TEXT
                );
                CREATE INDEX upload_outbox_batch ON upload_outbox(batch_msgid);
                """)
        }
        migrator.registerMigration("v5-governance") { db in
            try db.execute(sql: """
                -- A reject is corrected when its institution re-uploads a record naming it
                -- (corrects_setl_id) and that record passes here.
                ALTER TABLE upload_rejects ADD COLUMN corrected_at_ms INTEGER;
                CREATE INDEX upload_rejects_uncorrected ON upload_rejects(fixmedins_code, setl_id)
                    WHERE corrected_at_ms IS NULL;
                -- Responsible county: the records behind each upload_reject ticket, for the
                -- institution asking what to correct.
                CREATE TABLE ticket_records (
                    ticket_id TEXT NOT NULL,
                    setl_id TEXT NOT NULL,
                    PRIMARY KEY (ticket_id, setl_id)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v6-origin-journal") { db in
            try db.execute(sql: """
                -- What a reversal or correction concerns, and (origin county only) the person: enough
                -- to resolve a request journaled as in flight when the node crashed.
                ALTER TABLE transits ADD COLUMN oinfno TEXT NOT NULL DEFAULT '';
                ALTER TABLE transits ADD COLUMN psn_no TEXT NOT NULL DEFAULT '';
                -- Few rows are ever unknown at once: the restart's question stays cheap.
                CREATE INDEX transits_unknown ON transits(role) WHERE state = 'unknown';
                """)
        }
        migrator.registerMigration("v7-reject-position") { db in
            try db.execute(sql: """
                -- A reject is keyed by the record's place in the batch as this tier received it. The
                -- batch_index (its place in the hospital's own batch) repeats within a province's
                -- batch to the national store, which mixes many counties' batches: keyed by it, a
                -- second reject with the same index was dropped, and its ticket could never close.
                CREATE TABLE upload_rejects_v7 (
                    msgid TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    batch_index INTEGER NOT NULL,
                    setl_id TEXT NOT NULL,
                    fixmedins_code TEXT NOT NULL,
                    rule_id TEXT NOT NULL,
                    field TEXT NOT NULL,
                    rejected_at_ms INTEGER NOT NULL,
                    corrected_at_ms INTEGER,
                    PRIMARY KEY (msgid, position)
                );
                INSERT INTO upload_rejects_v7 (msgid, position, batch_index, setl_id, fixmedins_code, rule_id, field,
                                               rejected_at_ms, corrected_at_ms)
                    SELECT msgid, batch_index, batch_index, setl_id, fixmedins_code, rule_id, field, rejected_at_ms, corrected_at_ms
                    FROM upload_rejects;
                DROP TABLE upload_rejects;
                ALTER TABLE upload_rejects_v7 RENAME TO upload_rejects;
                CREATE INDEX upload_rejects_uncorrected ON upload_rejects(fixmedins_code, setl_id)
                    WHERE corrected_at_ms IS NULL;
                """)
        }
        return migrator
    }

    /// Runs `body` in one write transaction: committed (and synced) when it returns, rolled
    /// back entirely when it throws.
    public func write<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.write { db in try body(LedgerTransaction(db: db)) }
    }

    /// Runs `body` with a consistent read view.
    public func read<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.read { db in try body(LedgerTransaction(db: db)) }
    }

    /// Creates the county's synthetic insured population the first time the ledger opens.
    public func seedPopulation(_ population: SyntheticPopulation) throws {
        try queue.write { db in
            let existing = try Int.fetchOne(db, sql: "SELECT count(*) FROM persons") ?? 0
            guard existing == 0 else { return }
            let statement = try db.makeStatement(sql: """
                INSERT INTO persons (psn_no, psn_name, insutype, balance_fen, deductible_used_fen, pool_used_fen, filed_offsite)
                VALUES (?, ?, ?, ?, 0, 0, ?)
                """)
            for index in 0..<population.size {
                let person = population.person(index)
                try statement.execute(arguments: [person.psnNo, person.name, person.insutype,
                                                  person.initialBalanceFen, person.filedOffsite])
            }
        }
    }
}

/// The operations of one ledger transaction. Statements are prepared once and cached.
public struct LedgerTransaction {
    let db: Database

    // MARK: Insured county

    /// The transaction code and stored answer of a settlement or reversal msgid already decided here.
    public func storedAnswer(msgid: String) throws -> (infno: String, response: [UInt8])? {
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

    public func person(_ psnNo: String) throws -> PersonAccount? {
        let statement = try db.cachedStatement(sql: """
            SELECT insutype, balance_fen, deductible_used_fen, pool_used_fen, filed_offsite FROM persons WHERE psn_no = ?
            """)
        guard let row = try Row.fetchOne(statement, arguments: [psnNo]) else { return nil }
        return PersonAccount(psnNo: psnNo, insutype: row[0], balanceFen: row[1], deductibleUsedFen: row[2],
                             poolUsedFen: row[3], filedOffsite: row[4])
    }

    public func updatePerson(_ person: PersonAccount) throws {
        let statement = try db.cachedStatement(sql: """
            UPDATE persons SET balance_fen = ?, deductible_used_fen = ?, pool_used_fen = ? WHERE psn_no = ?
            """)
        try statement.execute(arguments: [person.balanceFen, person.deductibleUsedFen, person.poolUsedFen, person.psnNo])
    }

    /// How many settlements got a setl_id here, to continue setl_id numbering after a restart.
    public func settlementCount() throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT count(*) FROM settlements WHERE setl_id IS NOT NULL") ?? 0
    }

    /// Records a settled settlement with its answer. Throws a constraint error if the msgid exists.
    public func insertSettled(request: WireRequest, split: Split, psnNo: String, setlID: String,
                              nowMs: Int64, response: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO settlements (msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
              medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc,
              hifp_pay, hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, response)
            VALUES (?, ?, 'settled', '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let bill = split.bill
        let values: [(any DatabaseValueConvertible)?] = [
            request.msgid, request.infno, setlID, psnNo, request.mdtrtareaAdmvs, request.fixmedinsCode,
            bill.medfeeSumamt, bill.fulamtOwnpayAmt, bill.overlmtSelfpay, bill.preselfpayAmt, bill.inscpScpAmt,
            split.actPayDedc, split.hifpPay, split.hifobPay, split.acctPay, split.psnCashPay, split.fundPaySumamt,
            split.acctPayInFund, split.balanceAfterFen, nowMs, Data(response),
        ]
        try statement.execute(arguments: StatementArguments(values))
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
        try statement.execute(arguments: [msgid, omsgid, infno, infcode, nowMs, Data(response)])
        if infcode == 0 {
            let mark = try db.cachedStatement(sql: "UPDATE settlements SET state = 'reversed', reversal_msgid = ? WHERE msgid = ?")
            try mark.execute(arguments: [msgid, omsgid])
        }
    }

    // MARK: Every tier

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
        let values: [(any DatabaseValueConvertible)?] = [
            record.msgid, record.infno, record.role.rawValue, record.mdtrtareaAdmvs, record.insuplcAdmdvs,
            record.fixmedinsCode, record.omsgid, record.setlID, record.medfeeSumamt, record.fundPaySumamt,
            record.acctPay, record.psnCashPay, record.infcode, record.errCode, record.state.rawValue, record.recordedAtMs,
            record.oinfno, record.psnNo,
        ]
        try statement.execute(arguments: StatementArguments(values))
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

    // MARK: Reading (status, tests, reconciliation)

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
    public func settlementTransits() throws -> [SettlementView] {
        try Row.fetchAll(db, sql: """
            SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, state, err_code, setl_id,
                   medfee_sumamt, fund_pay_sumamt, acct_pay FROM transits WHERE infno IN ('2207', '2304')
            """).map { SettlementView(msgid: $0[0], infno: $0[1], role: $0[2], treatment: $0[3], insured: $0[4], state: $0[5],
                                      errCode: $0[6], setlID: $0[7], medfeeSumamt: $0[8], fundPaySumamt: $0[9], acctPay: $0[10],
                                      psnNo: "") }
    }

    /// Reversals (2208, 2305, 2601) whose outcome this tier never learned: their msgids.
    public func unknownReversals() throws -> [String] {
        try String.fetchAll(db, sql: "SELECT msgid FROM transits WHERE infno IN ('2208', '2305', '2601') AND state = 'unknown'")
    }

    /// Every settlement this insured county decided, with its state now.
    public func decidedSettlements() throws -> [SettlementView] {
        try Row.fetchAll(db, sql: """
            SELECT msgid, infno, mdtrtarea_admvs, state, err_code, setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_no
            FROM settlements
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
    case uploadRecords = "upload_records", uploadRejects = "upload_rejects", uploadOutbox = "upload_outbox"
}

// MARK: Uploads

/// A tier's stored decision on one upload batch.
public struct UploadBatchDecision: Sendable {
    public var received: Int
    public var ownRejects: [UInt8]
    public var forwarded: [UInt8]?
    public var answer: [UInt8]?

    public init(received: Int, ownRejects: [UInt8], forwarded: [UInt8]?, answer: [UInt8]?) {
        self.received = received
        self.ownRejects = ownRejects
        self.forwarded = forwarded
        self.answer = answer
    }
}

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
        try statement.execute(arguments: [setlID, msgid, fixmedinsCode, mdtrtareaAdmvs, record.map { Data($0) }, nowMs])
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
        try statement.execute(arguments: [setlID, Data(record)])
    }

    /// Assigns up to `limit` unassigned outbox records to a new batch `msgid`; returns how many.
    public func assignOutboxBatch(msgid: String, limit: Int) throws -> Int {
        try db.execute(sql: """
            UPDATE upload_outbox SET batch_msgid = ? WHERE seq IN
              (SELECT seq FROM upload_outbox WHERE batch_msgid IS NULL ORDER BY seq LIMIT ?)
            """, arguments: [msgid, limit])
        return db.changesCount
    }

    /// Batches assigned but not yet acknowledged by the national tier, with their records.
    public func outboxBatches() throws -> [(msgid: String, records: [[UInt8]])] {
        var batches: [String: [[UInt8]]] = [:]
        var order: [String] = []
        for row in try Row.fetchAll(db, sql: "SELECT batch_msgid, record FROM upload_outbox WHERE batch_msgid IS NOT NULL ORDER BY seq") {
            let msgid: String = row[0]
            if batches[msgid] == nil { order.append(msgid) }
            batches[msgid, default: []].append(Array(row[1] as Data))
        }
        return order.map { ($0, batches[$0]!) }
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
        try statement.execute(arguments: [omsgid, infno, ErrorCode.cancelledByCorrection.rawValue, psnNo, mdtrtareaAdmvs,
                                          fixmedinsCode, nowMs, Data(response)])
    }

    /// The state of a settlement decided here: settled, refused, reversed; nil if none.
    public func settlementState(msgid: String) throws -> (state: String, setlID: String)? {
        let statement = try db.cachedStatement(sql: "SELECT state, setl_id FROM settlements WHERE msgid = ?")
        return try Row.fetchOne(statement, arguments: [msgid]).map { ($0[0], ($0[1] as String?) ?? "") }
    }
}

// MARK: Tickets

/// One ticket as a node (or the national registry) holds it.
public struct TicketRow: Codable, Equatable, Sendable {
    public var ticketID: String
    public var kind: String
    public var code: String
    public var subject: String
    public var responsible: String
    public var openedBy: String
    public var state: String
    public var reason: String
    public var occurrences: Int
    public var openedAtMs: Int64
    public var acknowledgedAtMs: Int64?
    public var closedAtMs: Int64?

    enum CodingKeys: String, CodingKey {
        case kind, code, subject, responsible, state, reason, occurrences
        case ticketID = "ticket_id"
        case openedBy = "opened_by"
        case openedAtMs = "opened_at_ms"
        case acknowledgedAtMs = "acknowledged_at_ms"
        case closedAtMs = "closed_at_ms"
    }

    public init(ticketID: String, kind: String, code: String, subject: String, responsible: String, openedBy: String,
                state: String, reason: String, occurrences: Int, openedAtMs: Int64, acknowledgedAtMs: Int64?, closedAtMs: Int64?) {
        self.ticketID = ticketID; self.kind = kind; self.code = code; self.subject = subject
        self.responsible = responsible; self.openedBy = openedBy; self.state = state; self.reason = reason
        self.occurrences = occurrences; self.openedAtMs = openedAtMs
        self.acknowledgedAtMs = acknowledgedAtMs; self.closedAtMs = closedAtMs
    }

    init(row: Row) {
        ticketID = row["ticket_id"]; kind = row["kind"]; code = row["code"]; subject = row["subject"]
        responsible = row["responsible"]; openedBy = row["opened_by"]; state = row["state"]; reason = row["reason"]
        occurrences = row["occurrences"]; openedAtMs = row["opened_at_ms"]
        acknowledgedAtMs = row["acknowledged_at_ms"]; closedAtMs = row["closed_at_ms"]
    }
}

extension LedgerTransaction {
    /// The ticket `openedBy` opened for this cause and has not closed, if any. (The national
    /// ledger also holds every other node's tickets, as the registry.)
    public func openTicket(kind: String, subject: String, responsible: String, openedBy: String) throws -> TicketRow? {
        let statement = try db.cachedStatement(sql: """
            SELECT * FROM tickets WHERE kind = ? AND subject = ? AND responsible = ? AND opened_by = ? AND state != 'closed'
            """)
        return try Row.fetchOne(statement, arguments: [kind, subject, responsible, openedBy]).map(TicketRow.init)
    }

    public func countTickets() throws -> Int { try Int.fetchOne(db, sql: "SELECT count(*) FROM tickets") ?? 0 }

    public func ticket(_ ticketID: String) throws -> TicketRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM tickets WHERE ticket_id = ?", arguments: [ticketID]).map(TicketRow.init)
    }

    /// Records a ticket as this node learns of it, or a later state of it. States only move
    /// forward (open, acknowledged, closed); each time is kept once.
    public func upsertTicket(_ t: TicketRow) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO tickets (ticket_id, kind, code, subject, responsible, opened_by, state, reason, occurrences,
              opened_at_ms, acknowledged_at_ms, closed_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(ticket_id) DO UPDATE SET
              occurrences = max(tickets.occurrences, excluded.occurrences),
              acknowledged_at_ms = coalesce(tickets.acknowledged_at_ms, excluded.acknowledged_at_ms),
              closed_at_ms = coalesce(tickets.closed_at_ms, excluded.closed_at_ms),
              state = CASE
                WHEN tickets.state = 'closed' OR excluded.state = 'closed' THEN 'closed'
                WHEN tickets.state = 'acknowledged' OR excluded.state = 'acknowledged' THEN 'acknowledged'
                ELSE 'open' END
            """)
        try statement.execute(arguments: [t.ticketID, t.kind, t.code, t.subject, t.responsible, t.openedBy, t.state,
                                          t.reason, t.occurrences, t.openedAtMs, t.acknowledgedAtMs, t.closedAtMs])
    }

    public func addTicketOccurrence(_ ticketID: String) throws {
        try db.execute(sql: "UPDATE tickets SET occurrences = occurrences + 1 WHERE ticket_id = ?", arguments: [ticketID])
    }

    public func recordTicketEvent(ticketID: String, event: String, node: String, atMs: Int64) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_events (ticket_id, event, node, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
        try statement.execute(arguments: [ticketID, event, node, atMs])
    }

    public func tickets(state: String? = nil) throws -> [TicketRow] {
        if let state {
            return try Row.fetchAll(db, sql: "SELECT * FROM tickets WHERE state = ? ORDER BY opened_at_ms", arguments: [state]).map(TicketRow.init)
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM tickets ORDER BY opened_at_ms").map(TicketRow.init)
    }

    public func ticketEvents(_ ticketID: String) throws -> [(event: String, node: String, atMs: Int64)] {
        try Row.fetchAll(db, sql: "SELECT event, node, at_ms FROM ticket_events WHERE ticket_id = ? ORDER BY at_ms",
                         arguments: [ticketID]).map { ($0[0], $0[1], $0[2]) }
    }

    public func enqueueTicketEvent(msgid: String, destination: String, body: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_outbox (msgid, destination, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        try statement.execute(arguments: [msgid, destination, Data(body)])
    }

    public func ticketOutbox() throws -> [(msgid: String, destination: String, body: [UInt8])] {
        try Row.fetchAll(db, sql: "SELECT msgid, destination, body FROM ticket_outbox ORDER BY rowid LIMIT 500")
            .map { ($0[0], $0[1], Array($0[2] as Data)) }
    }

    /// Responsible county: the records an upload_reject ticket is about.
    public func addTicketRecords(_ ticketID: String, setlIDs: [String]) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_records (ticket_id, setl_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
        for setlID in setlIDs { try statement.execute(arguments: [ticketID, setlID]) }
    }

    /// The not-closed tickets of `kind` about `subject` that this node is responsible for,
    /// each with its records.
    public func openTickets(kind: String, subject: String, responsible: String) throws -> [(ticket: TicketRow, setlIDs: [String])] {
        let tickets = try Row.fetchAll(db, sql: """
            SELECT * FROM tickets WHERE kind = ? AND subject = ? AND responsible = ? AND state != 'closed' ORDER BY opened_at_ms
            """, arguments: [kind, subject, responsible]).map(TicketRow.init)
        return try tickets.map { ticket in
            (ticket, try String.fetchAll(db, sql: "SELECT setl_id FROM ticket_records WHERE ticket_id = ? ORDER BY setl_id",
                                         arguments: [ticket.ticketID]))
        }
    }

    public func removeTicketEvent(msgid: String) throws {
        try db.execute(sql: "DELETE FROM ticket_outbox WHERE msgid = ?", arguments: [msgid])
    }
}
