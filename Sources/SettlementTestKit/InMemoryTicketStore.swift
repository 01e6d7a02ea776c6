import SettlementCore
import SettlementModel

/// A ticket store in memory with the ledger's rules (states only move forward, each time kept
/// once, occurrences only grow; each registry event once), for testing the ticket desk.
public class InMemoryTicketStore: TicketStore {
    public struct Queued: Equatable, Sendable {
        public var msgid: String
        public var destination: String
        public var request: WireRequest

        /// The ticket message it carries.
        public var input: TicketInput? { if case .ticket(let input)? = request.input { input } else { nil } }
    }

    public private(set) var tickets: [String: Ticket] = [:]
    /// Insertion order, as the ledger's rowid.
    private var order: [String] = []
    public private(set) var events: [(ticketID: String, event: String, node: String, atMs: Int64)] = []
    public private(set) var outbox: [Queued] = []
    public private(set) var records: [String: Set<String>] = [:]

    public init() {}

    public func openTicket(kind: TicketKind, subject: String, responsible: String, openedBy: String) throws -> Ticket? {
        order.lazy.compactMap { self.tickets[$0] }.first {
            $0.kind == kind && $0.subject == subject && $0.responsible == responsible && $0.openedBy == openedBy && $0.state != .closed
        }
    }

    public func countTickets() throws -> Int { tickets.count }

    public func ticket(_ ticketID: String) throws -> Ticket? { tickets[ticketID] }

    public func upsertTicket(_ ticket: Ticket) throws {
        guard var existing = tickets[ticket.ticketID] else {
            tickets[ticket.ticketID] = ticket
            order.append(ticket.ticketID)
            return
        }
        existing.occurrences = max(existing.occurrences, ticket.occurrences)
        existing.openedAtMs = min(existing.openedAtMs, ticket.openedAtMs)
        existing.acknowledgedAtMs = existing.acknowledgedAtMs ?? ticket.acknowledgedAtMs
        existing.closedAtMs = existing.closedAtMs ?? ticket.closedAtMs
        existing.state = max(existing.state, ticket.state)
        tickets[ticket.ticketID] = existing
    }

    public func addTicketOccurrence(_ ticketID: String) throws { tickets[ticketID]?.occurrences += 1 }

    public func recordTicketEvent(ticketID: String, event: String, node: String, atMs: Int64) throws {
        guard !events.contains(where: { $0.ticketID == ticketID && $0.event == event }) else { return }
        events.append((ticketID, event, node, atMs))
    }

    public func enqueueTicketEvent(msgid: String, destination: String, body: [UInt8]) throws {
        guard !outbox.contains(where: { $0.msgid == msgid }) else { return }
        outbox.append(Queued(msgid: msgid, destination: destination, request: try WireRequest(serializedBytes: body)))
    }

    public func addTicketRecords(_ ticketID: String, setlIDs: [String]) throws {
        records[ticketID, default: []].formUnion(setlIDs)
    }

    public func openTickets(kind: TicketKind, subject: String, responsible: String) throws -> [(ticket: Ticket, setlIDs: [String])] {
        order.compactMap { tickets[$0] }
            .filter { $0.kind == kind && $0.subject == subject && $0.responsible == responsible && $0.state != .closed }
            .map { ($0, (records[$0.ticketID] ?? []).sorted()) }
    }

    /// Empties the outbox (its messages were answered), returning what was in it.
    public func takeOutbox() -> [Queued] {
        defer { outbox.removeAll() }
        return outbox
    }
}
