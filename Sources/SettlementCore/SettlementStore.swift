import SettlementModel

/// What the insured county's desk reads and writes, inside one round's transaction.
/// `Persistence` keeps it in the node's ledger; `SettlementTestKit` keeps it in memory, so that
/// every rule of the desk can be tested without SQLite or a process.
public protocol SettlementStore {
    /// The transaction code and stored answer of a settlement or reversal msgid already decided here.
    func storedAnswer(msgid: String) throws -> (infno: String, response: [UInt8])?
    /// The answer of the successful reversal of `omsgid`, if there was one.
    func successfulReversal(omsgid: String) throws -> [UInt8]?
    func person(_ psnNo: String) throws -> PersonAccount?
    func updatePerson(_ person: PersonAccount) throws
    /// A settlement decided here that took effect (settled or reversed since); nil if none.
    func settlement(msgid: String) throws -> StoredSettlement?
    /// The state of a settlement decided here (settled, refused, reversed); nil if none.
    func settlementState(msgid: String) throws -> (state: String, setlID: String)?
    /// Records a settled settlement with its answer; a msgid already decided is an error.
    func insertSettled(request: WireRequest, split: Split, psnNo: String, setlID: String, nowMs: Int64, response: [UInt8]) throws
    /// Records a refused settlement with its answer, so that a repeat gets the same answer.
    func insertRefused(request: WireRequest, errCode: String, nowMs: Int64, response: [UInt8]) throws
    /// Records a reversal's (or correction's) answer; `infcode` 0 marks the original reversed.
    func insertReversal(msgid: String, omsgid: String, infno: String, infcode: Int32, nowMs: Int64, response: [UInt8]) throws
    /// A settlement row that refuses `omsgid` should it ever arrive (its correction came first).
    func insertTombstone(omsgid: String, infno: String, psnNo: String, mdtrtareaAdmvs: String, fixmedinsCode: String,
                         nowMs: Int64, response: [UInt8]) throws
    /// What this tier saw of a settlement, reversal or correction (see `Ledger.recordTransit`).
    func recordTransit(_ record: TransitRecord, resolution: Bool) throws
}
