import SettlementCore
import SettlementModel
import SettlementTestKit
import Testing

/// The life of tickets between three desks, the opener, the responsible node and the national
/// registry, with every message carried by hand: no ledger, no process.
@Suite struct TicketDeskTests {
    let registryID = DivisionCode("000000")!

    /// A node's desk, store and answers.
    final class Node {
        var desk: TicketDesk
        var responses: ResponseFactory
        let store = InMemoryTicketStore()
        init(_ id: String, registry: DivisionCode) {
            desk = TicketDesk(node: DivisionCode(id)!, registry: registry)
            responses = ResponseFactory(division: DivisionCode(id)!)
        }
        func arrived(_ request: WireRequest, at nowMs: Int64) throws -> (answer: WireResponse, effects: TicketDesk.Effects) {
            let (body, effects) = try desk.arrived(request, receivedAtMs: nowMs, nowMs: nowMs, responses: &responses, store: store)
            return (try WireResponse(serializedBytes: body), effects)
        }
        func only(_ ticketID: String? = nil) throws -> Ticket {
            try #require(ticketID.map { store.tickets[$0] } ?? (store.tickets.count == 1 ? store.tickets.values.first : nil))
        }
    }

    /// Delivers every queued message to its destination, and each answer back to the sender's
    /// desk; returns the answers by event.
    @discardableResult
    func deliver(from sender: Node, to nodes: [String: Node], at nowMs: Int64) throws -> [String: WireResponse] {
        var answers: [String: WireResponse] = [:]
        for queued in sender.store.takeOutbox() {
            let node = try #require(nodes[queued.destination], "a message for \(queued.destination)")
            let (answer, _) = try node.arrived(queued.request, at: nowMs)
            let input = try #require(queued.input)
            answers[input.event] = answer
            try sender.desk.answered(TicketEvent(rawValue: input.event)!, ticketID: input.ticketID, answer, nowMs: nowMs,
                                     store: sender.store)
        }
        return answers
    }

    @Test func aSilentNodesTicketIsReportedAcknowledgedAndClosedWithEveryStepAtTheRegistry() throws {
        let city = Node("410100", registry: registryID), county = Node("410102", registry: registryID)
        let registry = Node("000000", registry: registryID)
        let nodes = ["410102": county, "000000": registry]

        let opened = try city.desk.open(.nodeUnresponsive, code: ErrorCode.timeout.rawValue, subject: "410102", responsible: "410102",
                                        reason: "no answer from node 410102 within the deadline", nowMs: 1_000, store: city.store)
        let ticket = try city.only()
        #expect(ticket.state == .open && ticket.openedBy == "410100" && ticket.occurrences == 1)
        #expect(opened.unresponsive == [.init(node: "410102", ticketID: ticket.ticketID)] && opened.queuedMessages)
        #expect(opened.notes == [.opened(ticketID: ticket.ticketID, kind: .nodeUnresponsive, responsible: "410102", code: "SN-E3002")])
        #expect(Set(city.store.outbox.map { "\($0.input!.event)>\($0.destination)" }) == ["opened>000000", "open>410102"])

        let answers = try deliver(from: city, to: nodes, at: 2_000)
        // The county acknowledged (响应): the city's copy says so, and the registry hears it from the county.
        #expect(answers["open"]?.infcode == 0)
        #expect(try county.only(ticket.ticketID).state == .acknowledged)
        #expect(try city.only().state == .acknowledged && city.only().acknowledgedAtMs == 2_000)
        #expect(try registry.only(ticket.ticketID).state == .open)
        try deliver(from: county, to: nodes, at: 2_500)
        #expect(try registry.only(ticket.ticketID).state == .acknowledged)

        // The county answers again: the city closes the ticket (销号); only the registry is told.
        let closed = try city.desk.close(ticket.ticketID, reason: "node 410102 answers again", nowMs: 3_000, store: city.store)
        #expect(closed.notes == [.closed(ticketID: ticket.ticketID, kind: .nodeUnresponsive, responsible: "410102")])
        #expect(city.store.outbox.map(\.destination) == ["000000"])
        try deliver(from: city, to: nodes, at: 3_100)
        let final = try registry.only(ticket.ticketID)
        #expect(final.state == .closed && final.openedAtMs == 1_000 && final.closedAtMs == 3_000)
        #expect(registry.store.events.map(\.event) == ["opened", "acknowledged", "closed"])
        #expect(registry.store.events.map(\.node) == ["410100", "410102", "410100"], "who did each step")
        // Closing twice does nothing.
        #expect(try city.desk.close(ticket.ticketID, reason: "again", nowMs: 4_000, store: city.store) == TicketDesk.Effects())
    }

    @Test func theSameCauseAgainCountsAnOccurrenceAndSendsItsRecords() throws {
        let province = Node("410000", registry: registryID), county = Node("410102", registry: registryID)
        let registry = Node("000000", registry: registryID)
        let nodes = ["410102": county, "000000": registry]
        _ = try province.desk.open(.uploadReject, code: "DQ-R204", subject: "H41010200001", responsible: "410102",
                                   reason: "duplicate", setlIDs: ["S1"], nowMs: 1_000, store: province.store)
        try deliver(from: province, to: nodes, at: 1_100)
        let again = try province.desk.open(.uploadReject, code: "DQ-R204", subject: "H41010200001", responsible: "410102",
                                           reason: "duplicate", setlIDs: ["S2"], nowMs: 1_200, store: province.store)
        #expect(again.notes.isEmpty && province.store.tickets.count == 1)
        #expect(try province.only().occurrences == 2)
        #expect(province.store.outbox.map { $0.input!.event } == ["occurrence"])
        try deliver(from: province, to: nodes, at: 1_300)

        // The hospital asks its county what to correct: both records, under the one ticket.
        var hospital = RequestFactory(institution: "H41010200001", treatment: DivisionCode("410102")!)
        var list = hospital.envelope(.ticket, insured: DivisionCode("410102")!, nowMs: 2_000)
        var input = TicketInput()
        input.event = TicketEvent.list.rawValue
        list.input = .ticket(input)
        guard case .ticket(let listed)? = try county.arrived(list, at: 2_000).answer.output else { Issue.record("no list"); return }
        #expect(listed.state == "listed" && listed.tickets.map(\.setlIds) == [["S1", "S2"]])

        // Corrected: the province closes it, and tells the county too, so the hospital stops being asked.
        let ticketID = try province.only().ticketID
        _ = try province.desk.close(ticketID, reason: "corrected", nowMs: 3_000, store: province.store)
        #expect(Set(province.store.outbox.map(\.destination)) == ["000000", "410102"])
        try deliver(from: province, to: nodes, at: 3_100)
        guard case .ticket(let after)? = try county.arrived(list, at: 3_200).answer.output else { Issue.record("no list"); return }
        #expect(after.tickets.isEmpty)
    }

    @Test func aTicketANodeOpensOnItselfIsAcknowledgedAtOnceAndTheRegistrysOwnAreRecordedWithoutMessages() throws {
        let county = Node("410102", registry: registryID), registry = Node("000000", registry: registryID)
        _ = try county.desk.open(.businessRefusal, code: "SN-E2001", subject: "H37021100001", responsible: "410102",
                                 reason: "person not found", nowMs: 1_000, store: county.store)
        #expect(try county.only().state == .acknowledged)
        #expect(county.store.outbox.map { $0.input!.event } == ["opened", "acknowledged"])
        try deliver(from: county, to: ["000000": registry], at: 1_100)
        #expect(try registry.only().state == .acknowledged)

        let national = Node("000000", registry: registryID)
        _ = try national.desk.open(.nodeUnresponsive, code: "SN-E3002", subject: "410000", responsible: "410000",
                                   reason: "silent", nowMs: 5_000, store: national.store)
        #expect(national.store.events.map(\.event) == ["opened"], "recorded at once in its own registry")
        #expect(national.store.outbox.map(\.destination) == ["410000"])
    }

    @Test func statesOnlyMoveForwardAtTheRegistryWhateverOrderEventsArriveIn() throws {
        let city = Node("410100", registry: registryID), registry = Node("000000", registry: registryID)
        _ = try city.desk.open(.nodeUnresponsive, code: "SN-E3002", subject: "410102", responsible: "410102", reason: "silent",
                               nowMs: 1_000, store: city.store)
        let queued = city.store.takeOutbox()
        let ticketID = try city.only().ticketID
        _ = try city.desk.close(ticketID, reason: "back", nowMs: 2_000, store: city.store)
        // The close reaches the registry before the opening.
        for message in city.store.takeOutbox() + queued where message.destination == "000000" {
            _ = try registry.arrived(message.request, at: 3_000)
        }
        let ticket = try registry.only()
        #expect(ticket.state == .closed && ticket.openedAtMs == 1_000 && ticket.closedAtMs == 2_000)
    }

    @Test func aTicketMessageWithoutItsInputOrWithAnUnknownEventIsRefusedOrOnlyReceived() throws {
        let registry = Node("000000", registry: registryID)
        var request = WireRequest()
        request.infno = TransactionCode.ticket.rawValue
        request.msgid = "TE1"
        #expect(try registry.arrived(request, at: 1).answer.errCode == ErrorCode.missingField.rawValue)
        var input = TicketInput()
        input.event = "reopened"
        input.kind = "node_unresponsive"
        request.input = .ticket(input)
        guard case .ticket(let out)? = try registry.arrived(request, at: 2).answer.output else { Issue.record("no answer"); return }
        #expect(out.state == "received" && registry.store.tickets.isEmpty)
    }
}
