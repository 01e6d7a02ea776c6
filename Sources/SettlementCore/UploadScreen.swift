import SettlementModel

/// A tier's stored decision on one upload batch (4101): a repeated batch msgid gets it again.
public struct UploadBatchDecision: Equatable, Sendable {
    public var received: Int
    /// This tier's rejects (an `UploadOutput` holding only them), for the answer on its way down.
    public var ownRejects: [UInt8]
    /// County and city: what went up, rebuilt from a repeat of the batch.
    public var passedUp: PassedUp?
    /// Provincial and national tiers: the answer (they store the records and answer).
    public var answer: [UInt8]?

    public init(received: Int, ownRejects: [UInt8], passedUp: PassedUp?, answer: [UInt8]?) {
        self.received = received
        self.ownRejects = ownRejects
        self.passedUp = passedUp
        self.answer = answer
    }
}

/// What a county or city passed up of a batch: not the records themselves (a copy of every
/// record in every such ledger was a fifth of the uploads' disk writes), but enough to rebuild
/// the same bytes from a repeat of the batch and to tell a repeat from other records sent
/// under the same msgid.
public struct PassedUp: Equatable, Sendable {
    /// Where the records this tier rejected were in the batch it received.
    public var rejectedPositions: [Int]
    /// XXH64 of the `UploadInput` passed up.
    public var digest: UInt64
    /// The bytes themselves, as ledgers before v14 kept them.
    public var bytes: [UInt8]?

    public init(rejectedPositions: [Int], digest: UInt64, bytes: [UInt8]? = nil) {
        self.rejectedPositions = rejectedPositions
        self.digest = digest
        self.bytes = bytes
    }
}

/// What the upload screen reads and writes, inside one round's transaction.
public protocol UploadStore {
    func uploadBatch(msgid: String) throws -> UploadBatchDecision?
    func saveUploadBatch(msgid: String, decision: UploadBatchDecision) throws
    /// Claims `setlID` for this tier: false when a record with it already passed here (a duplicate).
    func claimUploadRecord(setlID: String) throws -> Bool
    /// Provincial and national tiers: the records of batch `msgid` that passed here, stored
    /// together (`input`: an UploadInput's records field).
    func storeUploadRecords(msgid: String, input: [UInt8], records: Int, nowMs: Int64) throws
    /// Provincial tier: the records stored for batch `msgid` go on to the national store.
    func enqueueForNational(storedBatch msgid: String, records: Int) throws
    func recordUploadReject(msgid: String, position: Int, batchIndex: Int32, setlID: String, fixmedinsCode: String,
                            ruleID: String, field: String, nowMs: Int64) throws
    /// The reject of `setlID` is corrected; false if there was none waiting.
    func markRejectCorrected(setlID: String, fixmedinsCode: String, nowMs: Int64) throws -> Bool
    func uncorrectedRejects(fixmedinsCode: String) throws -> Int
    /// Counters: received, accepted, corrections, and each rule id.
    func addUploadCount(_ name: String, _ amount: Int) throws
}

/// A tier's screen of upload batches: the county's record rules, then each tier's refusal of
/// duplicates. The provincial and national tiers store what passed (the province also queues it
/// for the national store) and answer; the county and the city pass it up. Rejects found above
/// the county open upload_reject tickets for the institution's county; a corrected re-upload
/// closes them once nothing of the institution waits for a correction.
public struct UploadScreen: Sendable {
    public let node: DivisionCode
    public let tier: DataTier
    let institutions: Set<String>
    let routing: RoutingTable
    /// County tier: the record rules, built once the catalog is downloaded.
    private var validator: UploadValidator?

    public enum Outcome: Equatable, Sendable {
        case answer([UInt8])
        /// Pass up the `passing` records that passed, `input` (an encoded UploadInput, as this
        /// tier stored it: the request that carries them up splices these bytes in); this tier's
        /// `rejects` join the answer on its way down.
        case forward(passing: Int, input: [UInt8], received: Int32, rejects: [UploadReject])
    }

    public struct Screened: Equatable, Sendable {
        public var outcome: Outcome
        public var tickets = TicketDesk.Effects()
        /// Records went into the national outbox.
        public var queuedForNational = false
    }

    public init(node: DivisionCode, tier: Tier, institutions: Set<String>, routing: RoutingTable) {
        self.node = node
        self.tier = DataTier(tier)
        self.institutions = institutions
        self.routing = routing
    }

    public var storesRecords: Bool { tier == .provincial || tier == .national }

    /// Screens one batch. A batch msgid seen before gets the same decision, counted once.
    ///
    /// `recordsAsReceived`: each record's bytes in the body that came (`WireCodec.uploadRecordRanges`),
    /// stored as they are by the tiers that store records instead of being encoded again.
    public mutating func screen(_ request: WireRequest, receivedAtMs: Int64, nowMs: Int64, catalog: Catalog?,
                                responses: inout ResponseFactory, tickets: inout TicketDesk,
                                store: some UploadStore & TicketStore,
                                recordsAsReceived: [ArraySlice<UInt8>]? = nil) throws -> Screened {
        guard case .upload(let input)? = request.input else {
            let refusal = responses.error(.missingField, detail: "input.upload", requestMsgid: request.msgid,
                                          receivedAtMs: receivedAtMs, nowMs: nowMs)
            return Screened(outcome: .answer(try refusal.serializedBytes()))
        }
        if let stored = try store.uploadBatch(msgid: request.msgid) {
            if let answer = stored.answer { return Screened(outcome: .answer(answer)) }
            // Passed up again as the first time: the same records spliced from the repeat, none
            // screened again. Every record received either passed here or is one of this tier's rejects.
            let rejects = try UploadOutput(serializedBytes: stored.ownRejects).rejects
            guard let input = try passedUpAgain(stored.passedUp, of: input, recordsAsReceived: recordsAsReceived) else {
                let refusal = responses.error(.settlementMismatch, detail: "upload batch \(request.msgid) was received before with other records: send these under a new msgid",
                                              requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
                return Screened(outcome: .answer(try refusal.serializedBytes()))
            }
            return Screened(outcome: .forward(passing: stored.received - rejects.count, input: input,
                                              received: Int32(stored.received), rejects: rejects))
        }
        if tier == .county && validator == nil, let catalog {
            validator = UploadValidator(county: node, institutions: institutions, routing: routing, catalog: catalog)
        }
        var screened = Screened(outcome: .answer([]))
        var rejects: [UploadReject] = []
        var rejectedByRule: [String: Int] = [:]
        var corrections = 0
        var rejectedPositions: [Int] = []
        let asReceived = recordsAsReceived?.count == input.records.count ? recordsAsReceived : nil
        /// Where the passing records were in the batch received (spliced up as they came).
        var passingPositions: [Int] = []
        /// Provincial and national tiers: the records stored, together after the loop.
        var stored: [ArraySlice<UInt8>] = []
        // Each record is read in place: copying one (and again into a batch of those that
        // passed) and destroying the copies cost more than reading its keys.
        let records = input.records
        for position in records.indices {
            let batchIndex = batchIndex(of: records, at: position)
            var violation = tier == .county ? validator?.check(records[position]) : nil
            if violation == nil {
                if try !store.claimUploadRecord(setlID: records[position].setlID) {
                    violation = Violation(rule: UploadRules.duplicate(at: tier), field: "setl_id")
                } else if storesRecords {
                    if let asReceived { stored.append(asReceived[position]) } else { stored.append(ArraySlice(try numbered(records[position], batchIndex).serializedBytes() as [UInt8])) }
                }
            }
            if let violation {
                let record = records[position]
                var reject = UploadReject()
                reject.setlID = record.setlID
                reject.index = batchIndex
                reject.ruleID = violation.rule.id
                reject.field = violation.field
                reject.tier = tier.rawValue
                reject.admdvs = node.value
                rejects.append(reject)
                rejectedPositions.append(position)
                rejectedByRule[violation.rule.id, default: 0] += 1
                if tier != .county {
                    // Found above the county: the uploading county's institution must correct and re-upload.
                    screened.tickets.merge(try tickets.open(.uploadReject, code: violation.rule.id, subject: record.fixmedinsCode,
                                                            responsible: record.mdtrtareaAdmvs, reason: violation.rule.checks,
                                                            setlIDs: [record.setlID], nowMs: nowMs, store: store))
                }
                try store.recordUploadReject(msgid: request.msgid, position: position, batchIndex: batchIndex,
                                             setlID: record.setlID, fixmedinsCode: record.fixmedinsCode, ruleID: violation.rule.id,
                                             field: violation.field, nowMs: nowMs)
            } else {
                if !records[position].correctsSetlID.isEmpty {
                    corrections += 1
                    screened.tickets.merge(try correctionPassed(records[position], nowMs: nowMs, tickets: &tickets, store: store))
                }
                passingPositions.append(position)
            }
        }
        if !stored.isEmpty {
            try store.storeUploadRecords(msgid: request.msgid, input: WireCodec.uploadInput(records: stored, catalogVersion: ""),
                                         records: stored.count, nowMs: nowMs)
            if tier == .provincial {
                try store.enqueueForNational(storedBatch: request.msgid, records: stored.count)
                screened.queuedForNational = true
            }
        }
        try store.addUploadCount("corrections", corrections)
        try store.addUploadCount("received", input.records.count)
        try store.addUploadCount("accepted", passingPositions.count)
        for (rule, count) in rejectedByRule.sorted(by: { $0.key < $1.key }) { try store.addUploadCount(rule, count) }
        var ownRejects = UploadOutput()
        ownRejects.rejects = rejects
        let received = Int32(input.records.count)
        if storesRecords {
            var response = responses.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            response.output = .upload(NodeMachine.output(received: received, accepted: Int32(passingPositions.count), rejects: rejects))
            let body: [UInt8] = try response.serializedBytes()
            try store.saveUploadBatch(msgid: request.msgid, decision: UploadBatchDecision(
                received: input.records.count, ownRejects: try ownRejects.serializedBytes(), passedUp: nil, answer: body))
            screened.outcome = .answer(body)
            return screened
        }
        let forwarded = try passUp(passingPositions, of: input, recordsAsReceived: asReceived)
        try store.saveUploadBatch(msgid: request.msgid, decision: UploadBatchDecision(
            received: input.records.count, ownRejects: try ownRejects.serializedBytes(),
            passedUp: PassedUp(rejectedPositions: rejectedPositions, digest: XXH64.hash(forwarded)), answer: nil))
        screened.outcome = .forward(passing: passingPositions.count, input: forwarded, received: received, rejects: rejects)
        return screened
    }

    /// The encoded `UploadInput` this tier passes up: the records at `passingPositions`. A record
    /// passes up as it came: spliced, not encoded again. The county numbers the records: its
    /// batch_index follows the bytes that came (the last value of a field wins).
    private func passUp(_ passingPositions: [Int], of input: UploadInput, recordsAsReceived asReceived: [ArraySlice<UInt8>]?) throws -> [UInt8] {
        let records = input.records
        if let asReceived {
            return WireCodec.uploadInput(records: passingPositions.map { asReceived[$0] }, batchIndexes: tier != .county ? [] : passingPositions.map {
                records[$0].batchIndex != Int32($0) ? Int32($0) : nil
            }, catalogVersion: input.catalogVersion)
        }
        var passing = UploadInput()
        passing.catalogVersion = input.catalogVersion
        passing.records = passingPositions.map { numbered(records[$0], batchIndex(of: records, at: $0)) }
        return try passing.serializedBytes()
    }

    /// A record's place in the hospital's batch: the county numbers the records, the tiers above read the number.
    private func batchIndex(of records: [UploadRecord], at position: Int) -> Int32 {
        tier == .county ? Int32(position) : records[position].batchIndex
    }

    /// What passed up the first time, rebuilt from a repeat of the batch; nil when the repeat
    /// holds other records than the first (the same msgid used for another batch).
    private func passedUpAgain(_ passedUp: PassedUp?, of input: UploadInput, recordsAsReceived: [ArraySlice<UInt8>]?) throws -> [UInt8]? {
        guard let passedUp else { return nil }
        if let bytes = passedUp.bytes { return bytes }
        let rejected = Set(passedUp.rejectedPositions)
        guard rejected.allSatisfy(input.records.indices.contains) else { return nil }
        let asReceived = recordsAsReceived?.count == input.records.count ? recordsAsReceived : nil
        let again = try passUp(input.records.indices.filter { !rejected.contains($0) }, of: input, recordsAsReceived: asReceived)
        return XXH64.hash(again) == passedUp.digest ? again : nil
    }

    /// `record` with its place in the hospital's batch.
    private func numbered(_ record: UploadRecord, _ batchIndex: Int32) -> UploadRecord {
        var numbered = record
        numbered.batchIndex = batchIndex
        return numbered
    }

    /// A corrected re-upload passed this tier: the reject it names is corrected. Above the
    /// county, where rejects open tickets, the institution's ticket closes (销号) once none of
    /// its rejects here waits for a correction.
    private func correctionPassed(_ record: UploadRecord, nowMs: Int64, tickets: inout TicketDesk,
                                  store: some UploadStore & TicketStore) throws -> TicketDesk.Effects {
        guard try store.markRejectCorrected(setlID: record.correctsSetlID, fixmedinsCode: record.fixmedinsCode, nowMs: nowMs),
              tier != .county, try store.uncorrectedRejects(fixmedinsCode: record.fixmedinsCode) == 0,
              let ticket = try store.openTicket(kind: .uploadReject, subject: record.fixmedinsCode,
                                                responsible: record.mdtrtareaAdmvs, openedBy: node.value)
        else { return TicketDesk.Effects() }
        return try tickets.close(ticket.ticketID, reason: "institution \(record.fixmedinsCode) corrected and re-uploaded its records",
                                 nowMs: nowMs, store: store)
    }
}
