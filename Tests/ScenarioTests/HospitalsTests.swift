import NetworkTopology
@testable import Scenario
import SettlementCore
import SettlementModel
import Testing

/// The hospitals as a state machine: time passed in, requests out through their outlet.
@Suite struct HospitalsTests {
    /// One settlement a second for a second: what the hospitals send, and when.
    final class Wire {
        var sent: [(atUs: Int64, request: WireRequest)] = []
        var nowUs: Int64 = 0
    }

    func hospitals(_ wire: Wire) throws -> Hospitals {
        let topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        let load = try ScenarioLoader.parse("""
            name: one
            topology: Topologies/minimal.yaml
            seed: 5
            duration: 1s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 1
                mix:
                  route: { local: 1 }
                max_in_flight: 10
            """, file: "one.yaml").settlements!
        return try Hospitals(topology: topology, load: load, seed: 5, durationMs: 1_000, wallClockMs: { 1_767_542_400_000 },
                             outlet: { request, _ in wire.sent.append((wire.nowUs, request)) })
    }

    func answer(_ request: WireRequest, errCode: String) -> [[UInt8]] {
        var response = WireResponse()
        response.reqMsgid = request.msgid
        response.infcode = -1
        response.errCode = errCode
        response.errMsg = "outcome unknown"
        return WireCodec.frames(response)
    }

    /// A settlement answered in doubt is asked about again; when that re-ask itself goes
    /// unanswered (its county died with the connection), it is asked again after the hospital's
    /// deadline, until a definite answer comes.
    @Test func aReAskThatGoesUnansweredIsAskedAgainAfterTheHospitalsDeadline() throws {
        let wire = Wire()
        let hospitals = try hospitals(wire)
        for step in stride(from: Int64(0), through: 600_000, by: 100_000) {
            wire.nowUs = step
            try hospitals.step(nowUs: step)
        }
        let first = try #require(wire.sent.first?.request)
        #expect(wire.sent.count == 1)
        try hospitals.received(answer(first, errCode: ErrorCode.timeout.rawValue), nowUs: 600_000)
        // Asked again after the re-ask interval, then nothing comes back.
        var now: Int64 = 600_000
        while now < 600_000 + hospitals.requeryIntervalUs + 100_000 {
            now += 100_000
            wire.nowUs = now
            try hospitals.step(nowUs: now)
        }
        #expect(wire.sent.count == 2 && wire.sent[1].request.msgid == first.msgid)
        // Silence until just before the hospital's deadline: no third ask.
        let reAskedAt = wire.sent[1].atUs
        while now < reAskedAt + hospitals.clientTimeoutUs - 100_000 {
            now += 100_000
            wire.nowUs = now
            try hospitals.step(nowUs: now)
        }
        #expect(wire.sent.count == 2)
        // Past it: asked again, the same msgid.
        while now < reAskedAt + hospitals.clientTimeoutUs + hospitals.requeryIntervalUs {
            now += 100_000
            wire.nowUs = now
            try hospitals.step(nowUs: now)
        }
        #expect(wire.sent.count == 3 && wire.sent[2].request.msgid == first.msgid)
        // A definite answer ends it: nothing in doubt, the load finished.
        var settled = WireResponse()
        settled.reqMsgid = first.msgid
        try hospitals.received(WireCodec.frames(settled), nowUs: now)
        #expect(hospitals.isFinished(nowUs: now))
        #expect(hospitals.finish().0.unresolved == 0)
    }
}
