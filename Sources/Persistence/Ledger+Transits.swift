import Foundation
import GRDB
import SettlementCore
import SettlementModel

/// What each tier saw of each settlement, reversal and correction (every tier keeps these).
extension LedgerTransaction {
    static let transitAppend: StaticString = """
        INSERT INTO transit_log (msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
          medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state, recorded_at_ms, oinfno, psn_no, held_us)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let transitImage = """
        SELECT msgid, infno, role, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, omsgid, setl_id,
          medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, infcode, err_code, state, recorded_at_ms, oinfno, psn_no, held_us
        FROM transit_log WHERE seq = ?
        """

    /// Records what this tier saw of a settlement or reversal. A later, definite answer for
    /// the same msgid replaces an earlier indefinite ('unknown') one; nothing else is replaced,
    /// except by `resolution`: the outcome a correction (2601) established is final, even over
    /// an answer that arrived here earlier for a copy of the request the network since reversed.
    ///
    /// Every change appends the transit's new image to `transit_log`; the index says where each
    /// msgid's latest is, so none of these rules searches the table.
    public func recordTransit(_ record: TransitRecord, resolution: Bool = false) throws {
        guard transits != nil else { throw SettleNetError(.ledger, "recordTransit outside a write transaction") }
        if let existing = try entry(record.msgid) {
            if try resolution || existing.state == .unknown || (existing.state == .refused && isRefusalOfAnAttempt(at: existing.seq)) {
                // The answer's outcome over the earlier one; who asked, and about what, stays as first recorded.
                var image = try self.image(at: existing.seq)
                image.setlID = record.setlID
                image.medfeeSumamt = record.medfeeSumamt; image.fundPaySumamt = record.fundPaySumamt
                image.acctPay = record.acctPay; image.psnCashPay = record.psnCashPay
                image.infcode = record.infcode; image.errCode = record.errCode; image.state = record.state
                image.recordedAtMs = record.recordedAtMs
                image.heldUs = record.heldUs
                try append(image, replacing: existing)
            }
        } else {
            try append(record, replacing: nil)
        }
        if resolution {
            // The settlement's final state is known here now: so is that of every reversal or
            // correction of it whose own answer this node never got.
            try settleUnknownReversals(of: record.msgid, state: record.state == .reversed ? .reversed : .refused,
                                       errCode: record.errCode, codes: TransitIndex.reversalCodes)
        }
        if record.state == .unknown && TransactionCode(rawValue: record.infno)?.isReversal == true {
            // A reversal this tier gave up on after a correction of its settlement already
            // passed here: the correction's outcome is its outcome too.
            try settleLateReversal(record.msgid, of: record.omsgid)
        }
        if record.state == .reversed && !record.omsgid.isEmpty {
            if record.infno == TransactionCode.correction.rawValue {
                // A correction settles the doubt: reversed if it had settled, refused if it never took effect.
                try recordCorrectionOutcome(record)
            } else if let settlement = try entry(record.omsgid), settlement.state == .settled {
                var image = try self.image(at: settlement.seq)
                image.state = .reversed
                try append(image, replacing: settlement)
            }
        }
    }

    /// The image at `seq` is a refusal decided on the way (SN-E3001, E3004 ...): the attempt it
    /// answered did not get through, and a later attempt of the same msgid (its client asked
    /// again, never having heard it) is recorded over it. (Kept, it left every tier on the way at
    /// `refused` while the insured county settled the repeat: a crash loop found it.)
    private func isRefusalOfAnAttempt(at seq: Int64) throws -> Bool {
        ErrorCode(rawValue: try image(at: seq).errCode)?.refusesOnlyTheAttempt == true
    }

    /// What a correction (2601) established for the settlement it concerns. A tier with no record
    /// of that settlement (a relay restarted while it was in flight, or the insured county of a
    /// settlement that never arrived) records the final state with SN-E2006: its amounts were
    /// never seen here. A tier that knew it only as unknown takes the state (and SN-E2006 if it
    /// had only journaled it; a timeout keeps its own code); one that saw it settled keeps its
    /// amounts and becomes reversed.
    private func recordCorrectionOutcome(_ correction: TransitRecord) throws {
        let reversed = correction.correctionOutcome == "reversed"
        let outcome: TransitState = reversed ? .reversed : .refused
        let cancelled = ErrorCode.cancelledByCorrection.rawValue
        if let settlement = try entry(correction.omsgid) {
            if settlement.state == .unknown || (reversed && settlement.state == .settled) {
                var image = try self.image(at: settlement.seq)
                if image.state == .unknown && image.errCode.isEmpty { image.errCode = cancelled }
                image.state = outcome
                try append(image, replacing: settlement)
            }
        } else {
            let meta = RequestMeta(omsgid: correction.omsgid, infno: correction.oinfno, treatment: correction.mdtrtareaAdmvs,
                                   insured: correction.insuplcAdmdvs, fixmedinsCode: correction.fixmedinsCode)
            var image = TransitRecord(inFlight: meta, nowMs: correction.recordedAtMs)   // no person: meta has none
            image.role = correction.role
            image.setlID = correction.setlID
            image.infcode = -1
            image.errCode = cancelled
            image.state = outcome
            try append(image, replacing: nil)
        }
        // So does every reversal of it whose answer this tier never got, as at the origin:
        // nothing else may pass here to settle them (a hospital asking again can be refused on
        // the way by a tier that is down).
        try settleUnknownReversals(of: correction.omsgid, state: outcome, errCode: cancelled,
                                   codes: [TransactionCode.outpatientReversal.rawValue, TransactionCode.inpatientReversal.rawValue])
    }

    /// Every reversal (of `codes`) of the settlement `omsgid` still unknown here takes `state`.
    private func settleUnknownReversals(of omsgid: String, state: TransitState, errCode: String, codes: Set<String>) throws {
        guard let waiting = transits!.unknownReversals[omsgid] else { return }
        for (msgid, infno) in waiting.sorted(by: { $0.key < $1.key }) where codes.contains(infno) {
            guard let entry = try entry(msgid), entry.state == .unknown else { continue }
            var image = try self.image(at: entry.seq)
            image.state = state
            image.errCode = errCode
            try append(image, replacing: entry)
        }
    }

    /// The reversal `msgid`, unknown here, takes the outcome of the correction of its settlement
    /// `omsgid` if that correction passed here reversed and the settlement's final state is known.
    private func settleLateReversal(_ msgid: String, of omsgid: String) throws {
        guard let reversal = try entry(msgid), reversal.state == .unknown,
              let settlement = try entry(omsgid), settlement.state == .reversed || settlement.state == .refused,
              let correction = try entry(NodeMachine.Resolution.correctionMsgid(of: omsgid)), correction.state == .reversed,
              try image(at: correction.seq).infno == TransactionCode.correction.rawValue else { return }
        var image = try self.image(at: reversal.seq)
        image.errCode = ErrorCode.cancelledByCorrection.rawValue
        image.state = settlement.state == .reversed ? .reversed : .refused
        try append(image, replacing: reversal)
    }

    /// Appends `record` as the latest image of its msgid; `replacing` is the entry of the image
    /// it follows, when the caller found one.
    private func append(_ record: TransitRecord, replacing: TransitIndex.Entry?) throws {
        try run(Self.transitAppend) { values in
            values.bind(record.msgid); values.bind(record.infno); values.bind(record.role.rawValue)
            values.bind(record.mdtrtareaAdmvs); values.bind(record.insuplcAdmdvs); values.bind(record.fixmedinsCode)
            values.bind(record.omsgid); values.bind(record.setlID); values.bind(record.medfeeSumamt)
            values.bind(record.fundPaySumamt); values.bind(record.acctPay); values.bind(record.psnCashPay)
            values.bind(record.infcode); values.bind(record.errCode); values.bind(record.state.rawValue)
            values.bind(record.recordedAtMs); values.bind(record.oinfno); values.bind(record.psnNo)
            values.bind(record.heldUs)
        }
        try transits!.noted(seq: db.lastInsertedRowID, image: record, replacing: replacing, msgidAt: msgidAt)
    }

    /// Where the latest image of `msgid` is in the log, and its state.
    private func entry(_ msgid: String) throws -> TransitIndex.Entry? {
        try transits!.entry(msgid, msgidAt: msgidAt)
    }

    /// The msgid of the image at `seq`: from the index's unknown images, else from the log.
    private func msgidAt(_ seq: Int64) throws -> String {
        if let image = transits?.unknownImage(at: seq) { return image.msgid }
        return try TransitIndex.msgidReader(db)(seq)
    }

    /// The image appended at `seq`.
    private func image(at seq: Int64) throws -> TransitRecord {
        if let image = transits?.unknownImage(at: seq) { return image }
        let statement = try db.cachedStatement(sql: Self.transitImage)
        guard let row = try Row.fetchOne(statement, arguments: [seq]) else {
            throw SettleNetError(.ledger, "transit image \(seq) missing from transit_log")
        }
        var meta = RequestMeta(omsgid: row[0], infno: row[1], treatment: row[3], insured: row[4], fixmedinsCode: row[5])
        meta.omsgid = row[6]
        meta.oinfno = row[16]
        var record = TransitRecord(inFlight: meta, nowMs: row[15])
        record.role = TransitRole(rawValue: row[2]) ?? .relay
        record.setlID = row[7]
        record.medfeeSumamt = row[8]; record.fundPaySumamt = row[9]; record.acctPay = row[10]; record.psnCashPay = row[11]
        record.infcode = row[12]
        record.errCode = row[13]
        record.state = TransitState(rawValue: row[14]) ?? .unknown
        record.psnNo = row[17]
        record.heldUs = row[18]
        return record
    }
}
