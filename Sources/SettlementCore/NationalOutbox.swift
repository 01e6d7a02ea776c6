import SettlementModel

/// What the national outbox reads and writes (a province's ledger).
public protocol OutboxStore {
    /// Gives queued records without a batch the batch `msgid`: at most `limit` unless a single
    /// batch screened below holds more (its records stay together); how many.
    func assignOutboxBatch(msgid: String, limit: Int) throws -> Int
    /// Every batch not yet acknowledged, oldest first.
    func outboxBatchIDs() throws -> [String]
    /// The records of batch `msgid` in the order queued, encoded as an UploadInput's records
    /// field (`WireCodec.uploadInput`).
    func outboxInput(batch msgid: String) throws -> [UInt8]
    func acknowledgeOutboxBatch(msgid: String) throws
}

/// A province's hand-off to the national store (数据集中): the records it stored go up in
/// batches until the national tier acknowledges each. A batch keeps its msgid across restarts
/// and resends, and the national tier answers a repeated msgid from its store: exactly once.
public struct NationalOutbox: Sendable {
    public let province: DivisionCode
    /// Most records in one batch.
    public var batchLimit = 2_000
    /// A batch not acknowledged after this long is sent again.
    public var resendMs: Int64 = 5_000
    /// Most batches sent and not yet answered: queued records wait for a free place, so a slow
    /// national tier is not buried under resends.
    public var maxInFlight = 8
    private var sequence = 0
    /// Batches sent and not acknowledged, with when they were sent (`.notSent`: refused, due at once).
    public private(set) var inFlight: [String: Int64] = [:]
    /// False once a flush found nothing queued or in flight; set when a record is queued.
    /// Spares an idle province a write transaction ten times a second.
    public private(set) var mayHaveWork = true

    public init(province: DivisionCode) { self.province = province }

    /// The send time of a batch due at once, whatever the clock reads (virtual time starts at 0).
    static let notSent = Int64.min / 2

    /// Records were queued for the national store.
    public mutating func recordsQueued() { mayHaveWork = true }

    /// Something may be queued or in flight: worth a flush (and its write transaction).
    public var hasWork: Bool { mayHaveWork || !inFlight.isEmpty }

    /// Whether an answer from the parent is one of these batches'.
    public func awaits(_ msgid: String) -> Bool { inFlight[msgid] != nil }

    /// The batches to send now: queued records go into a new batch while fewer than
    /// `maxInFlight` await an answer, and every batch not acknowledged and not sent within
    /// `resendMs` is due (again). Only the due batches' records are read. Call inside a write
    /// transaction.
    public mutating func due(nowMs: Int64, catalogVersion: String, store: some OutboxStore) throws -> [Batch] {
        guard hasWork else { return [] }
        let awaiting = inFlight.values.filter { $0 != Self.notSent }.count
        if awaiting < maxInFlight {
            sequence += 1
            let msgid = MessageID.request(institution: "N\(province.value)00000", unixMs: nowMs, sequence: sequence)
            _ = try store.assignOutboxBatch(msgid: msgid, limit: batchLimit)
        }
        let batches = try store.outboxBatchIDs()
        if batches.isEmpty && inFlight.isEmpty { mayHaveWork = false }
        return try batches.filter { nowMs - (inFlight[$0] ?? Self.notSent) >= resendMs }.map { msgid in
            var envelope = WireRequest()
            envelope.infno = TransactionCode.upload.rawValue
            envelope.msgid = msgid
            envelope.mdtrtareaAdmvs = province.value
            envelope.insuplcAdmdvs = province.value
            envelope.infver = "V1.0"
            envelope.infTime = CivilTime(unixMs: nowMs).readable
            // The records as stored, spliced in: neither decoded nor encoded again.
            let input = try store.outboxInput(batch: msgid) + WireCodec.uploadInput(records: [[UInt8]](), catalogVersion: catalogVersion)
            let body = try WireCodec.uploadRequestBody(envelope: envelope, input: input)
            return Batch(msgid: msgid, body: body)
        }
    }

    /// A batch for the national tier: the body of its upload request (4101).
    public struct Batch: Sendable {
        public let msgid: String
        public let body: [UInt8]
    }

    /// The batch was handed to the link.
    public mutating func sent(_ msgid: String, nowMs: Int64) { inFlight[msgid] = nowMs }

    public enum Answer: Equatable, Sendable {
        case stored
        /// Not stored above (busy, catalog not loaded): sent again at the next flush.
        case refused(code: String)
    }

    /// The national tier answered a batch. Stored: acknowledged in the store (call inside a
    /// write transaction; if it fails, the batch stays in flight and is sent again).
    public mutating func answered(_ response: WireResponse, store: some OutboxStore) throws -> Answer {
        guard response.infcode == 0 else {
            inFlight[response.reqMsgid] = Self.notSent
            return .refused(code: response.errCode)
        }
        try store.acknowledgeOutboxBatch(msgid: response.reqMsgid)
        inFlight[response.reqMsgid] = nil
        return .stored
    }
}
