import ClusterControl
import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel
import Testing

/// A county that stops answering mid-settlement: the hospital gets a fast indefinite answer,
/// never a hang, and the network resolves the outcome by correction reversal (2601).
@Suite(.serialized) struct ResolutionTests {
    @Test func aSettlementToAPausedCountyEndsReversedAndTheHospitalSeesTheFinalState() throws {
        let cluster = try TestCluster()
        var pids: [Int32] = []
        var paused: Int32?
        defer {
            if let paused { kill(paused, SIGCONT) }
            cluster.shutDown()
            for pid in pids { #expect(!isRunning(pid, of: cluster.dataDirectory), "process \(pid) left behind") }
            cluster.removeFiles()
        }
        let up = try cluster.up()
        try #require(up.status == 0, "cluster up failed: \(up.output) \(up.error)")
        pids = cluster.recordedPids
        let record = try Cluster(dataDirectory: cluster.dataDirectory).record()
        let insuredPid = try #require(record.nodes.first { $0.id == "410102" }?.pid)

        let topology = cluster.topology
        let client = try HospitalClient(endpoint: cluster.endpoint("370211"))
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!, firstSequence: 700)
        let person = topology.population(of: DivisionCode("410102")!)!.firstPerson(filedOffsite: true, from: 30)!
        let ledger = try Ledger(path: DataLayout(root: cluster.dataDirectory).ledgerPath(DivisionCode("410102")!))
        let balanceBefore = try #require(try ledger.read { try $0.person(person.psnNo) }).balanceFen

        // The insured county stops (SIGSTOP): its connections stay up, it just does not answer.
        kill(insuredPid, SIGSTOP)
        paused = insuredPid
        var request = factory.settlement(psnNo: person.psnNo, insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 60_000), inpatient: false,
                                         nowMs: Int64(Date().timeIntervalSince1970 * 1000))
        request.budgetMs = 2_000
        let sent = Date()
        let first = try #require(try client.call(request, timeoutMs: 5_000), "no answer at all: the request hung")
        let waited = Date().timeIntervalSince(sent)
        #expect(first.errCode == ErrorCode.timeout.rawValue, "expected an indefinite answer, got \(first.errMsg)")
        #expect(waited < 2.0, "answered after \(waited) s, beyond the 2 s budget")

        // The county comes back; the origin's correction reversal resolves the settlement. The
        // hospital asks again with the same msgid until the answer is definite.
        kill(insuredPid, SIGCONT)
        paused = nil
        var final: WireResponse?
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let answer = try client.call(request, timeoutMs: 5_000), answer.errCode != ErrorCode.timeout.rawValue {
                final = answer
                break
            }
            usleep(300_000)
        }
        let resolved = try #require(final, "the settlement was never resolved")
        #expect(resolved.errCode == ErrorCode.cancelledByCorrection.rawValue, "\(resolved.errMsg)")
        #expect(["reversed", "cancelled"].contains(resolved.warnMsg))
        // Whatever happened at the insured county, nothing of it is in effect: the balance is
        // back, and its ledger holds the settlement reversed or refused, never settled.
        #expect(try ledger.read { try $0.person(person.psnNo) }?.balanceFen == balanceBefore)
        let state = try ledger.read { try $0.settlementState(msgid: request.msgid) }?.state
        #expect(state == "reversed" || state == "refused", "insured county holds \(state ?? "nothing")")
        // Every tier that recorded the settlement shows the same final state; none is left unknown.
        for node in topology.routingTable.path(from: DivisionCode("370211")!, to: DivisionCode("410102")!) {
            let transit = try Ledger(path: DataLayout(root: cluster.dataDirectory).ledgerPath(node)).read { try $0.transit(msgid: request.msgid) }
            if let transit { #expect(transit.state != "unknown" && transit.state != "settled", "tier \(node): \(transit.state)") }
        }
        let origin = try Ledger(path: DataLayout(root: cluster.dataDirectory).ledgerPath(DivisionCode("370211")!))
        #expect(try origin.read { try $0.resolutionCounts() }.open == 0)

        // The city next to the silent county reported it (报错); the county acknowledged the
        // ticket when it was back (响应), and the city closed it when it answered again (销号).
        // The national registry holds every step with its time.
        let registry = try Ledger(path: DataLayout(root: cluster.dataDirectory).ledgerPath(DivisionCode("000000")!))
        var ticket: Ticket?
        for _ in 0..<100 {
            ticket = try registry.read { try $0.tickets() }.first { $0.kind == .nodeUnresponsive && $0.responsible == "410102" }
            // The county's acknowledgement may reach the registry after the city's close: wait for both.
            if ticket?.state == .closed && ticket?.acknowledgedAtMs != nil { break }
            usleep(100_000)
        }
        let closed = try #require(ticket, "no ticket for the silent county in the registry")
        #expect(closed.openedBy == "410100" && closed.state == .closed)
        let events = try registry.read { try $0.ticketEvents(closed.ticketID) }
        #expect(Set(events.map(\.event)) == ["opened", "acknowledged", "closed"], "\(events)")
        #expect(events.first { $0.event == "acknowledged" }?.node == "410102")
        // The silent county can only acknowledge once it is back, which is also when the city
        // closes the ticket: the two may come in either order, both after the opening.
        let acknowledged = try #require(closed.acknowledgedAtMs), done = try #require(closed.closedAtMs)
        #expect(closed.openedAtMs <= acknowledged && closed.openedAtMs <= done)
        let listed = try settlenet(["tickets", "list", "--data-dir", cluster.dataDirectory, "--state", "closed", "--json"])
        #expect(listed.status == 0 && listed.output.contains(closed.ticketID))
    }
}
