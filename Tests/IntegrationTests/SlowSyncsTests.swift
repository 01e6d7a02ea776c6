@testable import NodeRuntime
import Testing

/// A slow ledger sync is reported, at most once a second, with what gathered since the last report.
@Suite struct SlowSyncsTests {
    @Test func slowSyncsAreReportedAtMostOnceASecondWithTheirCountAndTheLongest() {
        var syncs = SlowSyncs()
        let slow = SlowSyncs.thresholdUs
        #expect(syncs.record(tookUs: slow - 1, nowMs: 0) == nil)          // a healthy disk: nothing
        #expect(syncs.record(tookUs: slow, nowMs: 10).map { [$0.count, Int($0.longestMs)] } == [1, Int(slow / 1_000)])
        #expect(syncs.record(tookUs: 220_000, nowMs: 500) == nil)          // within the second: held
        #expect(syncs.record(tookUs: 80_000, nowMs: 900) == nil)
        let next = syncs.record(tookUs: 60_000, nowMs: 1_010)
        #expect(next?.count == 3 && next?.longestMs == 220)               // what gathered, and the longest
        #expect(syncs.record(tookUs: 1_000, nowMs: 5_000) == nil)
        #expect(syncs.total == 4)
    }
}
