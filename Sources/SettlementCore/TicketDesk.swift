import SettlementModel

/// What a ticket is about. Every node opens them for what needs someone's action; the
/// responsible node acknowledges (响应) them, the opener closes them (销号) once the cause is gone.
public enum TicketKind: String, Codable, Sendable, CaseIterable {
    /// A next hop stopped answering (SN-E3002, SN-E3001); closed when it answers again.
    case nodeUnresponsive = "node_unresponsive"
    /// The insured county refused a settlement on data it holds (SN-E2001, SN-E2002).
    case businessRefusal = "business_refusal"
    /// A tier above the county rejected uploaded records; closed once the institution corrected them all.
    case uploadReject = "upload_reject"
    /// The disk under the node's own ledger is full (SN-E3008): it takes no new work. The node
    /// is responsible itself; it closes the ticket once space returns.
    case diskFull = "disk_full"
}

/// A ticket's state; it only moves forward.
public enum TicketState: String, Codable, Sendable, Comparable {
    case open, acknowledged, closed

    private var rank: Int { self == .open ? 0 : self == .acknowledged ? 1 : 2 }
    public static func < (lhs: TicketState, rhs: TicketState) -> Bool { lhs.rank < rhs.rank }
}

/// The events a ticket message (9101) carries.
public enum TicketEvent: String, Sendable {
    /// To the registry: a node opened a ticket.
    case opened
    /// To the responsible node: a ticket for you, with the records it is about.
    case open
    /// To the registry: the responsible node acknowledged it.
    case acknowledged
    /// To the responsible node: the same cause once more, with its records.
    case occurrence
    /// To the registry (and to the county of an upload_reject): the opener closed it.
    case closed
    /// From a hospital to its county: the upload_reject tickets it has to correct.
    case list
}

/// One ticket as a node (or the national registry) holds it.
public struct Ticket: Codable, Equatable, Sendable {
    public var ticketID: String
    public var kind: TicketKind
    public var code: String
    public var subject: String
    public var responsible: String
    public var openedBy: String
    public var state: TicketState
    public var reason: String
    public var occurrences: Int
    public var openedAtMs: Int64
    public var acknowledgedAtMs: Int64?
    public var closedAtMs: Int64?

    enum CodingKeys: String, CodingKey {
        case kind, code, subject, responsible, state, reason, occurrences
        case ticketID = "ticket_id"
        case openedBy = "opened_by"
        case openedAtMs = "opened_at_ms"
        case acknowledgedAtMs = "acknowledged_at_ms"
        case closedAtMs = "closed_at_ms"
    }

    public init(ticketID: String, kind: TicketKind, code: String, subject: String, responsible: String, openedBy: String,
                state: TicketState, reason: String, occurrences: Int, openedAtMs: Int64, acknowledgedAtMs: Int64?, closedAtMs: Int64?) {
        self.ticketID = ticketID; self.kind = kind; self.code = code; self.subject = subject
        self.responsible = responsible; self.openedBy = openedBy; self.state = state; self.reason = reason
        self.occurrences = occurrences; self.openedAtMs = openedAtMs
        self.acknowledgedAtMs = acknowledgedAtMs; self.closedAtMs = closedAtMs
    }

    /// The ticket as a 9101 message carries it (event and time set by the sender).
    public var message: TicketInput {
        var input = TicketInput()
        input.ticketID = ticketID
        input.kind = kind.rawValue
        input.code = code
        input.subject = subject
        input.responsible = responsible
        input.openedBy = openedBy
        input.reason = reason
        input.occurrences = Int32(occurrences)
        return input
    }

    /// The ticket a 9101 message describes, in `state` as of `nowMs`; nil for an unknown kind.
    public init?(_ input: TicketInput, state: TicketState, nowMs: Int64) {
        guard let kind = TicketKind(rawValue: input.kind) else { return nil }
        self.init(ticketID: input.ticketID, kind: kind, code: input.code, subject: input.subject, responsible: input.responsible,
                  openedBy: input.openedBy, state: state, reason: input.reason, occurrences: Int(input.occurrences),
                  openedAtMs: input.atMs, acknowledgedAtMs: state == .acknowledged ? nowMs : nil,
                  closedAtMs: state == .closed ? nowMs : nil)
    }
}

/// What the ticket desk reads and writes, inside one round's transaction (`Persistence` over
/// the ledger; `SettlementTestKit` in memory).
public protocol TicketStore {
    /// The ticket `openedBy` opened for this cause and has not closed, if any.
    func openTicket(kind: TicketKind, subject: String, responsible: String, openedBy: String) throws -> Ticket?
    func countTickets() throws -> Int
    func ticket(_ ticketID: String) throws -> Ticket?
    /// Records a ticket as this node learns of it, or a later state: states only move forward,
    /// each time is kept once, occurrences only grow, the opening time is the earliest heard of.
    func upsertTicket(_ ticket: Ticket) throws
    func addTicketOccurrence(_ ticketID: String) throws
    /// The registry's history: each event of a ticket, once.
    func recordTicketEvent(ticketID: String, event: String, node: String, atMs: Int64) throws
    /// A ticket message to send (kept until its answer comes).
    func enqueueTicketEvent(msgid: String, destination: String, body: [UInt8]) throws
    /// Responsible county: the records an upload_reject ticket is about.
    func addTicketRecords(_ ticketID: String, setlIDs: [String]) throws
    /// The not-closed tickets of `kind` about `subject` this node is responsible for, with their records.
    func openTickets(kind: TicketKind, subject: String, responsible: String) throws -> [(ticket: Ticket, setlIDs: [String])]
}

/// A node's ticket desk: opens, acknowledges and closes tickets, and, at the national node,
/// keeps the registry. Its messages go into the store's outbox, which the shell sends.
public struct TicketDesk: Sendable {
    public let node: DivisionCode
    public let registry: DivisionCode
    private var eventSequence = 0

    /// A node_unresponsive ticket opened about `node`.
    public struct Unresponsive: Equatable, Sendable {
        public var node: String
        public var ticketID: String
        public init(node: String, ticketID: String) { self.node = node; self.ticketID = ticketID }
    }

    public enum Note: Equatable, Sendable {
        case opened(ticketID: String, kind: TicketKind, responsible: String, code: String)
        case acknowledged(ticketID: String, kind: TicketKind)
        case closed(ticketID: String, kind: TicketKind, responsible: String)
    }

    /// What a step of the desk did, for the shell: what to log, whether messages were queued,
    /// and the node_unresponsive tickets it opened (closed when that node answers again).
    public struct Effects: Equatable, Sendable {
        public var notes: [Note] = []
        public var queuedMessages = false
        public var unresponsive: [Unresponsive] = []

        public init() {}

        mutating func merge(_ other: Effects) {
            notes += other.notes
            queuedMessages = queuedMessages || other.queuedMessages
            unresponsive += other.unresponsive
        }
    }

    public init(node: DivisionCode, registry: DivisionCode) {
        self.node = node
        self.registry = registry
    }

    /// Opens a ticket, or counts one more occurrence of the open one for the same cause; tells
    /// the responsible node and the registry. `setlIDs`: the records an upload_reject is about.
    public mutating func open(_ kind: TicketKind, code: String, subject: String, responsible: String, reason: String,
                              setlIDs: [String] = [], nowMs: Int64, store: some TicketStore) throws -> Effects {
        var effects = Effects()
        let selfResponsible = responsible == node.value
        if let existing = try store.openTicket(kind: kind, subject: subject, responsible: responsible, openedBy: node.value) {
            try store.addTicketOccurrence(existing.ticketID)
            if !setlIDs.isEmpty && !selfResponsible {
                var input = existing.message
                input.setlIds = setlIDs
                effects.merge(try queue(.occurrence, input, to: responsible, nowMs: nowMs, store: store))
            }
            return effects
        }
        let ticketID = "TK\(node.value)\(CivilTime(unixMs: nowMs).compact)\(try store.countTickets() + 1)"
        let ticket = Ticket(ticketID: ticketID, kind: kind, code: code, subject: subject, responsible: responsible,
                            openedBy: node.value, state: selfResponsible ? .acknowledged : .open, reason: reason, occurrences: 1,
                            openedAtMs: nowMs, acknowledgedAtMs: selfResponsible ? nowMs : nil, closedAtMs: nil)
        try store.upsertTicket(ticket)
        var input = ticket.message
        input.atMs = nowMs
        effects.merge(try queue(.opened, input, to: registry.value, nowMs: nowMs, store: store))
        if selfResponsible {
            effects.merge(try queue(.acknowledged, input, to: registry.value, nowMs: nowMs, store: store))
        } else {
            input.setlIds = setlIDs
            effects.merge(try queue(.open, input, to: responsible, nowMs: nowMs, store: store))
        }
        if kind == .nodeUnresponsive { effects.unresponsive.append(Unresponsive(node: responsible, ticketID: ticketID)) }
        effects.notes.append(.opened(ticketID: ticketID, kind: kind, responsible: responsible, code: code))
        return effects
    }

    /// The cause is gone: the opener closes the ticket (销号) and tells the registry and, for an
    /// upload_reject, the responsible county (so that its institution stops being asked).
    public mutating func close(_ ticketID: String, reason: String, nowMs: Int64, store: some TicketStore) throws -> Effects {
        guard var ticket = try store.ticket(ticketID), ticket.state != .closed else { return Effects() }
        ticket.state = .closed
        ticket.closedAtMs = nowMs
        try store.upsertTicket(ticket)
        var input = ticket.message
        input.reason = reason
        var effects = try queue(.closed, input, to: registry.value, nowMs: nowMs, store: store)
        if ticket.kind == .uploadReject && ticket.responsible != node.value {
            effects.merge(try queue(.closed, input, to: ticket.responsible, nowMs: nowMs, store: store))
        }
        effects.notes.append(.closed(ticketID: ticketID, kind: ticket.kind, responsible: ticket.responsible))
        return effects
    }

    /// A ticket message addressed to this node. As the responsible node it acknowledges and
    /// keeps the records behind an upload_reject; as the registry it records the event with its
    /// time. A hospital's `list` asks its county what it has to correct.
    public mutating func arrived(_ request: WireRequest, receivedAtMs: Int64, nowMs: Int64, responses: inout ResponseFactory,
                                 store: some TicketStore) throws -> (answer: [UInt8], effects: Effects) {
        guard case .ticket(let input)? = request.input else {
            let refusal = responses.error(.missingField, detail: "input.ticket", requestMsgid: request.msgid,
                                          receivedAtMs: receivedAtMs, nowMs: nowMs)
            return (try refusal.serializedBytes(), Effects())
        }
        var effects = Effects()
        var out = TicketOutput()
        out.ticketID = input.ticketID
        let event = TicketEvent(rawValue: input.event)
        let ticket = Ticket(input, state: .acknowledged, nowMs: nowMs)
        switch event {
        case .list?:
            out.state = "listed"
            out.tickets = try store.openTickets(kind: .uploadReject, subject: request.fixmedinsCode, responsible: node.value)
                .map { ticket, setlIDs in
                    var listed = ticket.message
                    listed.setlIds = setlIDs
                    return listed
                }
        case .open? where ticket != nil:
            try store.upsertTicket(ticket!)
            try store.addTicketRecords(input.ticketID, setlIDs: input.setlIds)
            effects.merge(try queue(.acknowledged, input, to: registry.value, nowMs: nowMs, store: store))
            effects.notes.append(.acknowledged(ticketID: input.ticketID, kind: ticket!.kind))
            out.state = TicketState.acknowledged.rawValue
        case .occurrence?:
            try store.addTicketRecords(input.ticketID, setlIDs: input.setlIds)
            out.state = TicketState.acknowledged.rawValue
        case .closed? where node != registry:
            if let closed = Ticket(input, state: .closed, nowMs: input.atMs) { try store.upsertTicket(closed) }
            out.state = TicketState.closed.rawValue
        default:
            out.state = try record(input, store: store)
        }
        var response = responses.success(requestMsgid: request.msgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.output = .ticket(out)
        return (try response.serializedBytes(), effects)
    }

    /// The answer to a ticket message this node sent: an `open` the responsible node
    /// acknowledged is acknowledged here too.
    public func answered(_ event: TicketEvent, ticketID: String, _ response: WireResponse, nowMs: Int64,
                         store: some TicketStore) throws {
        guard event == .open, response.infcode == 0, case .ticket(let out)? = response.output,
              out.state == TicketState.acknowledged.rawValue, var ticket = try store.ticket(ticketID) else { return }
        ticket.state = .acknowledged
        ticket.acknowledgedAtMs = nowMs
        try store.upsertTicket(ticket)
    }

    /// The registry's part: every event (opened, acknowledged, closed) with its time.
    private func record(_ input: TicketInput, store: some TicketStore) throws -> String {
        guard node == registry, let event = TicketEvent(rawValue: input.event), [.opened, .acknowledged, .closed].contains(event),
              let ticket = Ticket(input, state: event == .opened ? .open : event == .acknowledged ? .acknowledged : .closed,
                                  nowMs: input.atMs)
        else { return "received" }
        try store.upsertTicket(ticket)
        try store.recordTicketEvent(ticketID: input.ticketID, event: input.event,
                                    node: event == .acknowledged ? input.responsible : input.openedBy, atMs: input.atMs)
        return ticket.state.rawValue
    }

    /// Queues a ticket message for `destination`; one for this node itself (the registry's own
    /// events) is recorded at once.
    private mutating func queue(_ event: TicketEvent, _ ticket: TicketInput, to destination: String, nowMs: Int64,
                                store: some TicketStore) throws -> Effects {
        var input = ticket
        input.event = event.rawValue
        input.atMs = nowMs
        if destination == node.value {
            _ = try record(input, store: store)
            return Effects()
        }
        eventSequence += 1
        var request = WireRequest()
        request.infno = TransactionCode.ticket.rawValue
        request.msgid = "TE\(node.value)\(nowMs)\(eventSequence)"
        request.mdtrtareaAdmvs = node.value
        request.insuplcAdmdvs = destination
        request.infver = "V1.0"
        request.infTime = CivilTime(unixMs: nowMs).readable
        request.input = .ticket(input)
        try store.enqueueTicketEvent(msgid: request.msgid, destination: destination, body: try request.serializedBytes())
        var effects = Effects()
        effects.queuedMessages = true
        return effects
    }
}
