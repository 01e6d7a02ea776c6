import SettlementCore
import SettlementModel
import Testing

@Suite struct NodeMachineTests {
    let hospital: Peer = .downstream([0, 1, 2, 3, 4])
    let institution = "H37021100001"

    func machine(_ id: String, timeoutMs: Int64 = 10_000, pendingLimit: Int = 100) -> NodeMachine {
        let institutions: Set<String> = Minimal.routing.tier(of: code(id)) == .county ? ["H\(id)00001"] : []
        return NodeMachine(config: .init(id: code(id), tier: Minimal.routing.tier(of: code(id))!, routing: Minimal.routing,
                                         institutions: institutions, forwardTimeoutMs: timeoutMs, pendingLimit: pendingLimit))
    }

    /// The request as a hop forwards it: the same, with the budget less two reserves (default 10 s).
    func onward(_ request: WireRequest) -> WireRequest {
        var forwarded = request
        forwarded.budgetMs = (request.budgetMs > 0 ? request.budgetMs : 10_000) - 200
        return forwarded
    }

    func settlement(to insured: String, from treatment: String = "370211", sequence: Int = 1) -> WireRequest {
        var factory = RequestFactory(institution: "H\(treatment)00001", treatment: code(treatment), firstSequence: sequence)
        let psn = SyntheticPopulation(county: code(insured), size: 100).firstPerson(filedOffsite: true)!.psnNo
        return factory.settlement(psnNo: psn, insured: code(insured), bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 1_000)
    }

    @Test func aLocalSettlementIsDecidedHere() {
        var county = machine("370211")
        let request = settlement(to: "370211")
        let directives = county.receivedRequest(request, from: hospital, nowMs: 1)
        #expect(directives == [.settleHere(request, replyTo: hospital, role: .local, receivedAtMs: 1)])
    }

    @Test func anOffsiteSettlementGoesUpAndItsAnswerComesBackWithARecord() {
        var county = machine("370211")
        let request = settlement(to: "410102")
        // Journaled as in flight first: a crash before the answer must leave the origin knowing it is out.
        let inFlight = TransitRecord(inFlight: RequestMeta(request), nowMs: 1)
        #expect(county.receivedRequest(request, from: hospital, nowMs: 1)
                == [.journalAndForward(onward(request), to: .parent, inFlight: inFlight)])
        #expect(inFlight.state == .unknown && inFlight.role == .origin && inFlight.errCode.isEmpty)
        #expect(county.pendingCount == 1)
        var answer = WireResponse()
        answer.infcode = 0
        answer.reqMsgid = request.msgid
        var out = SettlementOutput()
        out.setlID = "S1"
        out.medfeeSumamt = 10_000
        answer.output = .settlement(out)
        let directives = county.receivedResponse(answer, from: .parent, nowMs: 5)
        guard case .answer(let sent, let peer, let record)? = directives.first else {
            Issue.record("expected an answer, got \(directives)")
            return
        }
        #expect(sent == answer)
        #expect(peer == hospital)
        #expect(record?.role == .origin)
        #expect(record?.state == .settled)
        #expect(record?.setlID == "S1")
        #expect(county.pendingCount == 0)
        // A late duplicate answer finds nobody waiting.
        #expect(county.receivedResponse(answer, from: .parent, nowMs: 6).isEmpty)
    }

    /// A node with nothing pending and nothing to resolve has nothing to do until a message
    /// comes, and says so: a simulation turns it only then. (It once asked for a turn every
    /// second: half of a national simulation's events were idle nodes turned for nothing.)
    @Test func anIdleNodeAsksForNoTurnUntilAMessageComes() {
        var national = NodeMachine(config: .init(id: code("000000"), tier: .national, routing: Minimal.routing, institutions: [],
                                                 nationalCatalog: Catalog.national()))
        _ = national.tick(nowMs: 0)
        #expect(national.isReady)
        #expect(national.nextDeadlineMs(nowMs: 0) == .max)
        #expect(national.nextDeadlineMs(nowMs: 3_600_000) == .max)
    }

    @Test func relaysRouteDownTowardsTheInsuredCounty() {
        var national = machine("000000")
        let request = settlement(to: "410102")
        let fromShandong: Peer = .downstream(Array("370000".utf8))
        #expect(national.receivedRequest(request, from: fromShandong, nowMs: 1) == [.forward(onward(request), to: .downstream(Array("410000".utf8)))])
        var henan = machine("410000")
        #expect(henan.receivedRequest(request, from: .parent, nowMs: 1) == [.forward(onward(request), to: .downstream(Array("410100".utf8)))])
        var insured = machine("410102")
        #expect(insured.receivedRequest(request, from: .parent, nowMs: 1)
                == [.settleHere(request, replyTo: .parent, role: .insured, receivedAtMs: 1)])
    }

    @Test func aSilentNextHopGivesAnIndefiniteTimeoutBeforeTheSenderGivesUp() {
        var county = machine("370211", timeoutMs: 1_000)
        var request = settlement(to: "410102")
        request.budgetMs = 1_000
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        // The county keeps 100 ms of the hospital's 1,000 to answer back: it gives up at 900.
        #expect(county.tick(nowMs: 899).allSatisfy { if case .answer = $0 { false } else { true } })
        let directives = county.tick(nowMs: 900).filter { if case .answer = $0 { true } else { false } }
        guard case .answer(let answer, let peer, let record)? = directives.first else {
            Issue.record("expected a timeout answer")
            return
        }
        #expect(peer == hospital)
        #expect(answer.infcode == -1)
        #expect(answer.errCode == ErrorCode.timeout.rawValue)
        #expect(!ErrorCode.timeout.isDefinite)
        #expect(record?.state == .unknown)
    }

    @Test func anUnreachableNextHopGivesADefiniteAnswer() {
        var county = machine("370211")
        let request = settlement(to: "410102")
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        let directives = county.forwardFailed(msgid: request.msgid, nowMs: 1)
        guard case .answer(let answer, _, _)? = directives.first else { Issue.record("no answer"); return }
        #expect(answer.errCode == ErrorCode.unreachable.rawValue)
        #expect(ErrorCode.unreachable.isDefinite)
    }

    @Test func theSameMsgidWhilePendingIsForwardedOnce() {
        var county = machine("370211")
        let request = settlement(to: "410102")
        #expect(county.receivedRequest(request, from: hospital, nowMs: 0).count == 1)
        #expect(county.receivedRequest(request, from: hospital, nowMs: 1).isEmpty)
        #expect(county.pendingCount == 1)
    }

    @Test func aFullPendingTableRefusesAsBusy() {
        var county = machine("370211", pendingLimit: 1)
        _ = county.receivedRequest(settlement(to: "410102", sequence: 1), from: hospital, nowMs: 0)
        let directives = county.receivedRequest(settlement(to: "410102", sequence: 2), from: hospital, nowMs: 0)
        guard case .answer(let answer, _, _)? = directives.first else { Issue.record("no answer"); return }
        #expect(answer.errCode == ErrorCode.busy.rawValue)
    }

    @Test func badEnvelopesGetPreciseDefiniteErrors() {
        var county = machine("370211")
        func errorCode(_ mutate: (inout WireRequest) -> Void) -> String? {
            var request = settlement(to: "410102")
            mutate(&request)
            guard case .answer(let answer, _, _)? = county.receivedRequest(request, from: hospital, nowMs: 0).first else { return nil }
            #expect(answer.infcode == -1)
            #expect(answer.errMsg.hasPrefix("FSI-"))
            return answer.errCode
        }
        #expect(errorCode { $0.infno = "9999" } == ErrorCode.unknownTransaction.rawValue)
        #expect(errorCode { $0.insuplcAdmdvs = "999999" } == ErrorCode.badDivision.rawValue)
        #expect(errorCode { $0.insuplcAdmdvs = "41A" } == ErrorCode.badDivision.rawValue)
        #expect(errorCode { $0.mdtrtareaAdmvs = "370202" } == ErrorCode.wrongNode.rawValue)
        #expect(errorCode { $0.fixmedinsCode = "H37021199999" } == ErrorCode.unknownInstitution.rawValue)
        #expect(errorCode { $0.msgid = "" } == ErrorCode.missingField.rawValue)
        #expect(errorCode { $0.input = nil } == ErrorCode.missingField.rawValue)
        #expect(county.pendingCount == 0)
    }

    @Test func hospitalsCannotTalkToRelayNodes() {
        var city = machine("370200")
        guard case .answer(let answer, _, _)? = city.receivedRequest(settlement(to: "410102"), from: hospital, nowMs: 0).first else {
            Issue.record("no answer"); return
        }
        #expect(answer.errCode == ErrorCode.wrongNode.rawValue)
    }

    @Test func signInIsSentUntilAnsweredAndChildrenAreSignedIn() {
        var county = machine("370211")
        #expect(!county.isSignedIn)
        guard case .forward(let signIn, .parent)? = county.tick(nowMs: 0).first else { Issue.record("no sign-in"); return }
        #expect(signIn.infno == "9001")
        #expect(county.tick(nowMs: 500).isEmpty)          // not again before the retry interval
        #expect(county.tick(nowMs: 1_000).count == 1)     // again after it
        var city = machine("370200")
        let retried = { () -> WireRequest in
            guard case .forward(let request, _)? = county.tick(nowMs: 2_000).first else { return signIn }
            return request
        }()
        guard case .answer(let answer, let peer, _)? = city.receivedRequest(retried, from: .downstream(Array("370211".utf8)), nowMs: 2_001).first else {
            Issue.record("no sign-in answer"); return
        }
        #expect(peer == .downstream(Array("370211".utf8)))
        #expect(city.signedInChildren == [code("370211")])
        _ = county.receivedResponse(answer, from: .parent, nowMs: 2_002)
        #expect(county.isSignedIn)
        #expect(!county.isReady)
        // Signed in, the node downloads the catalog (1301) from its parent, and then is ready.
        guard case .forward(let download, .parent)? = county.tick(nowMs: 3_000).first else { Issue.record("no 1301"); return }
        #expect(download.infno == "1301")
        city = NodeMachine(config: .init(id: code("370200"), tier: .city, routing: Minimal.routing, nationalCatalog: Catalog.national()))
        guard case .answer(let catalogAnswer, _, _)? = city.receivedRequest(download, from: .downstream(Array("370211".utf8)), nowMs: 3_001).first else {
            Issue.record("no catalog answer"); return
        }
        _ = county.receivedResponse(catalogAnswer, from: .parent, nowMs: 3_002)
        #expect(county.isReady)
        #expect(county.catalog?.version == Catalog.national().version)
        #expect(county.tick(nowMs: 10_000).isEmpty)
    }

    /// The link to the parent came back (the parent restarted): sign in again at once, so the
    /// parent knows the child and can route to it. The root has no parent; a draining node stays quiet.
    @Test func aParentLinkThatComesBackGetsASignInAtOnce() {
        var county = machine("370211")
        _ = county.tick(nowMs: 0)
        let again = county.parentLinkUp(nowMs: 10)
        #expect(again.count == 1 && again.allSatisfy { if case .forward(let r, .parent) = $0 { r.infno == "9001" } else { false } })
        var national = machine("000000")
        #expect(national.parentLinkUp(nowMs: 10).isEmpty)
        county.beginDraining()
        #expect(county.parentLinkUp(nowMs: 20).isEmpty)
    }

    func redials(_ directives: [Directive]) -> Int {
        directives.filter { if case .redialParent = $0 { true } else { false } }.count
    }

    /// A county signed in by its city (the city's answer to its first sign-in).
    func signedIn(_ id: String, parent: String, nowMs: Int64) -> NodeMachine {
        var county = machine(id)
        var city = machine(parent)
        guard case .forward(let signIn, .parent)? = county.tick(nowMs: nowMs).first,
              case .answer(let answer, _, _)? = city.receivedRequest(signIn, from: .downstream(Array(id.utf8)), nowMs: nowMs).first
        else { Issue.record("no sign-in"); return county }
        _ = county.receivedResponse(answer, from: .parent, nowMs: nowMs)
        return county
    }

    /// A link can look connected and lead nowhere: another process that presented this node's
    /// routing id took it over at the parent. Sign-ins that go unanswered make the node dial
    /// its parent again, no oftener than every third retry.
    @Test func aParentThatAnswersNoSignInIsDialledAgain() {
        var county = machine("370211")
        #expect(redials(county.tick(nowMs: 0)) == 0)
        #expect(redials(county.tick(nowMs: 1_000)) == 0)
        #expect(redials(county.tick(nowMs: 2_000)) == 0)
        let third = county.tick(nowMs: 3_000)
        #expect(redials(third) == 1)
        // Redial first, then the sign-in (which the new link's handshake also asks for).
        if case .redialParent? = third.first {} else { Issue.record("the redial should come first: \(third)") }
        #expect(third.contains { if case .forward(let r, .parent) = $0 { r.infno == "9001" } else { false } })
        #expect(redials(county.tick(nowMs: 4_000)) + redials(county.tick(nowMs: 5_000)) == 0)
        #expect(redials(county.tick(nowMs: 6_000)) == 1)
        // The root has no parent to dial.
        var national = machine("000000")
        #expect((0..<10).allSatisfy { redials(national.tick(nowMs: Int64($0) * 1_000)) == 0 })
    }

    /// Anything heard from the parent shows the link works: sign-ins answered late, or a
    /// request from it, put the count back to zero.
    @Test func aParentHeardFromIsNotDialledAgain() {
        var county = machine("370211")
        _ = county.tick(nowMs: 0)
        _ = county.tick(nowMs: 1_000)
        var notice = WireResponse()
        notice.reqMsgid = "something else"
        _ = county.receivedResponse(notice, from: .parent, nowMs: 1_500)
        #expect(redials(county.tick(nowMs: 2_000)) == 0)
        #expect(redials(county.tick(nowMs: 3_000)) == 0)
        #expect(redials(county.tick(nowMs: 4_000)) == 0)
        #expect(redials(county.tick(nowMs: 5_000)) == 1)
    }

    /// Signed in, a request to the parent that times out while the parent said nothing since it
    /// went up means a dead link; a parent that answered something else meanwhile is only slow.
    @Test func aSilentParentIsDialledAgainWhenARequestToItTimesOut() {
        var county = signedIn("370211", parent: "370200", nowMs: 0)
        _ = county.receivedRequest(settlement(to: "410102", sequence: 1), from: hospital, nowMs: 100)
        let expired = county.tick(nowMs: 100 + 10_000)
        #expect(redials(expired) == 1)
        #expect(expired.contains { if case .answer(let r, _, _) = $0 { r.errCode == ErrorCode.timeout.rawValue } else { false } })

        var slow = signedIn("370211", parent: "370200", nowMs: 0)
        _ = slow.receivedRequest(settlement(to: "410102", sequence: 1), from: hospital, nowMs: 100)
        let second = settlement(to: "410102", sequence: 2)
        _ = slow.receivedRequest(second, from: hospital, nowMs: 200)
        var answer = WireResponse()
        answer.reqMsgid = second.msgid
        answer.infcode = 0
        _ = slow.receivedResponse(answer, from: .parent, nowMs: 5_000)
        #expect(redials(slow.tick(nowMs: 100 + 10_000)) == 0)
    }

    @Test func drainingRefusesNewWorkButPassesAnswers() {
        var county = machine("370211")
        let first = settlement(to: "410102", sequence: 1)
        _ = county.receivedRequest(first, from: hospital, nowMs: 0)
        county.beginDraining()
        guard case .answer(let refusal, _, _)? = county.receivedRequest(settlement(to: "410102", sequence: 2), from: hospital, nowMs: 1).first else {
            Issue.record("no refusal"); return
        }
        #expect(refusal.errCode == ErrorCode.shuttingDown.rawValue)
        var answer = WireResponse()
        answer.infcode = 0
        answer.reqMsgid = first.msgid
        #expect(county.receivedResponse(answer, from: .parent, nowMs: 2).count == 1)
    }
}

@Suite struct NodeMachineForgeryTests {
    @Test func onlyThePeerARequestWentToMayAnswerIt() {
        var county = NodeMachine(config: .init(id: code("370211"), tier: .county, routing: Minimal.routing,
                                               institutions: ["H37021100001"]))
        var factory = RequestFactory(institution: "H37021100001", treatment: code("370211"))
        let request = factory.settlement(psnNo: "41010200000000000000", insured: code("410102"),
                                         bill: .composed(totalFen: 100), inpatient: false, nowMs: 0)
        _ = county.receivedRequest(request, from: .downstream([0, 9]), nowMs: 0)
        var forged = WireResponse()
        forged.infcode = 0
        forged.reqMsgid = request.msgid
        #expect(county.receivedResponse(forged, from: .downstream([0, 7]), nowMs: 1).isEmpty)
        #expect(county.pendingCount == 1)
        #expect(county.receivedResponse(forged, from: .parent, nowMs: 2).count == 1)
    }

    @Test func aHospitalCanOnlyUseMsgidsThatBeginWithItsOwnCode() {
        var county = NodeMachine(config: .init(id: code("370211"), tier: .county, routing: Minimal.routing,
                                               institutions: ["H37021100001", "H37021100002"]))
        var factory = RequestFactory(institution: "H37021100001", treatment: code("370211"))
        var request = factory.settlement(psnNo: "41010200000000000000", insured: code("410102"),
                                         bill: .composed(totalFen: 100), inpatient: false, nowMs: 0)
        request.fixmedinsCode = "H37021100002"
        guard case .answer(let answer, _, _)? = county.receivedRequest(request, from: .downstream([0, 9]), nowMs: 0).first else {
            Issue.record("accepted another hospital's msgid"); return
        }
        #expect(answer.errCode == ErrorCode.missingField.rawValue)
    }

    /// A hospital's 9101: "list" (what to correct) at its own county only; no other ticket event.
    func ticketRequest(event: String, to county: String, institution: String = "H37021100001") -> WireRequest {
        var request = WireRequest()
        request.infno = TransactionCode.ticket.rawValue
        request.msgid = MessageID.request(institution: institution, unixMs: 1_000, sequence: 1)
        request.mdtrtareaAdmvs = county
        request.insuplcAdmdvs = county
        request.fixmedinsCode = institution
        var input = TicketInput()
        input.event = event
        request.input = .ticket(input)
        return request
    }

    @Test func aHospitalMayListItsTicketsAtItsCountyAndDoNothingElseWithTickets() {
        let hospital: Peer = .downstream([0, 1, 2, 3, 4])
        var county = NodeMachine(config: .init(id: code("370211"), tier: .county, routing: Minimal.routing,
                                               institutions: ["H37021100001"]))
        let list = ticketRequest(event: "list", to: "370211")
        #expect(county.receivedRequest(list, from: hospital, nowMs: 5) == [.ticketHere(list, replyTo: hospital, receivedAtMs: 5)])
        let refused: [(WireRequest, ErrorCode)] = [(ticketRequest(event: "closed", to: "370211"), .wrongNode),
                                    (ticketRequest(event: "list", to: "000000"), .wrongNode),
                                    (ticketRequest(event: "list", to: "370211", institution: "H41010200001"), .unknownInstitution)]
        for (request, expected) in refused {
            guard case .answer(let answer, _, _)? = county.receivedRequest(request, from: hospital, nowMs: 5).first else {
                Issue.record("\(request.input!) accepted from a hospital"); continue
            }
            #expect(answer.errCode == expected.rawValue, "\(answer.errMsg)")
        }
    }
}

@Suite struct DeadlineAndResolutionTests {
    let hospital: Peer = .downstream([0, 1, 2, 3, 4])

    func machine(_ id: String) -> NodeMachine {
        let institutions: Set<String> = Minimal.routing.tier(of: code(id)) == .county ? ["H\(id)00001"] : []
        return NodeMachine(config: .init(id: code(id), tier: Minimal.routing.tier(of: code(id))!, routing: Minimal.routing,
                                         institutions: institutions, forwardTimeoutMs: 2_000))
    }

    /// A node whose parent answered its sign-in (at time 0): it may send corrections.
    func signedIn(_ id: String) -> NodeMachine {
        var node = machine(id)
        guard case .forward(let signIn, .parent)? = node.tick(nowMs: 0).first else { return node }
        var answer = WireResponse()
        answer.reqMsgid = signIn.msgid
        answer.infcode = 0
        var out = SignInOutput()
        out.signNo = "test"
        answer.output = .signIn(out)
        _ = node.receivedResponse(answer, from: .parent, nowMs: 0)
        return node
    }

    func settlement(budgetMs: Int32) -> WireRequest {
        var factory = RequestFactory(institution: "H37021100001", treatment: code("370211"), firstSequence: 1)
        let psn = SyntheticPopulation(county: code("410102"), size: 100).firstPerson(filedOffsite: true)!.psnNo
        var request = factory.settlement(psnNo: psn, insured: code("410102"), bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 0)
        request.budgetMs = budgetMs
        return request
    }

    @Test func theBudgetShrinksHopByHopSoEveryHopAnswersBeforeItsCaller() {
        var at: [String: NodeMachine] = [:]
        for id in ["370211", "370200", "370000", "000000", "410000", "410100"] { at[id] = machine(id) }
        var request = settlement(budgetMs: 3_000)
        var from: Peer = hospital
        var budgets: [Int32] = []
        var deadlines: [Int64] = []
        for id in ["370211", "370200", "370000", "000000", "410000", "410100"] {
            let sent = at[id]!.receivedRequest(request, from: from, nowMs: 0).first
            let forwarded: (WireRequest, Peer)? = switch sent {
            case .forward(let onward, let target)?, .journalAndForward(let onward, let target, _)?: (onward, target)
            default: nil
            }
            guard let (onward, target) = forwarded else { Issue.record("\(id) did not forward"); return }
            budgets.append(onward.budgetMs)
            // Each hop's own deadline: when its timeout answer goes out.
            var probe = at[id]!
            let expiry = (0...3_000).first { now in
                probe.tick(nowMs: Int64(now)).contains { if case .answer = $0 { true } else { false } }
            }
            deadlines.append(Int64(expiry ?? -1))
            request = onward
            from = target == .parent ? .downstream(Array(id.utf8)) : .parent
        }
        #expect(budgets == [2_800, 2_600, 2_400, 2_200, 2_000, 1_800])
        #expect(deadlines == [2_900, 2_700, 2_500, 2_300, 2_100, 1_900], "each hop must give up before the one that called it")
    }

    @Test func tooLittleTimeLeftIsADefiniteRefusalNotAForward() {
        var county = machine("370211")
        guard case .answer(let answer, _, _)? = county.receivedRequest(settlement(budgetMs: 150), from: hospital, nowMs: 0).first else {
            Issue.record("forwarded with no time left"); return
        }
        #expect(answer.errCode == ErrorCode.deadlineTooShort.rawValue)
        #expect(ErrorCode.deadlineTooShort.isDefinite)
        #expect(county.pendingCount == 0)
    }

    /// The insured county's answer to the correction (2601) of `omsgid`: it had settled, now reversed.
    func correctionAnswer(reversing omsgid: String) -> WireResponse {
        var answer = WireResponse()
        answer.infcode = 0
        answer.reqMsgid = NodeMachine.Resolution.correctionMsgid(of: omsgid)
        var out = CorrectionOutput()
        out.omsgid = omsgid
        out.outcome = "reversed"
        answer.output = .correction(out)
        return answer
    }

    @Test func anIndefiniteOutcomeIsResolvedByCorrectionReversalWithBackoff() {
        var county = signedIn("370211")
        let request = settlement(budgetMs: 1_000)
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        // The answer never comes: the hospital gets an indefinite answer, resolution starts, and
        // the first correction (2601) goes out at once.
        let timedOut = county.tick(nowMs: 900)
        func corrections(_ directives: [Directive]) -> [WireRequest] {
            directives.compactMap { if case .forward(let r, .parent) = $0, r.infno == "2601" { r } else { nil } }
        }
        #expect(timedOut.contains { if case .answer(let a, _, _) = $0 { a.errCode == ErrorCode.timeout.rawValue } else { false } })
        #expect(timedOut.contains { if case .resolution(let r) = $0 { r.omsgid == request.msgid } else { false } })
        let first = corrections(timedOut)
        #expect(first.map(\.msgid) == ["CR" + request.msgid])
        if case .correction(let input)? = first.first?.input { #expect(input.omsgid == request.msgid && input.oinfno == "2207") }
        // The same msgid again while resolving: still indefinite, nothing forwarded.
        let again = county.receivedRequest(request, from: hospital, nowMs: 901)
        #expect(again.count == 1 && again.allSatisfy { if case .answer(let a, _, _) = $0 { a.errCode == ErrorCode.timeout.rawValue } else { false } })
        // The correction times out too (indefinite): no new attempt until the backoff has passed,
        // then the same msgid again.
        let expired = county.tick(nowMs: 900 + 1_900)
        #expect(corrections(expired).isEmpty)
        let retryAt = county.resolutions[request.msgid]!.nextAttemptMs
        #expect(retryAt > 900 + 1_900)
        #expect(corrections(county.tick(nowMs: retryAt - 1)).isEmpty)
        let second = corrections(county.tick(nowMs: retryAt))
        #expect(second.map(\.msgid) == ["CR" + request.msgid])
        // A definite answer resolves it: the settlement had settled and is now reversed.
        let answer = correctionAnswer(reversing: request.msgid)
        let resolved = county.receivedResponse(answer, from: .parent, nowMs: retryAt + 10)
        guard case .resolved(let resolution, let final, let record)? = resolved.first, case let omsgid = resolution.omsgid else { Issue.record("not resolved: \(resolved)"); return }
        #expect(omsgid == request.msgid)
        #expect(final.errCode == ErrorCode.cancelledByCorrection.rawValue && final.reqMsgid == request.msgid)
        #expect(ErrorCode.cancelledByCorrection.isDefinite)
        #expect(record.state == .reversed)
        #expect(county.resolutions.isEmpty)
        #expect(corrections(county.tick(nowMs: retryAt + 60_000)).isEmpty)
    }

    /// Right after a restart the parent link is not up yet: a correction sent then could not be
    /// handed off, and would wait out the longest backoff. None goes before the sign-in's answer.
    @Test func noCorrectionGoesOutBeforeTheNodeHasSignedIn() {
        var county = machine("370211")
        let open = NodeMachine.Resolution(omsgid: "H37021100001202611230000000001", oinfno: "2207", psnNo: "41010200000000000000",
                                          insured: "410102", treatment: "370211", fixmedinsCode: "H37021100001", nextAttemptMs: 0)
        county.restore([open])
        let first = county.tick(nowMs: 0)
        #expect(first.allSatisfy { if case .forward(let r, _) = $0 { r.infno == "9001" } else { false } }, "\(first)")
        guard case .forward(let signIn, _)? = first.first else { Issue.record("no sign-in"); return }
        var answer = WireResponse()
        answer.reqMsgid = signIn.msgid
        answer.infcode = 0
        answer.output = .signIn(SignInOutput())
        _ = county.receivedResponse(answer, from: .parent, nowMs: 40)
        #expect(county.nextDeadlineMs(nowMs: 40) <= 40, "signed in with a correction due: the shell must not sleep")
        let sent = county.tick(nowMs: 40).compactMap { if case .forward(let r, _) = $0, r.infno == "2601" { r.msgid } else { nil } }
        #expect(sent == ["CR" + open.omsgid])
    }

    @Test func openResolutionsSurviveARestart() {
        var county = signedIn("370211")
        let open = NodeMachine.Resolution(omsgid: "H37021100001202611230000000001", oinfno: "2207", psnNo: "41010200000000000000",
                                          insured: "410102", treatment: "370211", fixmedinsCode: "H37021100001", nextAttemptMs: 5)
        county.restore([open])
        let sent = county.tick(nowMs: 5).compactMap { if case .forward(let r, _) = $0 { r.msgid } else { nil } }
        #expect(sent.contains("CR" + open.omsgid))
    }

    func reversal(of settlement: WireRequest, sequence: Int = 2, budgetMs: Int32 = 1_000) -> WireRequest {
        var factory = RequestFactory(institution: "H37021100001", treatment: code("370211"), firstSequence: sequence)
        guard case .settlement(let input)? = settlement.input else { return settlement }
        var request = factory.reversal(omsgid: settlement.msgid, psnNo: input.psnNo, insured: code("410102"), inpatient: false, nowMs: 0)
        request.budgetMs = budgetMs
        return request
    }

    /// The README's old known limit: a reversal whose answer came back after the origin's
    /// deadline left the origin at `settled` while every other tier had it reversed. Its outcome
    /// is now in doubt like a settlement's, and resolved by a correction of the settlement.
    @Test func aReversalInDoubtAtTheOriginResolvesTheSettlementItReverses() {
        var county = signedIn("370211")
        let original = settlement(budgetMs: 1_000)
        let request = reversal(of: original)
        guard case .journalAndForward(_, .parent, let inFlight)? = county.receivedRequest(request, from: hospital, nowMs: 0).first else {
            Issue.record("the reversal was not journaled"); return
        }
        #expect(inFlight.omsgid == original.msgid && inFlight.oinfno == "2207")
        let timedOut = county.tick(nowMs: 900)
        #expect(timedOut.contains { if case .answer(let a, _, _) = $0 { a.errCode == ErrorCode.timeout.rawValue } else { false } })
        let started = timedOut.compactMap { if case .resolution(let r) = $0 { r } else { nil } }
        #expect(Set(started.map(\.omsgid)) == [original.msgid] && started.allSatisfy { $0.oinfno == "2207" })
        let corrections = timedOut.compactMap { if case .forward(let r, .parent) = $0, r.infno == "2601" { r } else { nil } }
        #expect(corrections.map(\.msgid) == ["CR" + original.msgid])
    }

    /// The hospital asks again about a reversal in doubt while its settlement is being
    /// resolved. Sent on, that copy could be refused by a tier on the way that is down, and the
    /// refusal would read as the reversal's outcome (recorded so here, and the asking would
    /// stop) while the first copy may have reversed the settlement. It waits for the correction.
    @Test func aReversalAskedAgainWhileItsSettlementIsResolvedIsNotSentOn() {
        var county = signedIn("370211")
        let original = settlement(budgetMs: 1_000)
        let request = reversal(of: original)
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        _ = county.tick(nowMs: 900)
        #expect(county.resolutions[original.msgid] != nil)
        let waiting = county.pendingCount   // the correction
        let again = county.receivedRequest(request, from: hospital, nowMs: 1_000)
        guard case .answer(let answer, let peer, let record)? = again.first, again.count == 1 else {
            Issue.record("expected one answer, got \(again)"); return
        }
        #expect(peer == hospital && record == nil)
        #expect(answer.errCode == ErrorCode.timeout.rawValue && answer.reqMsgid == request.msgid, "still in doubt, not refused")
        #expect(county.pendingCount == waiting, "the reversal was sent on")
        // Once resolved, a reversal asked about again goes on to the insured county's answer.
        county = signedIn("370211")
        let sentOn = county.receivedRequest(request, from: hospital, nowMs: 2_000)
        #expect(sentOn.contains { if case .journalAndForward = $0 { true } else { false } })
    }

    /// Resolved by correction: the hospital asking again gets the final answer from the ledger
    /// (the machine asks the shell for it), even while the node drains, and never a copy sent on.
    @Test func aSettlementResolvedByCorrectionIsAnsweredFromTheLedgerWhenAskedAgain() {
        var county = signedIn("370211")
        let request = settlement(budgetMs: 1_000)
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        _ = county.tick(nowMs: 900)
        let answer = correctionAnswer(reversing: request.msgid)
        let resolvedNow = county.receivedResponse(answer, from: .parent, nowMs: 1_000)
        #expect(county.resolved == [request.msgid])
        county.beginDraining()
        #expect(county.receivedRequest(request, from: hospital, nowMs: 1_100)
                == [.finalAnswer(msgid: request.msgid, to: hospital, receivedAtMs: 1_100)])

        // The round that resolved it could not be recorded: it is in doubt again, not resolved.
        _ = county.roundNotRecorded(resolvedNow, detail: "ledger unavailable", nowMs: 1_200)
        #expect(county.resolved.isEmpty && county.resolutions[request.msgid] != nil)
        // After a restart, what the ledger says was resolved.
        var restarted = signedIn("370211")
        restarted.restore(resolved: [request.msgid])
        #expect(restarted.receivedRequest(request, from: hospital, nowMs: 0) == [.finalAnswer(msgid: request.msgid, to: hospital, receivedAtMs: 0)])
    }

    /// A round whose ledger transaction failed: every answer this node was to decide and record
    /// becomes a definite refusal (SN-E3004) with its own msgid, answers passing through go on
    /// without their record, and requests to be journaled are not sent and are refused.
    @Test func aRoundThatCouldNotBeRecordedRefusesWhatItWasToDecide() {
        var county = signedIn("370211")
        let journaled = settlement(budgetMs: 1_000)
        let round = county.receivedRequest(journaled, from: hospital, nowMs: 0)
        var passing = WireResponse()
        passing.reqMsgid = "H37021100002202612010000000001"
        let record = TransitRecord(request: RequestMeta(journaled), response: passing, role: .relay, nowMs: 0)
        let work: [Directive] = round + [
            .answer(passing, to: .parent, record: record),
            .settleHere(settlement(budgetMs: 1_000), replyTo: hospital, role: .local, receivedAtMs: 0),
            .finalAnswer(msgid: "H37021100001202612010000000009", to: hospital, receivedAtMs: 0),
            .resolution(NodeMachine.Resolution(omsgid: "M", oinfno: "2207", psnNo: "", insured: "410102", treatment: "370211",
                                               fixmedinsCode: "H37021100001", nextAttemptMs: 0)),
        ]
        let answers = county.roundNotRecorded(work, detail: "ledger unavailable", nowMs: 5)
        let sent = answers.compactMap { if case .answer(let a, let peer, let record) = $0, record == nil { (a, peer) } else { nil } }
        #expect(sent.count == answers.count && sent.count == 4, "\(answers)")
        #expect(sent.filter { $0.0.errCode == ErrorCode.busy.rawValue }.count == 3)
        // The answer it was to record does not go on unrecorded: its outcome is unknown here.
        #expect(!sent.contains { $0.0 == passing })
        #expect(sent.contains { $0.0.reqMsgid == passing.reqMsgid && $0.0.errCode == ErrorCode.timeout.rawValue && $0.1 == .parent })
        #expect(sent.contains { $0.0.reqMsgid == journaled.msgid && $0.1 == hospital })
        #expect(sent.contains { $0.0.reqMsgid == "H37021100001202612010000000009" })
        #expect(county.pendingCount == 0, "the request that was not journaled is not waited for")
    }

    /// On a full disk the same round's refusals say so: SN-E3008, definite, with the detail given.
    @Test func aRoundRefusedForAFullDiskSaysSo() {
        var county = signedIn("370211")
        let journaled = settlement(budgetMs: 1_000)
        let work = county.receivedRequest(journaled, from: hospital, nowMs: 0)
            + [.settleHere(settlement(budgetMs: 1_000), replyTo: hospital, role: .local, receivedAtMs: 0)]
        let answers = county.roundNotRecorded(work, detail: "the disk under the ledger of node 370211 is full", refusal: .diskFull, nowMs: 5)
        let codes = answers.compactMap { if case .answer(let answer, _, nil) = $0 { answer.errCode } else { nil } }
        #expect(codes == [ErrorCode.diskFull.rawValue, ErrorCode.diskFull.rawValue], "\(answers)")
        #expect(ErrorCode.diskFull.isDefinite)
        guard case .answer(let first, _, _)? = answers.first else { return }
        #expect(first.errMsg.contains("disk is full") && first.errMsg.contains("node 370211"), "\(first.errMsg)")
    }

    /// At the origin county, an answer its round could not record (a failing disk) goes to the
    /// hospital as unknown (SN-E3002, indefinite), and the settlement is resolved by correction:
    /// the network settled it, and the origin must not say so before its own record is durable.
    @Test func anAnswerTheOriginCouldNotRecordIsUnknownAndResolvedByCorrection() {
        var county = signedIn("370211")
        let request = settlement(budgetMs: 10_000)
        _ = county.receivedRequest(request, from: hospital, nowMs: 1)
        var answer = WireResponse()
        answer.infcode = 0
        answer.reqMsgid = request.msgid
        answer.output = .settlement(SettlementOutput())
        let round = county.receivedResponse(answer, from: .parent, nowMs: 5)
        let instead = county.roundNotRecorded(round, detail: "ledger unavailable", nowMs: 5)
        guard case .answer(let sent, let peer, nil)? = instead.first else { Issue.record("\(instead)"); return }
        #expect(peer == hospital && sent.reqMsgid == request.msgid && sent.errCode == ErrorCode.timeout.rawValue)
        #expect(!ErrorCode.timeout.isDefinite)
        #expect(instead.contains { if case .resolution(let resolution) = $0 { resolution.omsgid == request.msgid } else { false } })
        #expect(county.resolutions[request.msgid] != nil)
        let corrections = county.tick(nowMs: 6).compactMap { if case .forward(let r, _) = $0, r.infno == "2601" { r.msgid } else { nil } }
        #expect(corrections == ["CR" + request.msgid])
    }

    /// The journal could not be written (the ledger failed): the request was not sent, so the
    /// hospital gets a definite refusal at once and nothing waits for an answer.
    @Test func aRequestWhoseJournalFailedIsRefusedDefinitely() {
        var county = signedIn("370211")
        let request = settlement(budgetMs: 1_000)
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        let refused = county.refuseUnsent(msgid: request.msgid, detail: "ledger unavailable", nowMs: 1)
        guard case .answer(let answer, let peer, let record)? = refused.first, refused.count == 1 else {
            Issue.record("expected one answer, got \(refused)"); return
        }
        #expect(peer == hospital && record == nil)
        #expect(answer.errCode == ErrorCode.busy.rawValue && ErrorCode.busy.isDefinite)
        #expect(county.pendingCount == 0)
        #expect(county.tick(nowMs: 5_000).allSatisfy { if case .answer = $0 { false } else { true } }, "no timeout follows")
    }

    /// A request that is not money (a hospital's ticket list, say) is never journaled, and a
    /// relay journals nothing: only the origin county answers for what its hospitals sent.
    @Test func onlyTheOriginJournalsAndOnlyWhatMovesMoney() {
        var city = machine("370200")
        let request = settlement(budgetMs: 1_000)
        let atCity = city.receivedRequest(request, from: .downstream(Array("370211".utf8)), nowMs: 0)
        #expect(atCity.count == 1 && atCity.allSatisfy { if case .forward = $0 { true } else { false } })
    }

    /// After a crash the origin finds what it had journaled and never heard back about: a
    /// settlement, and a reversal of another. Each settlement is resolved once, and one already
    /// being resolved is not started twice.
    @Test func requestsInFlightAtACrashAreResolvedAfterTheRestart() {
        var county = signedIn("370211")
        let first = settlement(budgetMs: 1_000)
        var factory = RequestFactory(institution: "H37021100001", treatment: code("370211"), firstSequence: 7)
        let psn = SyntheticPopulation(county: code("410102"), size: 100).firstPerson(filedOffsite: true)!.psnNo
        let second = factory.settlement(psnNo: psn, insured: code("410102"), bill: .composed(totalFen: 5_000), inpatient: false, nowMs: 0)
        let reversalOfSecond = reversal(of: second, sequence: 9)
        let alreadyResolving = NodeMachine.Resolution(omsgid: first.msgid, oinfno: "2207", psnNo: psn, insured: "410102",
                                                      treatment: "370211", fixmedinsCode: "H37021100001", nextAttemptMs: 50)
        county.restore([alreadyResolving])
        let started = county.inDoubtAfterRestart([RequestMeta(first), RequestMeta(reversalOfSecond)], nowMs: 10)
        let resolutions = started.compactMap { if case .resolution(let r) = $0 { r } else { nil } }
        #expect(resolutions.map(\.omsgid) == [second.msgid])
        #expect(resolutions.first?.oinfno == "2207" && resolutions.first?.psnNo == psn && resolutions.first?.insured == "410102")
        let sent = county.tick(nowMs: 10).compactMap { if case .forward(let r, _) = $0, r.infno == "2601" { r.msgid } else { nil } }
        #expect(sent == ["CR" + second.msgid])
    }
}
