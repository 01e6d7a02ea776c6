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
        #expect(county.receivedRequest(request, from: hospital, nowMs: 1) == [.forward(request, to: .parent)])
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

    @Test func relaysRouteDownTowardsTheInsuredCounty() {
        var national = machine("000000")
        let request = settlement(to: "410102")
        let fromShandong: Peer = .downstream(Array("370000".utf8))
        #expect(national.receivedRequest(request, from: fromShandong, nowMs: 1) == [.forward(request, to: .downstream(Array("410000".utf8)))])
        var henan = machine("410000")
        #expect(henan.receivedRequest(request, from: .parent, nowMs: 1) == [.forward(request, to: .downstream(Array("410100".utf8)))])
        var insured = machine("410102")
        #expect(insured.receivedRequest(request, from: .parent, nowMs: 1)
                == [.settleHere(request, replyTo: .parent, role: .insured, receivedAtMs: 1)])
    }

    @Test func aSilentNextHopGivesAnIndefiniteTimeout() {
        var county = machine("370211", timeoutMs: 100)
        let request = settlement(to: "410102")
        _ = county.receivedRequest(request, from: hospital, nowMs: 0)
        #expect(county.tick(nowMs: 99).allSatisfy { if case .forward = $0 { true } else { false } })
        let directives = county.tick(nowMs: 100).filter { if case .answer = $0 { true } else { false } }
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
}
