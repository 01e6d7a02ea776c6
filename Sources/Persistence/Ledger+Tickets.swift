import Foundation
import GRDB
import SettlementCore
import SettlementModel

// MARK: Tickets

extension Ticket {
    /// Nil for a kind or state this version does not know.
    init?(row: Row) {
        guard let kind = TicketKind(rawValue: row["kind"]), let state = TicketState(rawValue: row["state"]) else { return nil }
        self.init(ticketID: row["ticket_id"], kind: kind, code: row["code"], subject: row["subject"], responsible: row["responsible"],
                  openedBy: row["opened_by"], state: state, reason: row["reason"], occurrences: row["occurrences"],
                  openedAtMs: row["opened_at_ms"], acknowledgedAtMs: row["acknowledged_at_ms"], closedAtMs: row["closed_at_ms"])
    }
}

extension LedgerTransaction {
    /// The ticket `openedBy` opened for this cause and has not closed, if any. (The national
    /// ledger also holds every other node's tickets, as the registry.)
    public func openTicket(kind: TicketKind, subject: String, responsible: String, openedBy: String) throws -> Ticket? {
        let statement = try db.cachedStatement(sql: """
            SELECT * FROM tickets WHERE kind = ? AND subject = ? AND responsible = ? AND opened_by = ? AND state != 'closed'
            """)
        return try Row.fetchOne(statement, arguments: [kind.rawValue, subject, responsible, openedBy]).flatMap(Ticket.init)
    }

    public func countTickets() throws -> Int { try Int.fetchOne(db, sql: "SELECT count(*) FROM tickets") ?? 0 }

    public func ticket(_ ticketID: String) throws -> Ticket? {
        try Row.fetchOne(db, sql: "SELECT * FROM tickets WHERE ticket_id = ?", arguments: [ticketID]).flatMap(Ticket.init)
    }

    /// Records a ticket as this node learns of it, or a later state of it. States only move
    /// forward (open, acknowledged, closed); each time is kept once. A message carries the time
    /// of its own event, so the registry learning of a ticket from its close keeps the opening's
    /// time once that message comes too.
    public func upsertTicket(_ t: Ticket) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO tickets (ticket_id, kind, code, subject, responsible, opened_by, state, reason, occurrences,
              opened_at_ms, acknowledged_at_ms, closed_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(ticket_id) DO UPDATE SET
              occurrences = max(tickets.occurrences, excluded.occurrences),
              opened_at_ms = min(tickets.opened_at_ms, excluded.opened_at_ms),
              acknowledged_at_ms = coalesce(tickets.acknowledged_at_ms, excluded.acknowledged_at_ms),
              closed_at_ms = coalesce(tickets.closed_at_ms, excluded.closed_at_ms),
              state = CASE
                WHEN tickets.state = 'closed' OR excluded.state = 'closed' THEN 'closed'
                WHEN tickets.state = 'acknowledged' OR excluded.state = 'acknowledged' THEN 'acknowledged'
                ELSE 'open' END
            """)
        try statement.execute(arguments: [t.ticketID, t.kind.rawValue, t.code, t.subject, t.responsible, t.openedBy, t.state.rawValue,
                                          t.reason, t.occurrences, t.openedAtMs, t.acknowledgedAtMs, t.closedAtMs])
    }

    public func addTicketOccurrence(_ ticketID: String) throws {
        try db.execute(sql: "UPDATE tickets SET occurrences = occurrences + 1 WHERE ticket_id = ?", arguments: [ticketID])
    }

    public func recordTicketEvent(ticketID: String, event: String, node: String, atMs: Int64) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_events (ticket_id, event, node, at_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
        try statement.execute(arguments: [ticketID, event, node, atMs])
    }

    public func tickets(state: TicketState? = nil) throws -> [Ticket] {
        if let state {
            return try Row.fetchAll(db, sql: "SELECT * FROM tickets WHERE state = ? ORDER BY opened_at_ms", arguments: [state.rawValue])
                .compactMap(Ticket.init)
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM tickets ORDER BY opened_at_ms").compactMap(Ticket.init)
    }

    /// Tickets not yet closed (open or acknowledged), by kind.
    public func openTicketCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT kind, count(*) FROM tickets WHERE state != 'closed' GROUP BY kind") {
            counts[row[0]] = row[1]
        }
        return counts
    }

    public func ticketEvents(_ ticketID: String) throws -> [(event: String, node: String, atMs: Int64)] {
        try Row.fetchAll(db, sql: "SELECT event, node, at_ms FROM ticket_events WHERE ticket_id = ? ORDER BY at_ms",
                         arguments: [ticketID]).map { ($0[0], $0[1], $0[2]) }
    }

    public func enqueueTicketEvent(msgid: String, destination: String, body: [UInt8]) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_outbox (msgid, destination, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        try statement.execute(arguments: [msgid, destination, Data(body)])
    }

    public func ticketOutbox() throws -> [(msgid: String, destination: String, body: [UInt8])] {
        try Row.fetchAll(db, sql: "SELECT msgid, destination, body FROM ticket_outbox ORDER BY rowid LIMIT 500")
            .map { ($0[0], $0[1], Array($0[2] as Data)) }
    }

    /// Responsible county: the records an upload_reject ticket is about.
    public func addTicketRecords(_ ticketID: String, setlIDs: [String]) throws {
        let statement = try db.cachedStatement(sql: "INSERT INTO ticket_records (ticket_id, setl_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
        for setlID in setlIDs { try statement.execute(arguments: [ticketID, setlID]) }
    }

    /// The not-closed tickets of `kind` about `subject` that this node is responsible for,
    /// each with its records.
    public func openTickets(kind: TicketKind, subject: String, responsible: String) throws -> [(ticket: Ticket, setlIDs: [String])] {
        let tickets = try Row.fetchAll(db, sql: """
            SELECT * FROM tickets WHERE kind = ? AND subject = ? AND responsible = ? AND state != 'closed' ORDER BY opened_at_ms
            """, arguments: [kind.rawValue, subject, responsible]).compactMap(Ticket.init)
        return try tickets.map { ticket in
            (ticket, try String.fetchAll(db, sql: "SELECT setl_id FROM ticket_records WHERE ticket_id = ? ORDER BY setl_id",
                                         arguments: [ticket.ticketID]))
        }
    }

    public func removeTicketEvent(msgid: String) throws {
        try db.execute(sql: "DELETE FROM ticket_outbox WHERE msgid = ?", arguments: [msgid])
    }
}

/// The insured county's desk reads and writes the ledger within the round's transaction.

extension LedgerTransaction: TicketStore {}
