import ClusterControl
import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel
import Testing

/// A node restarted from its ledger (issue 21, item 5) takes up where it stopped: its serials,
/// its open tickets, its pending correction resolutions, and the answers it already gave.
@Suite(.serialized) struct RestartTests {
    /// The insured county: numbers its settlements on from where it stopped (no setl_id and no
    /// answer serial given twice), answers a msgid asked again exactly as before, and adds a
    /// repeated refusal to the ticket it had open rather than opening another.
    @Test func anInsuredCountyRestartedResumesItsSerialsTicketsAndAnswers() throws {
        let cluster = try TestCluster()
        defer { cluster.tearDown() }
        try cluster.start()
        let county = DivisionCode("410102")!
        let population = try #require(cluster.topology.population(of: county))
        // Local settlements at the county's own hospital: the county is origin and insured, so a
        // msgid asked again is answered from its own ledger, not from another node's.
        var factory = RequestFactory(institution: "H41010200002", treatment: county, firstSequence: 300)
        func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
        func settle(_ client: HospitalClient, person index: Int) throws -> (WireRequest, WireResponse) {
            let request = factory.settlement(psnNo: population.person(index).psnNo, insured: county,
                                             bill: .composed(totalFen: 12_300 + Int64(index)), inpatient: false, nowMs: now())
            let answer = try #require(try client.call(request), "no answer for person \(index)")
            return (request, answer)
        }
        // A person the county does not hold: refused on its own data, which opens a ticket for it.
        func refuse(_ client: HospitalClient) throws -> WireResponse {
            let request = factory.settlement(psnNo: "410102" + String(repeating: "9", count: 14), insured: county,
                                             bill: .composed(totalFen: 5_000), inpatient: false, nowMs: now())
            return try #require(try client.call(request), "no answer for the unknown person")
        }
        func serial(_ setlID: String) -> Int64? { Int64(setlID.dropFirst(6)) }

        var client = try HospitalClient(endpoint: cluster.endpoint("410102"))
        var before: [(WireRequest, WireResponse)] = []
        for index in 0..<5 { before.append(try settle(client, person: index)) }
        for (_, answer) in before { #expect(answer.infcode == 0, "\(answer.errMsg)") }
        let refusedBefore = try refuse(client)
        #expect(refusedBefore.errCode == ErrorCode.unknownPerson.rawValue, "\(refusedBefore.errMsg)")
        let ledgerPath = DataLayout(root: cluster.dataDirectory).ledgerPath(county)
        let ticket = try #require(try Ledger(path: ledgerPath).read { try $0.tickets() }.first { $0.kind == .businessRefusal },
                                  "the refusal opened no ticket")
        #expect(ticket.state != .closed && ticket.occurrences == 1)

        let restart = try settlenet(["cluster", "restart", "--data-dir", cluster.dataDirectory, "--node", "410102"])
        try #require(restart.status == 0, "\(restart.output)\(restart.error)")
        cluster.noteProcesses()
        client = try HospitalClient(endpoint: cluster.endpoint("410102"))

        // The same msgids: the same answers, field for field (the stored bytes, not a new decision).
        for (request, answer) in before {
            let again = try #require(try client.call(request), "no answer to \(request.msgid) after the restart")
            #expect(again == answer, "\(request.msgid) answered differently after the restart")
        }
        // New settlements go on from the last serial: nothing given twice.
        var after: [(WireRequest, WireResponse)] = []
        for index in 5..<10 { after.append(try settle(client, person: index)) }
        let setlIDs = (before + after).map { $0.1.settlement.setlID }
        #expect(Set(setlIDs).count == 10 && !setlIDs.contains(""), "\(setlIDs)")
        let lastBefore = try #require(before.compactMap { serial($0.1.settlement.setlID) }.max())
        #expect(after.compactMap { serial($0.1.settlement.setlID) } == Array((lastBefore + 1)...(lastBefore + 5)),
                "serials after the restart: \(after.map { $0.1.settlement.setlID })")
        let refusedAfter = try refuse(client)
        let references = (before + after).map { $0.1.infRefmsgid } + [refusedBefore.infRefmsgid, refusedAfter.infRefmsgid]
        #expect(Set(references).count == references.count, "an answer serial (inf_refmsgid) was given twice: \(references)")

        // The ticket it had open is the one the same refusal adds to.
        let tickets = try Ledger(path: ledgerPath).read { try $0.tickets() }.filter { $0.kind == .businessRefusal }
        #expect(tickets.map(\.ticketID) == [ticket.ticketID], "\(tickets.map(\.ticketID))")
        #expect(tickets.first?.occurrences == 2)
    }

    /// The origin county restarted while a settlement is in doubt: its correction resolution comes
    /// back from its ledger and resolves the settlement once the insured county answers again.
    @Test func anOriginRestartedWithASettlementInDoubtResolvesIt() throws {
        let cluster = try TestCluster()
        var paused: Int32?
        defer {
            if let paused { kill(paused, SIGCONT) }
            cluster.tearDown()
        }
        try cluster.start()
        let record = try Cluster(dataDirectory: cluster.dataDirectory).record()
        let insuredPid = try #require(record.nodes.first { $0.id == "410102" }?.pid)
        let insured = DivisionCode("410102")!, origin = DivisionCode("370211")!
        let person = try #require(cluster.topology.population(of: insured)?.firstPerson(filedOffsite: true, from: 40))
        var factory = RequestFactory(institution: "H37021100002", treatment: origin, firstSequence: 800)
        let originLedger = DataLayout(root: cluster.dataDirectory).ledgerPath(origin)

        // The insured county stops answering: the settlement ends in doubt at the origin, which
        // opens a correction resolution.
        kill(insuredPid, SIGSTOP)
        paused = insuredPid
        var request = factory.settlement(psnNo: person.psnNo, insured: insured, bill: .composed(totalFen: 45_600), inpatient: false,
                                         nowMs: Int64(Date().timeIntervalSince1970 * 1000))
        request.budgetMs = 2_000
        var client = try HospitalClient(endpoint: cluster.endpoint("370211"))
        let first = try #require(try client.call(request, timeoutMs: 5_000))
        #expect(first.errCode == ErrorCode.timeout.rawValue, "\(first.errMsg)")
        #expect(try Ledger(path: originLedger).read { try $0.resolutionCounts() }.open == 1)

        // The origin restarts while the county is still silent: its resolution is still open.
        let restart = try settlenet(["cluster", "restart", "--data-dir", cluster.dataDirectory, "--node", "370211"])
        try #require(restart.status == 0, "\(restart.output)\(restart.error)")
        cluster.noteProcesses()
        #expect(try Ledger(path: originLedger).read { try $0.resolutionCounts() }.open == 1, "the restart lost the resolution")

        // The county answers again: the restarted origin's correction resolves the settlement,
        // and asked again the hospital gets the final state.
        kill(insuredPid, SIGCONT)
        paused = nil
        client = try HospitalClient(endpoint: cluster.endpoint("370211"))
        var final: WireResponse?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let answer = try client.call(request, timeoutMs: 5_000), answer.errCode != ErrorCode.timeout.rawValue {
                final = answer
                break
            }
            usleep(300_000)
        }
        let resolved = try #require(final, "the restarted origin never resolved the settlement")
        #expect(resolved.errCode == ErrorCode.cancelledByCorrection.rawValue, "\(resolved.errMsg)")
        #expect(try Ledger(path: originLedger).read { try $0.resolutionCounts() }.open == 0)
        let reconcile = try settlenet(["reconcile", "--data-dir", cluster.dataDirectory])
        #expect(reconcile.status == 0, "\(reconcile.output)\(reconcile.error)")
    }
}
