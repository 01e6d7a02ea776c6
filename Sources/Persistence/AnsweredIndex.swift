import GRDB
import SettlementModel

/// The msgids the insured county has an answer stored for (in `settlements` or `reversals`),
/// by their XXH64: most settlements are new, and asking both tables for a msgid that is in
/// neither was two B-tree searches per settlement. A msgid whose hash is absent has no stored
/// answer; one whose hash is present is looked up as before, so the answer is always exact.
///
/// Built from the tables when the ledger opens, and told of every insert by the writer. A
/// transaction that rolls back may leave hashes behind: they only cost a look-up.
final class AnsweredIndex {
    private var hashes: Set<UInt64> = []

    init(db: Database) throws {
        let rows = try String.fetchCursor(db, sql: "SELECT msgid FROM settlements UNION ALL SELECT msgid FROM reversals")
        while let msgid = try rows.next() { hashes.insert(TransitIndex.xxh64(msgid)) }
    }

    /// False only when no answer is stored for `msgid`.
    func mayHave(_ msgid: String) -> Bool { hashes.contains(TransitIndex.xxh64(msgid)) }

    /// An answer for `msgid` is being stored.
    func noted(_ msgid: String) { hashes.insert(TransitIndex.xxh64(msgid)) }
}
