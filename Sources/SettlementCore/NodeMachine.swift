import SettlementModel

/// Who a message came from, or goes to, as a node sees it.
public enum Peer: Hashable, Sendable {
    /// This node's parent, over the node's upstream DEALER socket.
    case parent
    /// A child node or a hospital, by its routing id on this node's ROUTER socket.
    case downstream([UInt8])
}

/// A node's part in one settlement's route.
public enum TransitRole: String, Sendable {
    case origin    // the county where the hospital sits; the person is insured elsewhere
    case relay     // a city, province or national node on the path
    case insured   // the county where the person is insured; the authoritative split
    case local     // both origin and insured: a same-county settlement
}

/// The final state of a settlement as one tier records it.
public enum TransitState: String, Sendable {
    case settled, refused, reversed
    /// An indefinite outcome: this tier gave up waiting; the settlement may have happened.
    case unknown
}

/// What a tier writes to its ledger when an answer passes through it.
public struct TransitRecord: Equatable, Sendable {
    public var msgid: String
    public var infno: String
    public var role: TransitRole
    public var mdtrtareaAdmvs: String
    public var insuplcAdmdvs: String
    public var fixmedinsCode: String
    /// For a reversal: the msgid of the settlement it reverses.
    public var omsgid: String
    public var setlID: String
    public var medfeeSumamt: Int64
    public var fundPaySumamt: Int64
    public var acctPay: Int64
    public var psnCashPay: Int64
    public var infcode: Int32
    public var errCode: String
    public var state: TransitState
    public var recordedAtMs: Int64

    public init(request meta: RequestMeta, response: WireResponse, role: TransitRole, nowMs: Int64) {
        msgid = meta.msgid
        infno = meta.infno
        self.role = role
        mdtrtareaAdmvs = meta.mdtrtareaAdmvs
        insuplcAdmdvs = meta.insuplcAdmdvs
        fixmedinsCode = meta.fixmedinsCode
        omsgid = meta.omsgid
        infcode = response.infcode
        errCode = response.errCode
        recordedAtMs = nowMs
        setlID = ""
        medfeeSumamt = 0; fundPaySumamt = 0; acctPay = 0; psnCashPay = 0
        switch response.output {
        case .settlement(let out)?:
            setlID = out.setlID
            medfeeSumamt = out.medfeeSumamt
            fundPaySumamt = out.fundPaySumamt
            acctPay = out.acctPay
            psnCashPay = out.psnCashPay
        case .reversal(let out)?:
            setlID = out.setlID
            medfeeSumamt = out.medfeeSumamt
            fundPaySumamt = out.fundPaySumamt
            acctPay = out.acctPay
        default: break
        }
        if response.infcode == 0 && response.errMsg.isEmpty {
            state = meta.isReversal ? .reversed : .settled
        } else {
            state = response.errCode == ErrorCode.timeout.rawValue ? .unknown : .refused
        }
    }
}

/// The parts of a request a tier keeps while it waits for the answer.
public struct RequestMeta: Equatable, Sendable {
    public var msgid: String
    public var infno: String
    public var mdtrtareaAdmvs: String
    public var insuplcAdmdvs: String
    public var fixmedinsCode: String
    public var omsgid: String
    public var isReversal: Bool

    public init(_ request: WireRequest) {
        msgid = request.msgid
        infno = request.infno
        mdtrtareaAdmvs = request.mdtrtareaAdmvs
        insuplcAdmdvs = request.insuplcAdmdvs
        fixmedinsCode = request.fixmedinsCode
        if case .reversal(let input)? = request.input { omsgid = input.omsgid } else { omsgid = "" }
        isReversal = TransactionCode(rawValue: request.infno)?.isReversal ?? false
    }
}

/// What the shell must do, in order, after feeding an event to the machine.
public enum Directive: Equatable, Sendable {
    /// Send a request on to `peer` now.
    case forward(WireRequest, to: Peer)
    /// Make `record` durable (if any), then send the answer to `peer`.
    case answer(WireResponse, to: Peer, record: TransitRecord?)
    /// This node is the insured county: settle or reverse against the ledger, then answer.
    case settleHere(WireRequest, replyTo: Peer, role: TransitRole, receivedAtMs: Int64)
    /// An upload batch (4101) arrived: check it at this tier against the ledger; then pass the
    /// records that passed up (`forwardUpload`) or, at the provincial and national tiers, store them.
    case screenUpload(WireRequest, replyTo: Peer, receivedAtMs: Int64)
}

/// One node's settlement routing as a pure state machine: requests in, directives out.
/// It holds the pending table (what was forwarded and who waits for the answer) and the
/// sign-in state; it does no I/O and reads no clock: every event carries `nowMs`.
public struct NodeMachine: Sendable {
    public struct Configuration: Sendable {
        public var id: DivisionCode
        public var tier: Tier
        public var routing: RoutingTable
        /// Institution codes registered at this county (empty above county tier).
        public var institutions: Set<String>
        /// How long a forwarded request may wait for its answer before the waiter gets an
        /// indefinite timeout answer.
        public var forwardTimeoutMs: Int64
        /// Most requests waiting for answers at once; beyond it new ones are refused as busy.
        public var pendingLimit: Int
        /// How often an unanswered sign-in (or catalog download) is sent again.
        public var signInRetryMs: Int64
        /// The national node's catalog; every other node downloads it from its parent (1301).
        public var nationalCatalog: Catalog?

        public init(id: DivisionCode, tier: Tier, routing: RoutingTable, institutions: Set<String> = [],
                    forwardTimeoutMs: Int64 = 10_000, pendingLimit: Int = 100_000, signInRetryMs: Int64 = 1_000,
                    nationalCatalog: Catalog? = nil) {
            self.id = id
            self.tier = tier
            self.routing = routing
            self.institutions = institutions
            self.forwardTimeoutMs = forwardTimeoutMs
            self.pendingLimit = pendingLimit
            self.signInRetryMs = signInRetryMs
            self.nationalCatalog = nationalCatalog
        }
    }

    struct Pending: Sendable {
        var meta: RequestMeta
        var waiters: [Peer]
        /// Where the request went: only that peer may answer it.
        var forwardedTo: Peer
        var role: TransitRole
        var receivedAtMs: Int64
        var deadlineMs: Int64
        /// For an upload: what this tier refused and how many records it received, merged
        /// into the answer on its way down.
        var upload: (received: Int32, rejects: [UploadReject])?
    }

    public let config: Configuration
    private var pending: [String: Pending] = [:]
    private var responseSerial: UInt64 = 0
    private var signInSequence = 0
    private var signInMsgid: String?
    private var lastSignInSentMs: Int64?
    public private(set) var signNo: String?
    public private(set) var signedInChildren: Set<DivisionCode> = []
    public private(set) var isDraining = false
    public private(set) var catalog: Catalog?
    private var catalogMsgid: String?
    private var lastCatalogRequestMs: Int64?

    public init(config: Configuration) {
        self.config = config
        childIDs = Dictionary(uniqueKeysWithValues: config.routing.nodeIDs
            .filter { config.routing.parent(of: $0) == config.id }
            .map { (Array($0.value.utf8), $0) })
        if config.routing.parent(of: config.id) == nil { signNo = "ROOT" + config.id.value }
        catalog = config.nationalCatalog
    }

    public var isSignedIn: Bool { signNo != nil }
    /// Signed in and holding the catalog: ready for settlements and uploads.
    public var isReady: Bool { signNo != nil && catalog != nil }
    public var pendingCount: Int { pending.count }
    /// This node's children by the routing id they present on its ROUTER (their code's bytes).
    private let childIDs: [[UInt8]: DivisionCode]

    // MARK: Events

    /// Time passes: sign in (again) when needed, and answer requests whose wait ran out.
    public mutating func tick(nowMs: Int64) -> [Directive] {
        var directives: [Directive] = []
        if signNo == nil, lastSignInSentMs.map({ nowMs - $0 >= config.signInRetryMs }) ?? true {
            directives.append(makeSignIn(nowMs: nowMs))
        }
        if signNo != nil, catalog == nil, lastCatalogRequestMs.map({ nowMs - $0 >= config.signInRetryMs }) ?? true {
            directives.append(makeCatalogRequest(nowMs: nowMs))
        }
        let expired = pending.filter { $0.value.deadlineMs <= nowMs }
        for (msgid, entry) in expired.sorted(by: { $0.key < $1.key }) {
            pending[msgid] = nil
            let response = error(.timeout, detail: "node \(config.id) waited \(config.forwardTimeoutMs) ms",
                                 requestMsgid: msgid, receivedAtMs: entry.receivedAtMs, nowMs: nowMs)
            let record = entry.upload == nil ? TransitRecord(request: entry.meta, response: response, role: entry.role, nowMs: nowMs) : nil
            for (index, waiter) in entry.waiters.enumerated() {
                directives.append(.answer(response, to: waiter, record: index == 0 ? record : nil))
            }
        }
        return directives
    }

    /// The earliest time `tick` has something to do, so the shell can sleep until then.
    public func nextDeadlineMs(nowMs: Int64) -> Int64 {
        var next = pending.values.lazy.map(\.deadlineMs).min() ?? nowMs + 1_000
        if signNo == nil { next = min(next, lastSignInSentMs.map { $0 + config.signInRetryMs } ?? nowMs) }
        if signNo != nil && catalog == nil { next = min(next, lastCatalogRequestMs.map { $0 + config.signInRetryMs } ?? nowMs) }
        return next
    }

    /// Stop taking new work from hospitals and children; answers in flight still pass.
    public mutating func beginDraining() { isDraining = true }

    public mutating func receivedRequest(_ request: WireRequest, from peer: Peer, nowMs: Int64) -> [Directive] {
        if let problem = validate(request, from: peer) {
            return [.answer(error(problem.code, detail: problem.detail, requestMsgid: request.msgid,
                                  receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
        }
        let code = TransactionCode(rawValue: request.infno)!
        if code == .signIn { return [signInAnswer(request, from: peer, nowMs: nowMs)] }
        if code == .catalogDownload { return [catalogAnswer(request, from: peer, nowMs: nowMs)] }

        let fromChild: Bool
        switch peer {
        case .parent: fromChild = false
        case .downstream(let id): fromChild = childIDs[id] != nil
        }
        let fromHospital = !fromChild && peer != .parent
        if isDraining && peer != .parent {
            return [.answer(error(.shuttingDown, detail: "node \(config.id)", requestMsgid: request.msgid,
                                  receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
        }
        if code == .upload {
            guard catalog != nil else {
                return [.answer(error(.catalogNotLoaded, detail: "node \(config.id)", requestMsgid: request.msgid,
                                      receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
            }
            if pending[request.msgid] != nil { return [] }   // the same batch again while it is still out
            return [.screenUpload(request, replyTo: peer, receivedAtMs: nowMs)]
        }
        let insured = DivisionCode(request.insuplcAdmdvs)!
        guard let hop = config.routing.nextHop(from: config.id, to: insured) else {
            return [.answer(error(.badDivision, detail: "insuplc_admdvs \(request.insuplcAdmdvs)",
                                  requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
        }
        switch hop {
        case .here:
            return [.settleHere(request, replyTo: peer, role: fromHospital ? .local : .insured, receivedAtMs: nowMs)]
        case .parent, .child:
            if var existing = pending[request.msgid] {
                // The same msgid again while the first is still out: one answer serves both.
                if !existing.waiters.contains(peer) { existing.waiters.append(peer) }
                pending[request.msgid] = existing
                return []
            }
            guard pending.count < config.pendingLimit else {
                return [.answer(error(.busy, detail: "node \(config.id) has \(pending.count) requests pending",
                                      requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
            }
            if hop == .parent && peer == .parent {
                // A request from the parent must go down; routing up again would loop.
                return [.answer(error(.wrongNode, detail: "node \(config.id) is not on the path to \(insured)",
                                      requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
            }
            let target: Peer = if case .child(let child) = hop { .downstream(Array(child.value.utf8)) } else { .parent }
            pending[request.msgid] = Pending(meta: RequestMeta(request), waiters: [peer], forwardedTo: target,
                                             role: fromHospital ? .origin : .relay,
                                             receivedAtMs: nowMs, deadlineMs: nowMs + config.forwardTimeoutMs)
            return [.forward(request, to: target)]
        }
    }

    public mutating func receivedResponse(_ response: WireResponse, from peer: Peer, nowMs: Int64) -> [Directive] {
        if let signInMsgid, response.reqMsgid == signInMsgid, peer == .parent {
            if response.infcode == 0, case .signIn(let out)? = response.output {
                signNo = out.signNo
                self.signInMsgid = nil
            }
            return []
        }
        if let catalogMsgid, response.reqMsgid == catalogMsgid, peer == .parent {
            if response.infcode == 0, case .catalog(let out)? = response.output {
                catalog = Catalog(out)
                self.catalogMsgid = nil
            }
            return []
        }
        // Only the peer the request went to may answer it: a late answer finds nobody waiting,
        // and an answer from anyone else (a hospital forging one) is ignored.
        guard let entry = pending[response.reqMsgid], entry.forwardedTo == peer else { return [] }
        pending[response.reqMsgid] = nil
        if let upload = entry.upload {
            let merged = Self.merge(upload, into: response)
            return entry.waiters.map { .answer(merged, to: $0, record: nil) }
        }
        let record = TransitRecord(request: entry.meta, response: response, role: entry.role, nowMs: nowMs)
        return entry.waiters.enumerated().map { index, waiter in
            .answer(response, to: waiter, record: index == 0 ? record : nil)
        }
    }

    /// The shell could not hand a forwarded request to its next hop (not connected): the
    /// request was certainly not delivered, so the waiters get a definite answer.
    public mutating func forwardFailed(msgid: String, nowMs: Int64) -> [Directive] {
        guard let entry = pending.removeValue(forKey: msgid) else { return [] }
        let response = error(.unreachable, detail: "node \(config.id) could not reach the next hop",
                             requestMsgid: msgid, receivedAtMs: entry.receivedAtMs, nowMs: nowMs)
        let record = entry.upload == nil ? TransitRecord(request: entry.meta, response: response, role: entry.role, nowMs: nowMs) : nil
        return entry.waiters.enumerated().map { index, waiter in
            .answer(response, to: waiter, record: index == 0 ? record : nil)
        }
    }

    /// Answers of every still-pending request with an indefinite timeout (used when the node
    /// stops before their answers came back).
    public mutating func abandonPending(nowMs: Int64) -> [Directive] {
        for key in pending.keys { pending[key]?.deadlineMs = nowMs }
        let saved = signNo
        signNo = signNo ?? "STOPPING"  // no sign-in retry while stopping
        defer { signNo = saved }
        return tick(nowMs: nowMs)
    }

    // MARK: Uploads

    /// After this tier screened a batch (and recorded its decision): pass what passed up to the
    /// parent, remembering this tier's rejects for the answer. When nothing passed, answer now.
    public mutating func forwardUpload(_ request: WireRequest, passing: UploadInput, received: Int32,
                                       rejects: [UploadReject], replyTo peer: Peer, receivedAtMs: Int64, nowMs: Int64) -> [Directive] {
        if passing.records.isEmpty || config.routing.parent(of: config.id) == nil {
            var response = success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            response.output = .upload(Self.output(received: received, accepted: 0, rejects: rejects))
            return [.answer(response, to: peer, record: nil)]
        }
        guard pending.count < config.pendingLimit else {
            return [.answer(error(.busy, detail: "node \(config.id) has \(pending.count) requests pending",
                                  requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs), to: peer, record: nil)]
        }
        var upward = request
        upward.input = .upload(passing)
        pending[request.msgid] = Pending(meta: RequestMeta(request), waiters: [peer], forwardedTo: .parent, role: .relay,
                                         receivedAtMs: receivedAtMs, deadlineMs: nowMs + config.forwardTimeoutMs,
                                         upload: (received, rejects))
        return [.forward(upward, to: .parent)]
    }

    /// The answer of the tier that stored a batch (provincial, national).
    public mutating func uploadStored(_ request: WireRequest, received: Int32, accepted: Int32, rejects: [UploadReject],
                                      receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        var response = success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.output = .upload(Self.output(received: received, accepted: accepted, rejects: rejects))
        return response
    }

    static func output(received: Int32, accepted: Int32, rejects: [UploadReject]) -> UploadOutput {
        var out = UploadOutput()
        out.received = received
        out.accepted = accepted
        out.rejected = Int32(rejects.count)
        out.rejects = rejects
        return out
    }

    /// This tier's rejects joined to the answer from above; errors from above pass unchanged.
    static func merge(_ upload: (received: Int32, rejects: [UploadReject]), into response: WireResponse) -> WireResponse {
        guard response.infcode == 0, case .upload(var out)? = response.output else { return response }
        var merged = response
        out.rejects = upload.rejects + out.rejects
        out.rejected = Int32(out.rejects.count)
        out.received = upload.received
        merged.output = .upload(out)
        return merged
    }

    // MARK: Answers

    /// A success answer with this node's response envelope.
    public mutating func success(requestMsgid: String, receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        var response = envelope(requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.infcode = 0
        return response
    }

    /// A failure answer: infcode -1, err_msg in the interface's FSI format.
    public mutating func error(_ code: ErrorCode, detail: String? = nil, requestMsgid: String,
                               receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        var response = envelope(requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.infcode = -1
        response.errMsg = code.errMsg(detail: detail)
        response.errCode = code.rawValue
        return response
    }

    private mutating func envelope(requestMsgid: String, receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        responseSerial &+= 1
        var response = WireResponse()
        response.reqMsgid = requestMsgid
        response.infRefmsgid = MessageID.response(division: config.id.value, unixMs: nowMs, serial: responseSerial)
        response.refmsgTime = CivilTime(unixMs: receivedAtMs).compactMillis
        response.respondTime = CivilTime(unixMs: nowMs).compactMillis
        return response
    }

    // MARK: Sign-in

    private mutating func makeSignIn(nowMs: Int64) -> Directive {
        signInSequence += 1
        lastSignInSentMs = nowMs
        var request = WireRequest()
        request.infno = TransactionCode.signIn.rawValue
        // Nodes are not institutions: the msgid's 12-char prefix is "N" + division + "00000".
        request.msgid = MessageID.request(institution: "N\(config.id.value)00000", unixMs: nowMs, sequence: signInSequence)
        request.mdtrtareaAdmvs = config.id.value
        request.insuplcAdmdvs = config.id.value
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: nowMs).readable
        var input = SignInInput()
        input.nodeID = config.id.value
        input.opterNo = config.id.value
        request.input = .signIn(input)
        signInMsgid = request.msgid
        return .forward(request, to: .parent)
    }

    private mutating func signInAnswer(_ request: WireRequest, from peer: Peer, nowMs: Int64) -> Directive {
        guard case .downstream(let id) = peer, let child = childIDs[id] else {
            return .answer(error(.wrongNode, detail: "only child nodes sign in at node \(config.id)",
                                 requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)
        }
        signedInChildren.insert(child)
        var response = success(requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs)
        var out = SignInOutput()
        out.signNo = "\(config.id.value)-\(child.value)-\(nowMs)"
        out.signTime = CivilTime(unixMs: nowMs).readable
        response.output = .signIn(out)
        return .answer(response, to: peer, record: nil)
    }

    private mutating func makeCatalogRequest(nowMs: Int64) -> Directive {
        signInSequence += 1
        lastCatalogRequestMs = nowMs
        var request = WireRequest()
        request.infno = TransactionCode.catalogDownload.rawValue
        request.msgid = MessageID.request(institution: "N\(config.id.value)00000", unixMs: nowMs, sequence: signInSequence)
        request.mdtrtareaAdmvs = config.id.value
        request.insuplcAdmdvs = config.id.value
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: nowMs).readable
        request.input = .catalog(CatalogInput())
        catalogMsgid = request.msgid
        return .forward(request, to: .parent)
    }

    private mutating func catalogAnswer(_ request: WireRequest, from peer: Peer, nowMs: Int64) -> Directive {
        guard case .downstream(let id) = peer, childIDs[id] != nil else {
            return .answer(error(.wrongNode, detail: "only child nodes download the catalog from node \(config.id)",
                                 requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)
        }
        guard let catalog else {
            return .answer(error(.catalogNotLoaded, detail: "node \(config.id)", requestMsgid: request.msgid,
                                 receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)
        }
        var response = success(requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs)
        response.output = .catalog(catalog.output)
        return .answer(response, to: peer, record: nil)
    }

    // MARK: Validation

    struct Problem { var code: ErrorCode; var detail: String }

    /// Checks what every tier can check of an envelope; the insured county checks the rest.
    func validate(_ request: WireRequest, from peer: Peer) -> Problem? {
        guard let code = TransactionCode(rawValue: request.infno) else {
            return Problem(code: .unknownTransaction, detail: "infno \"\(request.infno.prefix(8))\" at node \(config.id)")
        }
        if request.msgid.isEmpty || request.msgid.utf8.count > 64 {
            return Problem(code: .missingField, detail: "msgid (1 to 64 characters)")
        }
        switch (code, request.input) {
        case (.signIn, .signIn?), (.catalogDownload, .catalog?): return nil
        case (.upload, .upload?):
            // A hospital uploads from its county; a provincial tier's batch for the national
            // store names the province.
            guard let treatment = DivisionCode(request.mdtrtareaAdmvs), config.routing.contains(treatment) else {
                return Problem(code: .badDivision, detail: "mdtrtarea_admvs \"\(request.mdtrtareaAdmvs.prefix(8))\" is not a node of this network")
            }
            return hospitalProblem(request, treatment: treatment, from: peer)
        case (.outpatientSettlement, .settlement?), (.inpatientSettlement, .settlement?),
             (.outpatientReversal, .reversal?), (.inpatientReversal, .reversal?): break
        default:
            return Problem(code: .missingField, detail: "input for infno \(request.infno)")
        }
        guard let treatment = DivisionCode(request.mdtrtareaAdmvs), config.routing.tier(of: treatment) == .county else {
            return Problem(code: .badDivision, detail: "mdtrtarea_admvs \"\(request.mdtrtareaAdmvs.prefix(8))\" is not a county of this network")
        }
        guard let insured = DivisionCode(request.insuplcAdmdvs), config.routing.tier(of: insured) == .county else {
            return Problem(code: .badDivision, detail: "insuplc_admdvs \"\(request.insuplcAdmdvs.prefix(8))\" is not a county of this network")
        }
        _ = insured
        return hospitalProblem(request, treatment: treatment, from: peer)
    }

    /// What a hospital (a downstream peer that is not a child node) may not do.
    func hospitalProblem(_ request: WireRequest, treatment: DivisionCode, from peer: Peer) -> Problem? {
        if case .downstream(let id) = peer, childIDs[id] == nil {
            // A hospital: it may only talk to the county where it sits.
            guard config.tier == .county, treatment == config.id else {
                return Problem(code: .wrongNode, detail: "mdtrtarea_admvs \(treatment) is not served by node \(config.id)")
            }
            guard config.institutions.contains(request.fixmedinsCode) else {
                return Problem(code: .unknownInstitution, detail: "fixmedins_code \"\(request.fixmedinsCode.prefix(16))\" at node \(config.id)")
            }
            // msgid = fixmedins_code (12) + yyyyMMddHHmmss (14) + sequence (4): a hospital can
            // only ever name its own messages, so idempotency by msgid cannot leak another's answer.
            guard request.msgid.utf8.count == 30, request.msgid.hasPrefix(request.fixmedinsCode) else {
                return Problem(code: .missingField, detail: "msgid must be 30 characters beginning with fixmedins_code")
            }
        }
        return nil
    }
}
