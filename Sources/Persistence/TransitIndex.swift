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

    /// The latest image of each msgid, by the XXH64 of the msgid: a key of 8 bytes instead of a
    /// string's 80 or so, since a node keeps one for every transit it ever recorded. Exact all
    /// the same: a hit is checked against the msgid in the log (`msgidAt`).
    private var byHash: [UInt64: Entry] = [:]
    /// The rare msgid whose hash another msgid in `byHash` already has.
    private var collided: [String: Entry] = [:]
    /// Reversals and corrections (2208, 2305, 2601) whose state is unknown here, by the msgid of
    /// the settlement they concern: their msgid and infno.
    private(set) var unknownReversals: [String: [String: String]] = [:]
    /// The latest image of each transit still unknown here, by its seq: the answer that comes
    /// for it reads that image back to write the next one (at the origin, every journaled
    /// request). Dropped once replaced. Images appended before the ledger opened are not here:
    /// they are read from the log.
    private var unknownImages: [Int64: TransitRecord] = [:]
    /// How to put the index back if the open transaction rolls back, newest last.
    private var undo: [Undo] = []

    private enum Undo {
        case byHash(UInt64, Entry?)
        case collided(String, Entry?)
        case reversals(String, [String: String]?)
        case image(Int64, TransitRecord?)
    }

    /// The codes whose unknown outcome a later answer or correction settles.
    static let reversalCodes: Set<String> = [TransactionCode.outpatientReversal.rawValue, TransactionCode.inpatientReversal.rawValue,
                                             TransactionCode.correction.rawValue]

    /// The key of a msgid in `byHash`: XXH64 of it, but for tests that make every msgid collide.
    private let key: (String) -> UInt64

    /// Reads the whole log, oldest first.
    init(db: Database, key: @escaping (String) -> UInt64 = TransitIndex.xxh64) throws {
        self.key = key
        let msgidAt = Self.msgidReader(db)
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, msgid, infno, omsgid, state FROM transit_log ORDER BY seq")
        while let row = try rows.next() {
            let state = TransitState(rawValue: row[4]) ?? .unknown
            try note(seq: row[0], msgid: row[1], infno: row[2], omsgid: row[3], state: state, undoable: false, msgidAt: msgidAt)
        }
    }

    /// Reads the msgid of the image at a seq.
    static func msgidReader(_ db: Database) -> (Int64) throws -> String {
        { seq in
            let statement = try db.cachedStatement(sql: "SELECT msgid FROM transit_log WHERE seq = ?")
            return try String.fetchOne(statement, arguments: [seq]) ?? ""
        }
    }

    static func xxh64(_ msgid: String) -> UInt64 {
        var text = msgid
        return text.withUTF8 { XXH64.hash(UnsafeRawBufferPointer($0)) }
    }

    /// Where the latest image of `msgid` is, and its state; nil if it has none.
    func entry(_ msgid: String, msgidAt: (Int64) throws -> String) throws -> Entry? {
        if !collided.isEmpty, let entry = collided[msgid] { return entry }
        guard let entry = byHash[key(msgid)] else { return nil }
        return try msgidAt(entry.seq) == msgid ? entry : nil
    }

    /// `image` was appended at `seq` as the latest image of its msgid. `replacing`: the entry
    /// `entry(_:msgidAt:)` found for it, if the caller looked (its slot is then known to be this
    /// msgid's, and the log is not asked again). An image whose state is unknown is kept.
    func noted(seq: Int64, image: TransitRecord, replacing: Entry?, msgidAt: (Int64) throws -> String) throws {
        if let replacing, let held = unknownImages.removeValue(forKey: replacing.seq) {
            undo.append(.image(replacing.seq, held))
        }
        if image.state == .unknown {
            var kept = image
            kept.correctionOutcome = ""   // not a column: the log's image has none
            unknownImages[seq] = kept
            undo.append(.image(seq, nil))
        }
        try note(seq: seq, msgid: image.msgid, infno: image.infno, omsgid: image.omsgid, state: image.state, undoable: true,
                 known: replacing != nil, msgidAt: msgidAt)
    }

    /// The image at `seq` if it is the latest of a transit still unknown, appended since the
    /// ledger opened; nil otherwise (the log has it).
    func unknownImage(at seq: Int64) -> TransitRecord? { unknownImages[seq] }

    private func note(seq: Int64, msgid: String, infno: String, omsgid: String, state: TransitState, undoable: Bool,
                      known: Bool = false, msgidAt: (Int64) throws -> String) throws {
        let entry = Entry(seq: seq, state: state)
        let key = self.key(msgid)
        if !collided.isEmpty, collided[msgid] != nil {
            let previous = collided.updateValue(entry, forKey: msgid)
            if undoable { undo.append(.collided(msgid, previous)) }
        } else if !known, let held = byHash[key], try msgidAt(held.seq) != msgid {
            collided[msgid] = entry
            if undoable { undo.append(.collided(msgid, nil)) }
        } else {
            let previous = byHash.updateValue(entry, forKey: key)
            if undoable { undo.append(.byHash(key, previous)) }
        }
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
            case .byHash(let key, let entry): byHash[key] = entry
            case .collided(let msgid, let entry): collided[msgid] = entry
            case .reversals(let omsgid, let waiting): unknownReversals[omsgid] = waiting
            case .image(let seq, let image): unknownImages[seq] = image
            }
        }
        undo.removeAll(keepingCapacity: true)
    }
}
