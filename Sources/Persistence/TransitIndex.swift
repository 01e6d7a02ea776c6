import GRDB
import SettlementCore
import SettlementModel

/// Where the latest image of each transit is in `transit_log` (its seq) and what state it holds,
/// and which reversals still wait for their outcome, by the settlement they concern: what the
/// transit rules look up, kept in memory so that recording a transit is an append.
///
/// Built from the log when the ledger opens. Changed only inside a write transaction, by the
/// thread that writes; a transaction that rolls back puts it back as it was.
final class TransitIndex {
    struct Entry: Equatable {
        var seq: Int64
        var state: TransitState
    }

    /// The latest image of each msgid.
    private(set) var latest: [String: Entry] = [:]
    /// Reversals and corrections (2208, 2305, 2601) whose state is unknown here, by the msgid of
    /// the settlement they concern: their msgid and infno.
    private(set) var unknownReversals: [String: [String: String]] = [:]
    /// How to put the index back if the open transaction rolls back, newest last.
    private var undo: [Undo] = []

    private enum Undo {
        case latest(String, Entry?)
        case reversals(String, [String: String]?)
    }

    /// The codes whose unknown outcome a later answer or correction settles.
    static let reversalCodes: Set<String> = [TransactionCode.outpatientReversal.rawValue, TransactionCode.inpatientReversal.rawValue,
                                             TransactionCode.correction.rawValue]

    init() {}

    /// Reads the whole log, oldest first.
    init(db: Database) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, msgid, infno, omsgid, state FROM transit_log ORDER BY seq")
        while let row = try rows.next() {
            let state = TransitState(rawValue: row[4]) ?? .unknown
            note(seq: row[0], msgid: row[1], infno: row[2], omsgid: row[3], state: state, undoable: false)
        }
    }

    func entry(_ msgid: String) -> Entry? { latest[msgid] }

    /// A new image of `msgid` was appended at `seq`.
    func noted(seq: Int64, msgid: String, infno: String, omsgid: String, state: TransitState) {
        note(seq: seq, msgid: msgid, infno: infno, omsgid: omsgid, state: state, undoable: true)
    }

    private func note(seq: Int64, msgid: String, infno: String, omsgid: String, state: TransitState, undoable: Bool) {
        let previous = latest.updateValue(Entry(seq: seq, state: state), forKey: msgid)
        if undoable { undo.append(.latest(msgid, previous)) }
        guard !omsgid.isEmpty, Self.reversalCodes.contains(infno) else { return }
        let waiting = unknownReversals[omsgid]
        if state == .unknown {
            guard waiting?[msgid] != infno else { return }
            if undoable { undo.append(.reversals(omsgid, waiting)) }
            unknownReversals[omsgid, default: [:]][msgid] = infno
        } else if waiting?[msgid] != nil {
            if undoable { undo.append(.reversals(omsgid, waiting)) }
            unknownReversals[omsgid]![msgid] = nil
            if unknownReversals[omsgid]!.isEmpty { unknownReversals[omsgid] = nil }
        }
    }

    /// The open transaction committed: what it changed stays.
    func committed() {
        undo.removeAll(keepingCapacity: true)
    }

    /// The open transaction rolled back: what it changed is undone, newest first.
    func rolledBack() {
        for change in undo.reversed() {
            switch change {
            case .latest(let msgid, let entry): latest[msgid] = entry
            case .reversals(let omsgid, let waiting): unknownReversals[omsgid] = waiting
            }
        }
        undo.removeAll(keepingCapacity: true)
    }
}
