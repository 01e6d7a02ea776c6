import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// The ledger's schema, one migration per change, applied in the order registered (their
/// names are the order they were written in). A ledger of any earlier version opens and is migrated.
extension Ledger {
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
        migrator.registerMigration("v8-transits-without-rowid") { db in
            try db.execute(sql: """
                -- Every answer a node passes writes a transit: keyed by msgid in one B-tree, a row is
                -- one insert instead of a row plus a separate entry in the msgid index.
                CREATE TABLE transits_v8 (
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
                    recorded_at_ms INTEGER NOT NULL,
                    oinfno TEXT NOT NULL DEFAULT '',
                    psn_no TEXT NOT NULL DEFAULT ''
                ) WITHOUT ROWID;
                INSERT INTO transits_v8 (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                                         medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state,
                                         recorded_at_ms, oinfno, psn_no)
                    SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                           medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state,
                           recorded_at_ms, oinfno, psn_no
                    FROM transits;
                DROP TABLE transits;
                ALTER TABLE transits_v8 RENAME TO transits;
                CREATE INDEX transits_omsgid ON transits(omsgid) WHERE omsgid != '';
                CREATE INDEX transits_unknown ON transits(role) WHERE state = 'unknown';
                """)
        }
        migrator.registerMigration("v9-transit-log") { db in
            try db.execute(sql: """
                -- Transits keyed by msgid landed on random pages (msgids of many hospitals): a commit
                -- of ten records wrote about ten pages, and each upsert searched the B-tree. The log
                -- appends every image of a transit in rowid order instead, so a commit writes the
                -- last page or two; the node keeps where each msgid's latest image is in memory
                -- (TransitIndex). The view `transits` shows the latest image of each msgid.
                CREATE TABLE transit_log (
                    seq INTEGER PRIMARY KEY,
                    msgid TEXT NOT NULL,
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
                    -- Spelled out: a CHECK with an IN list of more than two builds a temporary
                    -- index on every insert (3 us of an insert's 5 in SQLite 3.40).
                    state TEXT NOT NULL CHECK (state = 'settled' OR state = 'refused' OR state = 'reversed' OR state = 'unknown'),
                    recorded_at_ms INTEGER NOT NULL,
                    oinfno TEXT NOT NULL DEFAULT '',
                    psn_no TEXT NOT NULL DEFAULT ''
                );
                INSERT INTO transit_log (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                                         medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state,
                                         recorded_at_ms, oinfno, psn_no)
                    SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                           medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state,
                           recorded_at_ms, oinfno, psn_no
                    FROM transits ORDER BY recorded_at_ms;
                DROP TABLE transits;
                CREATE VIEW transits AS
                    SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
                           medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state,
                           recorded_at_ms, oinfno, psn_no
                    FROM transit_log WHERE seq IN (SELECT max(seq) FROM transit_log GROUP BY msgid);
                """)
        }
        migrator.registerMigration("v10-settlement-check") { db in
            try db.execute(sql: """
                -- The insured county writes a settlement for every one it decides: its CHECK on the
                -- state is spelled out, as the transit log's is (an IN list of more than two built a
                -- temporary index on every insert).
                CREATE TABLE settlements_v10 (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    infno TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state = 'settled' OR state = 'refused' OR state = 'reversed'),
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
                INSERT INTO settlements_v10 (msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
                    medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc, hifp_pay,
                    hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, reversal_msgid, response)
                SELECT msgid, infno, state, err_code, setl_id, psn_no, mdtrtarea_admvs, fixmedins_code,
                    medfee_sumamt, fulamt_ownpay_amt, overlmt_selfpay, preselfpay_amt, inscp_scp_amt, act_pay_dedc, hifp_pay,
                    hifob_pay, acct_pay, psn_cash_pay, fund_pay_sumamt, acct_pay_in_fund, balc, settled_at_ms, reversal_msgid, response
                FROM settlements;
                DROP TABLE settlements;
                ALTER TABLE settlements_v10 RENAME TO settlements;
                """)
        }
        migrator.registerMigration("v11-outbox-chunks") { db in
            try db.execute(sql: """
                -- Provincial tier: what waits for the national store, one row per batch screened
                -- here (its passing records, encoded as an UploadInput's records field). A row per
                -- record was queued, read back, batched and deleted one by one: a quarter of a
                -- province's time under uploads.
                CREATE TABLE upload_outbox_chunks (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    records INTEGER NOT NULL,
                    input BLOB NOT NULL,
                    batch_msgid TEXT
                );
                CREATE INDEX upload_outbox_chunks_batch ON upload_outbox_chunks(batch_msgid);
                """)
            // What an older ledger queued goes on, a record a chunk, in its order and batches.
            let rows = try Row.fetchAll(db, sql: "SELECT record, batch_msgid FROM upload_outbox ORDER BY seq")
            for row in rows {
                let record = Array(row[0] as Data)
                try db.execute(sql: "INSERT INTO upload_outbox_chunks (records, input, batch_msgid) VALUES (1, ?, ?)",
                               arguments: [Data(WireCodec.uploadInput(records: [record], catalogVersion: "")), row[1] as String?])
            }
            try db.execute(sql: "DROP TABLE upload_outbox")
        }
        migrator.registerMigration("v12-upload-store") { db in
            try db.execute(sql: """
                -- Provincial and national tiers: the records that passed, one row per batch (an
                -- UploadInput's records field). upload_records keeps the claim of each setl_id;
                -- its record column stays for what older ledgers stored there. A blob per claim
                -- made every claim a b-tree write of its record: an eighth of the uploads' time.
                CREATE TABLE upload_stored (
                    msgid TEXT PRIMARY KEY NOT NULL,
                    records INTEGER NOT NULL,
                    input BLOB NOT NULL
                );
                -- A chunk now refers to the records stored for its batch instead of copying them
                -- (input is then empty).
                ALTER TABLE upload_outbox_chunks ADD COLUMN stored_msgid TEXT;
                """)
        }
        migrator.registerMigration("v13-upload-claims") { db in
            try db.execute(sql: """
                -- A tier's claim of a setl_id is the setl_id alone. upload_records' four other
                -- columns made each claim about 1.6 times the work of the key alone, and a claim
                -- at each of the four tiers was nearly half of a record's cost; the institution and
                -- the time are in the batch's row. upload_records keeps what older ledgers claimed.
                CREATE TABLE upload_claims (setl_id TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
                INSERT INTO upload_claims (setl_id) SELECT setl_id FROM upload_records;
                -- When a batch's records were stored (0: before v13).
                ALTER TABLE upload_stored ADD COLUMN stored_at_ms INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v14-upload-passed-up") { db in
            try db.execute(sql: """
                -- A county or city keeps what it passed up of a batch as the positions it rejected
                -- and a digest of the bytes that went up, not the bytes: a copy of every record in
                -- both ledgers was a fifth of the uploads' disk writes. A repeat of the batch
                -- rebuilds the same bytes from the records that come again. `forwarded` keeps what
                -- older ledgers passed up.
                ALTER TABLE upload_batches ADD COLUMN passed_digest INTEGER;
                ALTER TABLE upload_batches ADD COLUMN rejected_positions BLOB;
                """)
        }
        migrator.registerMigration("v15-transit-held") { db in
            try db.execute(sql: """
                -- How long each request was at and beyond this tier, in µs, from its arrival to
                -- its answer's record (0 where not timed, and before v15): the report's time per
                -- hop is the difference between neighbouring tiers.
                ALTER TABLE transit_log ADD COLUMN held_us INTEGER NOT NULL DEFAULT 0;
                """)
        }
        return migrator
    }
}
