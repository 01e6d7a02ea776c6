import SettlementCore
import Testing

@Suite struct ClientRateLimiterTests {
    @Test func aClientGetsItsBurstThenItsRateAndOthersAreUntouched() {
        var limiter = ClientRateLimiter(ratePerS: 100, burst: 50)
        let flooder: [UInt8] = [0, 1], other: [UInt8] = [0, 2]
        let firstSecond = (0..<1_000).filter { _ in limiter.admit(flooder, nowMs: 1_000) }.count
        #expect(firstSecond == 50)
        let otherAdmitted = limiter.admit(other, nowMs: 1_000)
        #expect(otherAdmitted, "one client's flood took another's share")
        // 100 ms later: 10 more tokens, no more.
        let later = (0..<1_000).filter { _ in limiter.admit(flooder, nowMs: 1_100) }.count
        #expect(later == 10)
        // Long idle refills to the burst, not beyond.
        let afterIdle = (0..<1_000).filter { _ in limiter.admit(flooder, nowMs: 60_000) }.count
        #expect(afterIdle == 50)
        let refusals = limiter.takeRefusals(nowMs: 60_000)
        #expect(refusals.count == 1 && refusals[0].client == flooder && refusals[0].refused == 950 + 990 + 950)
        let again = limiter.takeRefusals(nowMs: 60_001)
        #expect(again.isEmpty, "refusals are reported once")
    }

    @Test func idleClientsAreForgotten() {
        var limiter = ClientRateLimiter(ratePerS: 10, burst: 10)
        for id in 0..<100 { _ = limiter.admit([UInt8(id)], nowMs: 0) }
        #expect(limiter.trackedClients == 100)
        _ = limiter.takeRefusals(nowMs: 120_000)
        #expect(limiter.trackedClients == 0)
    }
}
