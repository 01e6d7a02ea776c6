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
    /// How long the request was at and beyond this tier, as this tier timed it: from its arrival
    /// here to the answer's record, in µs (0 where not timed: the tier that decides answers in
    /// the turn the request arrives). Between two tiers of a path, the difference is the hop.
    public var heldUs: Int64 = 0
    /// For a correction reversal (2601): what became of the settlement (reversed, cancelled, refused).
    public var correctionOutcome: String = ""
    /// For a reversal or correction: the transaction code of the settlement it concerns.
    public var oinfno: String
    /// Kept at the origin county only (which holds it for its resolutions anyway): after a crash
    /// a request still in flight is resolved by a correction that names the person.
    public var psnNo: String

    public init(request meta: RequestMeta, response: WireResponse, role: TransitRole, nowMs: Int64) {
        msgid = meta.msgid
        infno = meta.infno
        self.role = role
        mdtrtareaAdmvs = meta.mdtrtareaAdmvs
        insuplcAdmdvs = meta.insuplcAdmdvs
        fixmedinsCode = meta.fixmedinsCode
        omsgid = meta.omsgid
        oinfno = meta.oinfno
        psnNo = role == .origin ? meta.psnNo : ""
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
        case .correction(let out)?:
            setlID = out.setlID
            correctionOutcome = out.outcome
        default: break
        }
        if response.infcode == 0 && response.errMsg.isEmpty {
            state = meta.isReversal || meta.infno == TransactionCode.correction.rawValue ? .reversed : .settled
        } else {
            state = response.errCode == ErrorCode.timeout.rawValue ? .unknown : .refused
        }
    }

    /// The origin county's record that a hospital's request is out, written before it is sent:
    /// should the node crash before the answer is back, the request is known to be in doubt
    /// (an answer arriving after the restart finds nobody waiting) and is resolved by correction.
    public init(inFlight meta: RequestMeta, nowMs: Int64) {
        self.init(request: meta, response: WireResponse(), role: .origin, nowMs: nowMs)
        state = .unknown
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
    public var psnNo: String = ""
    /// For a reversal or correction: the transaction code of the settlement it concerns.
    public var oinfno: String = ""

    public init(omsgid: String, infno: String, treatment: String, insured: String, fixmedinsCode: String) {
        msgid = omsgid
        self.infno = infno
        mdtrtareaAdmvs = treatment
        insuplcAdmdvs = insured
        self.fixmedinsCode = fixmedinsCode
        self.omsgid = ""
        isReversal = false
    }

    /// The request a transit record is of (a round that could not record it).
    public init(_ record: TransitRecord) {
        msgid = record.msgid
        infno = record.infno
        mdtrtareaAdmvs = record.mdtrtareaAdmvs
        insuplcAdmdvs = record.insuplcAdmdvs
        fixmedinsCode = record.fixmedinsCode
        omsgid = record.omsgid
        isReversal = !record.omsgid.isEmpty
        psnNo = record.psnNo
        oinfno = record.oinfno
    }

    public init(_ request: WireRequest) {
        msgid = request.msgid
        infno = request.infno
        mdtrtareaAdmvs = request.mdtrtareaAdmvs
        insuplcAdmdvs = request.insuplcAdmdvs
        fixmedinsCode = request.fixmedinsCode
        switch request.input {
        case .reversal(let input)?:
            omsgid = input.omsgid; psnNo = input.psnNo
            oinfno = TransactionCode(rawValue: request.infno)?.settlementCode?.rawValue ?? ""
        case .correction(let input)?: omsgid = input.omsgid; psnNo = input.psnNo; oinfno = input.oinfno
        case .settlement(let input)?: omsgid = ""; psnNo = input.psnNo
        default: omsgid = ""
        }
        isReversal = TransactionCode(rawValue: request.infno)?.isReversal ?? false
    }
}

/// What the shell must do, in order, after feeding an event to the machine.
/// The cases that carry a transit record or a decoded message are `indirect`: a directive is
/// copied several times on its way through a turn (the round's list, the commit's work), and a
/// boxed payload copies as one reference count instead of a dozen (a third of a relay's copying
/// went to them, callgrind).
public enum Directive: Equatable, Sendable {
    /// Send a request on to `peer` now.
    indirect case forward(WireRequest, to: Peer)
    /// Origin county, a hospital's request that moves money: make `inFlight` durable, then send
    /// the request to `peer` (so that no crash can leave it out there without this node knowing).
    indirect case journalAndForward(WireRequest, to: Peer, inFlight: TransitRecord)
    /// Make `record` durable (if any), then send the answer to `peer`.
    indirect case answer(WireResponse, to: Peer, record: TransitRecord?)
    /// This node is the insured county: settle or reverse against the ledger, then answer.
    indirect case settleHere(WireRequest, replyTo: Peer, role: TransitRole, receivedAtMs: Int64)
    /// An upload batch (4101) arrived: check it at this tier against the ledger; then pass the
    /// records that passed up (`forwardUpload`) or, at the provincial and national tiers, store them.
    case screenUpload(WireRequest, replyTo: Peer, receivedAtMs: Int64)
    /// Persist this origin county's resolution of a settlement in doubt (started or rescheduled).
    case resolution(NodeMachine.Resolution)
    /// A settlement in doubt is resolved: record its final state and keep the final answer for
    /// the hospital, who asks again with the same msgid.
    indirect case resolved(NodeMachine.Resolution, finalAnswer: WireResponse, record: TransitRecord)
    /// Origin county: a hospital asks again about a settlement resolved by correction. Read its
    /// final answer from the ledger and send it, byte for byte.
    case finalAnswer(msgid: String, to: Peer, receivedAtMs: Int64)
    /// A ticket event addressed to this node (it is the responsible node or the registry).
    case ticketHere(WireRequest, replyTo: Peer, receivedAtMs: Int64)
    /// Something needs someone's action: open (or count again) a ticket.
    case openTicket(kind: TicketKind, code: String, subject: String, responsible: String, reason: String)
    /// The parent has said nothing while this node's requests to it went unanswered: drop the
    /// connection and dial it again. A link can look connected and lead nowhere (another
    /// process that presented this node's routing id took it over at the parent), and only a
    /// new connection takes it back.
    case redialParent(reason: String)
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
        /// The time budget of a request that carries none (`budget_ms` 0): how long its sender
        /// may wait. Each hop keeps `hopReserveMs` to answer back and forwards the rest.
        public var forwardTimeoutMs: Int64
        /// What each hop keeps of a request's budget to get its answer back in time.
        public var hopReserveMs: Int64 = 100
        /// Retries of a correction reversal (2601) back off from 1 s, doubling, to this.
        public var correctionBackoffMaxMs: Int64 = 8_000
        /// Most requests waiting for answers at once; beyond it new ones are refused as busy.
        public var pendingLimit: Int
        /// How often an unanswered sign-in (or catalog download) is sent again.
        public var signInRetryMs: Int64
        /// Unanswered sign-ins in a row before the parent link is dialled again.
        public var signInsBeforeRedial = 3
        /// The national node's catalog; every other node downloads it from its parent (1301).
        public var nationalCatalog: Catalog?

        public init(id: DivisionCode, tier: Tier, routing: RoutingTable, institutions: Set<String> = [],
                    forwardTimeoutMs: Int64 = 8_000, pendingLimit: Int = 100_000, signInRetryMs: Int64 = 1_000,
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
        /// For a correction reversal this node sent itself: the settlement it resolves.
        var resolving: String?
        /// A ticket event passing through: no transit record, no ticket about itself.
        var isTicket = false
        /// `clockUs` when it arrived (`addPending`): what `TransitRecord.heldUs` counts from.
        var receivedAtUs: Int64 = 0
    }

    /// A settlement whose outcome this origin county does not know: it sends correction
    /// reversals (2601) until one comes back definite.
    public struct Resolution: Equatable, Sendable {
        public var omsgid: String
        public var oinfno: String
        public var psnNo: String
        public var insured: String
        public var treatment: String
        public var fixmedinsCode: String
        public var attempts: Int
        public var nextAttemptMs: Int64

        public init(omsgid: String, oinfno: String, psnNo: String, insured: String, treatment: String,
                    fixmedinsCode: String, attempts: Int = 0, nextAttemptMs: Int64) {
            self.omsgid = omsgid
            self.oinfno = oinfno
            self.psnNo = psnNo
            self.insured = insured
            self.treatment = treatment
            self.fixmedinsCode = fixmedinsCode
            self.attempts = attempts
            self.nextAttemptMs = nextAttemptMs
        }

        /// The correction's msgid: the same on every attempt, so a retry is never applied twice.
        public var correctionMsgid: String { Self.correctionMsgid(of: omsgid) }
        public static func correctionMsgid(of omsgid: String) -> String { "CR" + omsgid }

        /// The resolution a request in doubt at the origin calls for: of the settlement itself,
        /// or, for a reversal or correction, of the settlement it concerns (a correction then
        /// takes it out of effect, which is what the hospital asked for). Nil for anything else.
        public init?(concerning meta: RequestMeta, nowMs: Int64) {
            guard let code = TransactionCode(rawValue: meta.infno), code.movesMoney else { return nil }
            let omsgid = code.isSettlement ? meta.msgid : meta.omsgid
            let oinfno = code.isSettlement ? meta.infno : meta.oinfno
            guard !omsgid.isEmpty, TransactionCode(rawValue: oinfno)?.isSettlement == true else { return nil }
            self.init(omsgid: omsgid, oinfno: oinfno, psnNo: meta.psnNo, insured: meta.insuplcAdmdvs,
                      treatment: meta.mdtrtareaAdmvs, fixmedinsCode: meta.fixmedinsCode, nextAttemptMs: nowMs)
        }
    }

    public let config: Configuration
    private var pending: [String: Pending] = [:]
    /// No pending request expires before this (it may be earlier than the true minimum when the
    /// earliest entry was answered; a scan then recomputes it). Keeps `tick` off the whole table.
    private var earliestDeadlineMs: Int64 = .max
    /// This node's answers; the shell lends it to the desks, so that every answer is numbered in one series.
    public var responses: ResponseFactory
    private var signInSequence = 0
    private var signInMsgid: String?
    private var lastSignInSentMs: Int64?
    public private(set) var signNo: String?
    public private(set) var signedInChildren: Set<DivisionCode> = []
    public private(set) var isDraining = false
    public private(set) var catalog: Catalog? {
        didSet {
            holdsCatalog = catalog != nil
            catalogOutput = nil
        }
    }
    /// The catalog as the children download it, sorted once: sorting its 2,000 codes for
    /// every child's download was seconds of a national network's start.
    private var catalogOutput: CatalogOutput?
    /// Whether `catalog` is set, asked on every turn: comparing the optional with nil copied
    /// the whole catalog each time.
    private var holdsCatalog = false
    /// Settlements in doubt at this origin county, by msgid.
    public private(set) var resolutions: [String: Resolution] = [:]
    /// Settlements this origin county resolved: the hospital asking again gets the final answer.
    public private(set) var resolved: Set<String> = []
    private var catalogMsgid: String?
    private var lastCatalogRequestMs: Int64?
    /// When the parent last sent anything (request or answer): a silent parent is redialled.
    private var lastHeardFromParentMs: Int64 = .min
    /// Sign-ins sent since the parent last said anything.
    private var signInsUnheard = 0
    private var lastRedialMs: Int64?
    /// Stopping: the pending answers are being abandoned, no link is worth dialling again.
    private var isStopping = false

    public init(config: Configuration) {
        self.config = config
        responses = ResponseFactory(division: config.id)
        childIDs = Dictionary(uniqueKeysWithValues: config.routing.nodeIDs
            .filter { config.routing.parent(of: $0) == config.id }
            .map { (Array($0.value.utf8), $0) })
        parentID = config.routing.parent(of: config.id)?.value
        if parentID == nil { signNo = "ROOT" + config.id.value }
        catalog = config.nationalCatalog
        holdsCatalog = catalog != nil   // didSet does not run in init
    }

    public var isSignedIn: Bool { signNo != nil }
    /// Signed in and holding the catalog: ready for settlements and uploads.
    public var isReady: Bool { signNo != nil && holdsCatalog }
    public var pendingCount: Int { pending.count }

    /// The instant of `nowMs` in µs, set by the shell before it hands the machine events: the
    /// machine reads no clock. It only times transits (`TransitRecord.heldUs`), finer than
    /// the milliseconds every rule runs on.
    public var clockUs: Int64 = 0
    /// This node's children by the routing id they present on its ROUTER (their code's bytes).
    private let childIDs: [[UInt8]: DivisionCode]
    /// The parent's node id, looked up once: every message sent up asks for it.
    private let parentID: String?

    // MARK: Events

    /// Time passes: sign in (again) when needed, and answer requests whose wait ran out.
    public mutating func tick(nowMs: Int64) -> [Directive] {
        var directives: [Directive] = []
        if signNo == nil, lastSignInSentMs.map({ nowMs - $0 >= config.signInRetryMs }) ?? true {
            if signInsUnheard >= config.signInsBeforeRedial {
                directives += redial("\(signInsUnheard) sign-ins unanswered", nowMs: nowMs)
            }
            directives.append(makeSignIn(nowMs: nowMs))
        }
        if signNo != nil, !holdsCatalog, lastCatalogRequestMs.map({ nowMs - $0 >= config.signInRetryMs }) ?? true {
            directives.append(makeCatalogRequest(nowMs: nowMs))
        }
        // Every turn ticks: what follows is skipped unless a deadline has come.
        if nowMs >= earliestDeadlineMs {
            let expired = pending.filter { $0.value.deadlineMs <= nowMs }
            earliestDeadlineMs = pending.values.lazy.filter { $0.deadlineMs > nowMs }.map(\.deadlineMs).min() ?? .max
            if let silent = expired.values.first(where: { $0.forwardedTo == .parent && $0.receivedAtMs > lastHeardFromParentMs }) {
                directives += redial("request \(silent.meta.msgid) timed out and nothing came from the parent since it went up", nowMs: nowMs)
            }
            for (msgid, entry) in expired.sorted(by: { $0.key < $1.key }) {
                pending[msgid] = nil
                let response = error(.timeout, detail: "node \(config.id) waited \(entry.deadlineMs - entry.receivedAtMs) ms",
                                     requestMsgid: msgid, receivedAtMs: entry.receivedAtMs, nowMs: nowMs)
                directives += finish(entry, with: response, nowMs: nowMs)
            }
        }
        // Not before sign-in: right after a restart the parent link is not up yet, and a
        // correction that cannot be handed off would wait out the longest backoff.
        if signNo != nil && !resolutions.isEmpty {
            for msgid in resolutions.filter({ $0.value.nextAttemptMs <= nowMs }).keys.sorted() {
                directives += sendCorrection(for: msgid, nowMs: nowMs)
            }
        }
        return directives
    }

    /// The earliest time `tick` has something to do, so the shell can sleep until then;
    /// `Int64.max` when nothing is due until a message comes. (It once said "in a second" for
    /// that: a simulation turned each of its 3,226 idle nodes every virtual second for nothing,
    /// half of its events. A reactor caps its wait at its pace anyway.)
    public func nextDeadlineMs(nowMs: Int64) -> Int64 {
        var next = earliestDeadlineMs
        if signNo != nil, !resolutions.isEmpty, let due = resolutions.values.lazy.map({ $0.nextAttemptMs }).min() {
            next = min(next, due)
        }
        if signNo == nil { next = min(next, lastSignInSentMs.map { $0 + config.signInRetryMs } ?? nowMs) }
        if signNo != nil && !holdsCatalog { next = min(next, lastCatalogRequestMs.map { $0 + config.signInRetryMs } ?? nowMs) }
        return next
    }

    /// The link to the parent (re)connected. Sign in at once: a parent that restarted knows no
    /// child until each signs in again (and `cluster restart` waits for that); on the first
    /// connection it saves waiting for the retry after a sign-in that found no link yet.
    public mutating func parentLinkUp(nowMs: Int64) -> [Directive] {
        guard parentID != nil, !isDraining else { return [] }
        return [makeSignIn(nowMs: nowMs)]
    }

    /// Stop taking new work from hospitals and children; answers in flight still pass.
    public mutating func beginDraining() { isDraining = true }

    public mutating func receivedRequest(_ request: WireRequest, from peer: Peer, nowMs: Int64) -> [Directive] {
        if peer == .parent { heardFromParent(nowMs: nowMs) }
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
        // Resolved by correction: final, whatever else is going on here (even while draining).
        if fromHospital, resolved.contains(request.msgid) {
            return [.finalAnswer(msgid: request.msgid, to: peer, receivedAtMs: nowMs)]
        }
        if isDraining && peer != .parent {
            return [.answer(error(.shuttingDown, detail: "node \(config.id)", requestMsgid: request.msgid,
                                  receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
        }
        if code == .upload {
            guard holdsCatalog else {
                return [.answer(error(.catalogNotLoaded, detail: "node \(config.id)", requestMsgid: request.msgid,
                                      receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
            }
            if var existing = pending[request.msgid] {
                // The same batch again while it is still out: one answer serves both.
                if !existing.waiters.contains(peer) { existing.waiters.append(peer) }
                pending[request.msgid] = existing
                return []
            }
            return [.screenUpload(request, replyTo: peer, receivedAtMs: nowMs)]
        }
        if fromHospital, resolutions[request.msgid] != nil || (code.isReversal && resolutions[Self.reversedMsgid(request)] != nil) {
            // Asked again while its outcome is being resolved: still unknown, but not for long.
            // So is a reversal of a settlement being resolved: sent on now, a refusal of this
            // copy by a tier on the way (not connected, busy) would read as the reversal's
            // outcome, while an earlier copy may have reached the insured county.
            return [.answer(error(.timeout, detail: "outcome being resolved by correction reversal (2601) at node \(config.id); ask again",
                                  requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
        }
        if code == .ticket {
            let destination = DivisionCode(request.insuplcAdmdvs)!
            guard let hop = config.routing.nextHop(from: config.id, to: destination) else { return [] }
            if hop == .here { return [.ticketHere(request, replyTo: peer, receivedAtMs: nowMs)] }
            if pending[request.msgid] != nil { return [] }
            let target: Peer = if case .child(let child) = hop { .downstream(Array(child.value.utf8)) } else { .parent }
            addPending(request.msgid, Pending(meta: RequestMeta(request), waiters: [peer], forwardedTo: target, role: .relay,
                                              receivedAtMs: nowMs, deadlineMs: nowMs + config.forwardTimeoutMs - config.hopReserveMs,
                                              isTicket: true))
            return [.forward(request, to: target)]
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
            // The deadline shrinks as the request travels: keep a reserve to answer back, and
            // give the next hop what remains minus its own reserve, so it answers first.
            // At most a minute: a sender cannot pin a pending entry at every hop for longer.
            let budget = request.budgetMs > 0 ? min(Int64(request.budgetMs), 60_000) : config.forwardTimeoutMs
            guard budget > 2 * config.hopReserveMs else {
                return [.answer(error(.deadlineTooShort, detail: "\(budget) ms left at node \(config.id)",
                                      requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs), to: peer, record: nil)]
            }
            let meta = RequestMeta(request)
            addPending(request.msgid, Pending(meta: meta, waiters: [peer], forwardedTo: target,
                                             role: fromHospital ? .origin : .relay,
                                             receivedAtMs: nowMs, deadlineMs: nowMs + budget - config.hopReserveMs))
            var onward = request
            onward.budgetMs = Int32(budget - 2 * config.hopReserveMs)
            if fromHospital && code.movesMoney {
                return [.journalAndForward(onward, to: target, inFlight: TransitRecord(inFlight: meta, nowMs: nowMs))]
            }
            return [.forward(onward, to: target)]
        }
    }

    public mutating func receivedResponse(_ response: WireResponse, from peer: Peer, nowMs: Int64) -> [Directive] {
        if peer == .parent { heardFromParent(nowMs: nowMs) }
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
                catalogOutput = out   // as the parent sorted it
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
        return finish(entry, with: response, nowMs: nowMs)
    }

    /// Passes an answer (or this node's own timeout) to whoever waits, with the transit record.
    /// At the origin county an indefinite outcome of a settlement starts its resolution; the
    /// answer to a correction this node sent itself ends or reschedules one.
    private mutating func finish(_ entry: Pending, with response: WireResponse, nowMs: Int64) -> [Directive] {
        if let omsgid = entry.resolving { return correctionAnswered(omsgid, response, nowMs: nowMs) }
        let record = entry.upload == nil && !entry.isTicket ? timedRecord(entry, response, nowMs: nowMs) : nil
        var directives: [Directive] = entry.waiters.enumerated().map { index, waiter in
            .answer(response, to: waiter, record: index == 0 ? record : nil)
        }
        // This node's own wait ran out: the next hop stopped answering. That needs its operator.
        if !entry.isTicket, response.errCode == ErrorCode.timeout.rawValue,
           response.infRefmsgid.hasPrefix(config.id.value), let silent = nodeID(of: entry.forwardedTo) {
            directives.append(.openTicket(kind: .nodeUnresponsive, code: ErrorCode.timeout.rawValue, subject: silent,
                                          responsible: silent, reason: "no answer from node \(silent) within the deadline"))
        }
        if entry.upload == nil, entry.role == .origin, response.errCode == ErrorCode.timeout.rawValue {
            directives += startResolution(concerning: entry.meta, nowMs: nowMs)
        }
        return directives
    }

    /// A money request's outcome is unknown here, at its origin: resolve the settlement it
    /// concerns by correction (2601), unless that is already under way.
    private mutating func startResolution(concerning meta: RequestMeta, nowMs: Int64) -> [Directive] {
        guard let resolution = Resolution(concerning: meta, nowMs: nowMs), resolutions[resolution.omsgid] == nil else { return [] }
        resolutions[resolution.omsgid] = resolution
        return [.resolution(resolution)]
    }

    /// After a restart: the requests this origin county had journaled as in flight and never
    /// learned the outcome of (their answers, if any came, found nobody waiting). Each is in
    /// doubt, and its settlement is resolved like one this node gave up waiting for.
    public mutating func inDoubtAfterRestart(_ inFlight: [RequestMeta], nowMs: Int64) -> [Directive] {
        inFlight.sorted { $0.msgid < $1.msgid }.flatMap { startResolution(concerning: $0, nowMs: nowMs) }
    }

    /// The settlement a reversal (2208, 2305) concerns.
    private static func reversedMsgid(_ request: WireRequest) -> String {
        if case .reversal(let input)? = request.input { return input.omsgid }
        return ""
    }

    /// The transit record of an answer to `entry`, with how long the request was held here and beyond.
    private func timedRecord(_ entry: Pending, _ response: WireResponse, nowMs: Int64) -> TransitRecord {
        var record = TransitRecord(request: entry.meta, response: response, role: entry.role, nowMs: nowMs)
        record.heldUs = max(0, clockUs - entry.receivedAtUs)
        return record
    }

    private mutating func addPending(_ msgid: String, _ entry: Pending) {
        var entry = entry
        entry.receivedAtUs = clockUs
        pending[msgid] = entry
        earliestDeadlineMs = min(earliestDeadlineMs, entry.deadlineMs)
    }

    /// The node id behind a peer, if it is a node (not a hospital).
    public func nodeID(of peer: Peer) -> String? {
        switch peer {
        case .parent: return parentID
        case .downstream(let id): return childIDs[id]?.value
        }
    }

    /// Resolutions left open by an earlier run of this node (from its ledger).
    public mutating func restore(_ open: [Resolution]) {
        for resolution in open {
            resolutions[resolution.omsgid] = resolution
            resolved.remove(resolution.omsgid)
        }
    }

    /// Settlements resolved by an earlier run of this node (from its ledger): their final
    /// answers are there.
    public mutating func restore(resolved msgids: some Sequence<String>) { resolved.formUnion(msgids) }

    /// The round could not be recorded (the node's ledger failed): what its directives become.
    /// An answer passing through that this node was to record does not go on: no answer leaves
    /// a node before its own record of it is durable. Its requester hears that the outcome is
    /// unknown here (SN-E3002, indefinite), and at the origin county the settlement is resolved
    /// by correction (2601) once the ledger works again, the relays recording it on the way.
    /// (It once went on unrecorded: with a disk failing under a relay, the relay's ledger
    /// lacked what every other tier held, and reconciliation counted it lost.) What this node
    /// was to decide and record here is refused definitely (SN-E3004); requests it was to
    /// journal were not sent; resolutions the round closed stay open.
    /// `refusal`: the code of those definite refusals; SN-E3008 when the node's disk is full.
    public mutating func roundNotRecorded(_ work: [Directive], detail: String, refusal: ErrorCode = .busy,
                                          nowMs: Int64) -> [Directive] {
        restore(work.compactMap { if case .resolved(let resolution, _, _) = $0 { resolution } else { nil } })
        return work.flatMap { directive -> [Directive] in
            switch directive {
            case .answer(let response, let peer, nil):
                return [.answer(response, to: peer, record: nil)]
            case .answer(let response, let peer, let record?):
                var unknown: [Directive] = [.answer(error(.timeout, detail: "\(detail): the outcome could not be recorded here",
                                                          requestMsgid: response.reqMsgid, receivedAtMs: nowMs, nowMs: nowMs),
                                                    to: peer, record: nil)]
                if record.role == .origin { unknown += startResolution(concerning: RequestMeta(record), nowMs: nowMs) }
                return unknown
            case .settleHere(let request, let peer, _, let receivedAtMs), .screenUpload(let request, let peer, let receivedAtMs),
                 .ticketHere(let request, let peer, let receivedAtMs):
                return [.answer(error(refusal, detail: detail, requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs),
                                to: peer, record: nil)]
            case .finalAnswer(let msgid, let peer, let receivedAtMs):
                return [.answer(error(refusal, detail: detail, requestMsgid: msgid, receivedAtMs: receivedAtMs, nowMs: nowMs),
                                to: peer, record: nil)]
            case .journalAndForward(let request, _, _):
                return refuseUnsent(msgid: request.msgid, detail: detail, code: refusal, nowMs: nowMs)
            case .forward, .resolution, .resolved, .openTicket, .redialParent:
                return []
            }
        }
    }

    private mutating func sendCorrection(for omsgid: String, nowMs: Int64) -> [Directive] {
        guard var resolution = resolutions[omsgid] else { return [] }
        resolution.attempts += 1
        // Back off 1 s, 2 s, 4 s ... up to the maximum, between attempts.
        let backoff = min(config.correctionBackoffMaxMs, 1_000 << min(10, resolution.attempts - 1))
        resolution.nextAttemptMs = nowMs + backoff + config.forwardTimeoutMs
        resolutions[omsgid] = resolution
        guard pending[resolution.correctionMsgid] == nil else { return [] }
        var request = WireRequest()
        request.infno = TransactionCode.correction.rawValue
        request.msgid = resolution.correctionMsgid
        request.mdtrtareaAdmvs = resolution.treatment
        request.insuplcAdmdvs = resolution.insured
        request.fixmedinsCode = resolution.fixmedinsCode
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: nowMs).readable
        request.budgetMs = Int32(config.forwardTimeoutMs - 2 * config.hopReserveMs)
        var input = CorrectionInput()
        input.omsgid = resolution.omsgid
        input.oinfno = resolution.oinfno
        input.psnNo = resolution.psnNo
        request.input = .correction(input)
        addPending(request.msgid, Pending(meta: RequestMeta(request), waiters: [], forwardedTo: .parent, role: .origin,
                                         receivedAtMs: nowMs, deadlineMs: nowMs + config.forwardTimeoutMs - config.hopReserveMs,
                                         resolving: resolution.omsgid))
        return [.forward(request, to: .parent), .resolution(resolution)]
    }

    private mutating func correctionAnswered(_ omsgid: String, _ response: WireResponse, nowMs: Int64) -> [Directive] {
        guard var resolution = resolutions[omsgid] else { return [] }
        let definite = response.errCode != ErrorCode.timeout.rawValue
        guard definite, response.infcode == 0, case .correction(let out)? = response.output else {
            if definite {
                // A definite refusal of the correction itself (a bug or a bad route): try again
                // later; the settlement stays unresolved and counted until someone acts.
                resolution.nextAttemptMs = min(resolution.nextAttemptMs, nowMs + config.correctionBackoffMaxMs)
            } else {
                resolution.nextAttemptMs = min(resolution.nextAttemptMs, nowMs + min(config.correctionBackoffMaxMs, 1_000 << min(10, resolution.attempts)))
            }
            resolutions[omsgid] = resolution
            return [.resolution(resolution)]
        }
        resolutions[omsgid] = nil
        resolved.insert(omsgid)
        // The hospital's final answer: the settlement is not in effect (reversed or cancelled).
        var final = error(.cancelledByCorrection, detail: "outcome \(out.outcome)", requestMsgid: omsgid,
                          receivedAtMs: nowMs, nowMs: nowMs)
        final.warnMsg = out.outcome
        var meta = RequestMeta(omsgid: omsgid, infno: resolution.oinfno, treatment: resolution.treatment,
                               insured: resolution.insured, fixmedinsCode: resolution.fixmedinsCode)
        meta.psnNo = resolution.psnNo
        var record = TransitRecord(request: meta, response: final, role: .origin, nowMs: nowMs)
        record.state = out.outcome == "reversed" ? .reversed : .refused
        return [.resolved(resolution, finalAnswer: final, record: record)]
    }


    /// The shell could not hand a forwarded request to its next hop (not connected): the
    /// request was certainly not delivered, so the waiters get a definite answer.
    public mutating func forwardFailed(msgid: String, nowMs: Int64) -> [Directive] {
        guard let entry = pending.removeValue(forKey: msgid) else { return [] }
        let response = error(.unreachable, detail: "node \(config.id) could not reach the next hop",
                             requestMsgid: msgid, receivedAtMs: entry.receivedAtMs, nowMs: nowMs)
        if let omsgid = entry.resolving { return correctionAnswered(omsgid, response, nowMs: nowMs) }
        let record = entry.upload == nil && !entry.isTicket ? timedRecord(entry, response, nowMs: nowMs) : nil
        var directives: [Directive] = entry.waiters.enumerated().map { index, waiter in
            .answer(response, to: waiter, record: index == 0 ? record : nil)
        }
        if !entry.isTicket, let dead = nodeID(of: entry.forwardedTo) {
            directives.append(.openTicket(kind: .nodeUnresponsive, code: ErrorCode.unreachable.rawValue, subject: dead,
                                          responsible: dead, reason: "node \(dead) not connected"))
        }
        return directives
    }

    /// The shell could not journal a request it was to forward (its ledger failed): it was not
    /// sent, so the waiters get a definite refusal, and no record is asked for.
    public mutating func refuseUnsent(msgid: String, detail: String, code: ErrorCode = .busy, nowMs: Int64) -> [Directive] {
        guard let entry = pending.removeValue(forKey: msgid) else { return [] }
        let response = error(code, detail: detail, requestMsgid: msgid, receivedAtMs: entry.receivedAtMs, nowMs: nowMs)
        return entry.waiters.map { .answer(response, to: $0, record: nil) }
    }

    /// Answers of every still-pending request with an indefinite timeout (used when the node
    /// stops before their answers came back).
    public mutating func abandonPending(nowMs: Int64) -> [Directive] {
        for key in pending.keys { pending[key]?.deadlineMs = nowMs }
        earliestDeadlineMs = nowMs
        isStopping = true
        let saved = signNo
        signNo = signNo ?? "STOPPING"  // no sign-in retry while stopping
        defer { signNo = saved }
        return tick(nowMs: nowMs)
    }

    // MARK: Uploads

    /// After this tier screened a batch (and recorded its decision): pass what passed up to the
    /// parent, remembering this tier's rejects for the answer. When nothing passed, answer now.
    /// `passing`: how many records passed. They go up as this tier screened and recorded them,
    /// spliced into the request by the shell (`UploadScreen.Outcome.forward`): the request sent
    /// up carries no records of its own.
    public mutating func forwardUpload(_ request: WireRequest, passing: Int, received: Int32,
                                       rejects: [UploadReject], replyTo peer: Peer, receivedAtMs: Int64, nowMs: Int64) -> [Directive] {
        if passing == 0 || parentID == nil {
            var response = success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
            response.output = .upload(Self.output(received: received, accepted: 0, rejects: rejects))
            return [.answer(response, to: peer, record: nil)]
        }
        guard pending.count < config.pendingLimit else {
            return [.answer(error(.busy, detail: "node \(config.id) has \(pending.count) requests pending",
                                  requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs), to: peer, record: nil)]
        }
        var upward = request
        upward.input = .upload(UploadInput())
        addPending(request.msgid, Pending(meta: RequestMeta(request), waiters: [peer], forwardedTo: .parent, role: .relay,
                                         receivedAtMs: receivedAtMs, deadlineMs: nowMs + config.forwardTimeoutMs,
                                         upload: (received, rejects)))
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
        responses.success(requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
    }

    /// A failure answer: infcode -1, err_msg in the interface's FSI format.
    public mutating func error(_ code: ErrorCode, detail: String? = nil, requestMsgid: String,
                               receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        responses.error(code, detail: detail, requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
    }

    // MARK: Sign-in and the parent link

    private mutating func heardFromParent(nowMs: Int64) {
        lastHeardFromParentMs = nowMs
        signInsUnheard = 0
    }

    /// At most one redial per `signInsBeforeRedial` sign-in retries: a parent that is merely
    /// not up yet is dialled again slowly, and a new connection gets time to come up.
    private mutating func redial(_ reason: String, nowMs: Int64) -> [Directive] {
        guard !isStopping, parentID != nil,
              lastRedialMs.map({ nowMs - $0 >= Int64(config.signInsBeforeRedial) * config.signInRetryMs }) ?? true
        else { return [] }
        lastRedialMs = nowMs
        signInsUnheard = 0
        return [.redialParent(reason: reason)]
    }

    /// A request this node sends its parent on its own behalf (sign-in, catalog download).
    private mutating func ownRequest(_ code: TransactionCode, nowMs: Int64) -> WireRequest {
        signInSequence += 1
        var request = WireRequest()
        request.infno = code.rawValue
        // Nodes are not institutions: the msgid's 12-char prefix is "N" + division + "00000".
        request.msgid = MessageID.request(institution: "N\(config.id.value)00000", unixMs: nowMs, sequence: signInSequence)
        request.mdtrtareaAdmvs = config.id.value
        request.insuplcAdmdvs = config.id.value
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: nowMs).readable
        return request
    }

    private mutating func makeSignIn(nowMs: Int64) -> Directive {
        lastSignInSentMs = nowMs
        signInsUnheard += 1
        var request = ownRequest(.signIn, nowMs: nowMs)
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
        lastCatalogRequestMs = nowMs
        var request = ownRequest(.catalogDownload, nowMs: nowMs)
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
        if catalogOutput == nil { catalogOutput = catalog.output }
        var response = success(requestMsgid: request.msgid, receivedAtMs: nowMs, nowMs: nowMs)
        response.output = .catalog(catalogOutput!)
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
        case (.ticket, .ticket(let input)?):
            // Between nodes, to any node (insuplc_admdvs); from a hospital only "list", to its own
            // county: what it has to correct and re-upload.
            guard case .downstream(let id) = peer, childIDs[id] == nil else {
                guard let destination = DivisionCode(request.insuplcAdmdvs), config.routing.contains(destination) else {
                    return Problem(code: .badDivision, detail: "insuplc_admdvs \"\(request.insuplcAdmdvs.prefix(8))\" is not a node of this network")
                }
                return nil
            }
            guard input.event == "list", request.insuplcAdmdvs == config.id.value else {
                return Problem(code: .wrongNode, detail: "a hospital may only list its tickets at its own county (node \(config.id))")
            }
            return hospitalProblem(request, treatment: config.id, from: peer)
        case (.upload, .upload?):
            // A hospital uploads from its county; a provincial tier's batch for the national
            // store names the province.
            guard let treatment = DivisionCode(request.mdtrtareaAdmvs), config.routing.contains(treatment) else {
                return Problem(code: .badDivision, detail: "mdtrtarea_admvs \"\(request.mdtrtareaAdmvs.prefix(8))\" is not a node of this network")
            }
            return hospitalProblem(request, treatment: treatment, from: peer)
        case (.outpatientSettlement, .settlement?), (.inpatientSettlement, .settlement?),
             (.outpatientReversal, .reversal?), (.inpatientReversal, .reversal?), (.correction, .correction?): break
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
