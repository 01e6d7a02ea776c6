import SettlementModel

/// The insured county's desk: settles, reverses and corrects the requests that end here, and
/// numbers the `setl_id`s. Pure apart from its store, which the shell opens inside the round's
/// transaction: whatever the desk writes is durable before its answer leaves.
public struct InsuredCountyDesk: Sendable {
    public let county: DivisionCode
    /// The province's policy; nil on a node that is no county of a province (every request refused).
    public let policy: Policy?
    /// `setl_id`s given so far (the ledger's count after a restart).
    public private(set) var settlementSerial: Int64

    /// What the desk decided about one request.
    public struct Decision: Equatable, Sendable {
        /// The serialized answer, as stored (a repeat gets these bytes again).
        public var answer: [UInt8]
        /// A refusal caused by data this county holds: a ticket for its operator.
        public var ticket: TicketOpening?
        /// What the node logs about it.
        public var note: Note?
    }

    public enum Note: Equatable, Sendable {
        case settlementRefused(msgid: String, code: ErrorCode)
        case correctionReversal(omsgid: String, outcome: String)
    }

    /// A ticket to open, with the fields of `Directive.openTicket`.
    public struct TicketOpening: Equatable, Sendable {
        public var kind: TicketKind
        public var code: String
        public var subject: String
        public var responsible: String
        public var reason: String
    }

    public init(county: DivisionCode, policy: Policy?, settlementSerial: Int64) {
        self.county = county
        self.policy = policy
        self.settlementSerial = settlementSerial
    }

    /// Decides a settlement (2207/2304), reversal (2208/2305) or correction (2601) that ends
    /// here. A msgid already decided gets its stored answer back, whatever it asks now.
    public mutating func decide(_ request: WireRequest, role: TransitRole, receivedAtMs: Int64, nowMs: Int64,
                                responses: inout ResponseFactory, store: some SettlementStore) throws -> Decision {
        func refusal(_ code: ErrorCode, _ detail: String, msgid: String = request.msgid) throws -> Decision {
            let answer = responses.error(code, detail: detail, requestMsgid: msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            return Decision(answer: try answer.serializedBytes())
        }
        if let stored = try store.storedAnswer(msgid: request.msgid) {
            if stored.infno == request.infno { return Decision(answer: stored.response) }
            return try refusal(.settlementMismatch, "msgid already used for infno \(stored.infno)")
        }
        guard let policy else { return try refusal(.wrongNode, "node \(county) has no province policy") }
        let code = TransactionCode(rawValue: request.infno)!
        switch request.input {
        case .settlement(let input)?:
            return try settle(request, input, code: code, policy: policy, role: role, receivedAtMs: receivedAtMs, nowMs: nowMs,
                              responses: &responses, store: store)
        case .reversal(let input)?:
            return try reverse(request, input, code: code, role: role, receivedAtMs: receivedAtMs, nowMs: nowMs,
                               responses: &responses, store: store)
        case .correction(let input)?:
            return try correct(request, input, role: role, receivedAtMs: receivedAtMs, nowMs: nowMs, responses: &responses, store: store)
        default:
            return try refusal(.missingField, "input")
        }
    }

    private mutating func settle(_ request: WireRequest, _ input: SettlementInput, code: TransactionCode, policy: Policy,
                                 role: TransitRole, receivedAtMs: Int64, nowMs: Int64,
                                 responses: inout ResponseFactory, store: some SettlementStore) throws -> Decision {
        let meta = RequestMeta(request)
        switch InsuredCounty.settle(input, code: code, isLocal: role == .local, person: try store.person(input.psnNo), policy: policy) {
        case .settled(let split, let after):
            settlementSerial += 1
            let setlID = ZeroPadded.string(prefix: county.value, [(0, Int(settlementSerial), 14)])
            var response = responses.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            response.output = .settlement(InsuredCounty.output(split, input: input, person: after, setlID: setlID,
                                                               insured: county, nowMs: nowMs))
            let body: [UInt8] = try response.serializedBytes()
            try store.updatePerson(after)
            try store.insertSettled(request: request, split: split, psnNo: input.psnNo, setlID: setlID, nowMs: nowMs, response: body)
            try store.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: nowMs), resolution: false)
            return Decision(answer: body)
        case .refused(let errorCode, let detail):
            let response = responses.error(errorCode, detail: detail, requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            let body: [UInt8] = try response.serializedBytes()
            try store.insertRefused(request: request, errCode: errorCode.rawValue, nowMs: nowMs, response: body)
            try store.recordTransit(TransitRecord(request: meta, response: response, role: role, nowMs: nowMs), resolution: false)
            // Refused because of data this county holds: its registry or filings need a look.
            let ticket = errorCode == .unknownPerson || errorCode == .notFiledOffsite
                ? TicketOpening(kind: .businessRefusal, code: errorCode.rawValue, subject: request.fixmedinsCode,
                                responsible: county.value, reason: errorCode.message)
                : nil
            return Decision(answer: body, ticket: ticket, note: .settlementRefused(msgid: request.msgid, code: errorCode))
        }
    }

    private func reverse(_ request: WireRequest, _ input: ReversalInput, code: TransactionCode, role: TransitRole,
                         receivedAtMs: Int64, nowMs: Int64, responses: inout ResponseFactory,
                         store: some SettlementStore) throws -> Decision {
        if let earlier = try store.successfulReversal(omsgid: input.omsgid) {
            // Already reversed: the same answer again, recorded under this msgid too.
            var again = try WireResponse(serializedBytes: earlier)
            again.reqMsgid = request.msgid
            let body: [UInt8] = try again.serializedBytes()
            try store.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: 1,
                                     nowMs: nowMs, response: body)
            return Decision(answer: body)
        }
        let original = try store.settlement(msgid: input.omsgid)
        let person = try original.map { try store.person($0.psnNo) } ?? nil
        let response: WireResponse
        let infcode: Int32
        switch InsuredCounty.reverse(input, code: code, original: original, person: person) {
        case .reversed(let after):
            var reversed = responses.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            reversed.output = .reversal(InsuredCounty.reversalOutput(original!, person: after))
            try store.updatePerson(after)
            response = reversed
            infcode = 0
        case .refused(let errorCode, let detail):
            response = responses.error(errorCode, detail: detail, requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            infcode = -1
        }
        let body: [UInt8] = try response.serializedBytes()
        try store.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: infcode,
                                 nowMs: nowMs, response: body)
        try store.recordTransit(TransitRecord(request: RequestMeta(request), response: response, role: role, nowMs: nowMs),
                                resolution: false)
        return Decision(answer: body)
    }

    /// Correction reversal (2601): whatever became of `omsgid`, it is not in effect afterwards.
    /// Settled: reversed. Never arrived: a tombstone refuses it should it still arrive. Refused
    /// or already reversed: said so.
    private func correct(_ request: WireRequest, _ input: CorrectionInput, role: TransitRole, receivedAtMs: Int64,
                         nowMs: Int64, responses: inout ResponseFactory, store: some SettlementStore) throws -> Decision {
        guard !input.omsgid.isEmpty, let code = TransactionCode(rawValue: input.oinfno), code.isSettlement else {
            let refusal = responses.error(.missingField, detail: "input.omsgid and input.oinfno (2207 or 2304)",
                                          requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            return Decision(answer: try refusal.serializedBytes())
        }
        var out = CorrectionOutput()
        out.omsgid = input.omsgid
        var infcode: Int32 = 1   // recorded, but not a reversal of money
        switch try store.settlementState(msgid: input.omsgid) {
        case nil:
            let refusal = responses.error(.cancelledByCorrection, detail: "cancelled by correction \(request.msgid)",
                                          requestMsgid: input.omsgid, receivedAtMs: nowMs, nowMs: nowMs)
            try store.insertTombstone(omsgid: input.omsgid, infno: input.oinfno, psnNo: input.psnNo,
                                      mdtrtareaAdmvs: request.mdtrtareaAdmvs, fixmedinsCode: request.fixmedinsCode,
                                      nowMs: nowMs, response: try refusal.serializedBytes())
            out.outcome = "cancelled"
        case let (state, setlID)? where state == "settled":
            out.setlID = setlID
            let original = try store.settlement(msgid: input.omsgid)
            let person = try original.map { try store.person($0.psnNo) } ?? nil
            var reversal = ReversalInput()
            reversal.omsgid = input.omsgid
            guard case .reversed(let after) = InsuredCounty.reverse(reversal, code: code.reversalCode!, original: original, person: person) else {
                let refusal = responses.error(.settlementMismatch, detail: "settlement \(input.omsgid) cannot be reversed",
                                              requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
                return Decision(answer: try refusal.serializedBytes())
            }
            try store.updatePerson(after)
            infcode = 0
            out.outcome = "reversed"
        case let (state, setlID)?:
            out.setlID = setlID
            out.outcome = state   // "reversed" already, or "refused"
        }
        var response = responses.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.output = .correction(out)
        let body: [UInt8] = try response.serializedBytes()
        try store.insertReversal(msgid: request.msgid, omsgid: input.omsgid, infno: request.infno, infcode: infcode,
                                 nowMs: nowMs, response: body)
        try store.recordTransit(TransitRecord(request: RequestMeta(request), response: response, role: role, nowMs: nowMs),
                                resolution: false)
        return Decision(answer: body, note: .correctionReversal(omsgid: input.omsgid, outcome: out.outcome))
    }
}
