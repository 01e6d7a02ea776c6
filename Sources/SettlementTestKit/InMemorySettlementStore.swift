import SettlementCore
import SettlementModel

/// A settlement store in memory with the ledger's rules (one row per msgid, one successful
/// reversal per settlement), for testing the insured county's desk without SQLite.
public final class InMemorySettlementStore: SettlementStore {
    public struct Row: Equatable, Sendable {
        public var infno: String
        /// settled, refused or reversed.
        public var state: String
        public var errCode: String
        public var setlID: String
        public var psnNo: String
        public var split: Split?
        public var response: [UInt8]
    }

    public struct ReversalRow: Equatable, Sendable {
        public var omsgid: String
        public var infno: String
        public var infcode: Int32
        public var response: [UInt8]
    }

    public struct DuplicateKey: Error, Equatable {
        public var table: String
        public var key: String
    }

    public private(set) var persons: [String: PersonAccount] = [:]
    public private(set) var settlements: [String: Row] = [:]
    public private(set) var reversals: [String: ReversalRow] = [:]
    /// Every transit record written, in order.
    public private(set) var transits: [TransitRecord] = []

    public init(persons: [PersonAccount] = []) {
        for person in persons { self.persons[person.psnNo] = person }
    }

    public func storedAnswer(msgid: String) throws -> (infno: String, response: [UInt8])? {
        if let row = settlements[msgid] { return (row.infno, row.response) }
        if let row = reversals[msgid] { return (row.infno, row.response) }
        return nil
    }

    public func successfulReversal(omsgid: String) throws -> [UInt8]? {
        reversals.values.first { $0.omsgid == omsgid && $0.infcode == 0 }?.response
    }

    public func person(_ psnNo: String) throws -> PersonAccount? { persons[psnNo] }

    public func updatePerson(_ person: PersonAccount) throws {
        guard persons[person.psnNo] != nil else { return }   // an UPDATE of no row changes nothing
        persons[person.psnNo] = person
    }

    public func settlement(msgid: String) throws -> StoredSettlement? {
        guard let row = settlements[msgid], row.state != "refused", let split = row.split else { return nil }
        return StoredSettlement(msgid: msgid, infno: row.infno, psnNo: row.psnNo, setlID: row.setlID,
                                reversed: row.state == "reversed", split: split)
    }

    public func settlementState(msgid: String) throws -> (state: String, setlID: String)? {
        settlements[msgid].map { ($0.state, $0.setlID) }
    }

    public func insertSettled(request: WireRequest, split: Split, psnNo: String, setlID: String, nowMs: Int64,
                              response: [UInt8]) throws {
        try insert(request.msgid, Row(infno: request.infno, state: "settled", errCode: "", setlID: setlID, psnNo: psnNo,
                                      split: split, response: response))
    }

    public func insertRefused(request: WireRequest, errCode: String, nowMs: Int64, response: [UInt8]) throws {
        var psnNo = ""
        if case .settlement(let input)? = request.input { psnNo = input.psnNo }
        try insert(request.msgid, Row(infno: request.infno, state: "refused", errCode: errCode, setlID: "", psnNo: psnNo,
                                      split: nil, response: response))
    }

    public func insertReversal(msgid: String, omsgid: String, infno: String, infcode: Int32, nowMs: Int64,
                               response: [UInt8]) throws {
        guard reversals[msgid] == nil else { throw DuplicateKey(table: "reversals", key: msgid) }
        if infcode == 0, try successfulReversal(omsgid: omsgid) != nil { throw DuplicateKey(table: "reversals", key: "omsgid \(omsgid)") }
        reversals[msgid] = ReversalRow(omsgid: omsgid, infno: infno, infcode: infcode, response: response)
        if infcode == 0 { settlements[omsgid]?.state = "reversed" }
    }

    public func insertTombstone(omsgid: String, infno: String, psnNo: String, mdtrtareaAdmvs: String, fixmedinsCode: String,
                                nowMs: Int64, response: [UInt8]) throws {
        try insert(omsgid, Row(infno: infno, state: "refused", errCode: ErrorCode.cancelledByCorrection.rawValue, setlID: "",
                               psnNo: psnNo, split: nil, response: response))
    }

    public func recordTransit(_ record: TransitRecord, resolution: Bool) throws {
        transits.append(record)
    }

    private func insert(_ msgid: String, _ row: Row) throws {
        guard settlements[msgid] == nil else { throw DuplicateKey(table: "settlements", key: msgid) }
        settlements[msgid] = row
    }
}
