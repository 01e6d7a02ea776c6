import Foundation
import NetworkTopology
@testable import Scenario
import SettlementModel
import Testing

/// The report's timeline and its per-second latencies over long runs (a simulated day).
@Suite struct ReportTimelineTests {
    func spec() throws -> ScenarioSpec {
        try ScenarioLoader.parse("""
            name: long
            topology: Topologies/minimal.yaml
            seed: 1
            duration: 3h
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 2
                mix:
                  route: { local: 1 }
                max_in_flight: 10
            """, file: "long.yaml")
    }

    /// Percentiles of a second are its values' nearest ranks, in milliseconds.
    @Test func aSecondsPercentilesAreNearestRanks() {
        var samples = LatencySamples()
        #expect(samples.percentileMs(99) == 0)
        for us in (1...100).reversed() { samples.record(UInt64(us * 1_000)) }
        #expect(samples.percentileMs(50) == 50)
        #expect(samples.percentileMs(99) == 99)
        #expect(samples.percentileMs(100) == 100)
        samples.record(UInt64.max)   // past what a second can hold: kept as the longest
        #expect(samples.percentileMs(100) == 4_294_967.3)   // UInt32.max µs
    }

    /// A run of three hours has a point per 3 seconds (at most 3,600 points), each summing its
    /// seconds, with rates per second and percentiles over all of its answers; an hour or less
    /// keeps a point a second. A point a second for a day was 86,400 points, and each second
    /// kept two HDR histograms: 32 GB by the day's end.
    @Test func aLongRunsTimelineHasAtMost3600PointsEachCoveringItsSeconds() throws {
        var measurement = Measurement()
        let seconds = 3 * 3_600
        for second in 0..<seconds {
            for n in 0..<2 {
                let intended = Int64(second) * 1_000_000 + Int64(n) * 400_000
                measurement.scheduledArrival(atUs: intended, dropped: false, route: .local)
                // Every third second's second answer is an error, 9 ms after; the others 1 ms.
                let failed = second % 3 == 2 && n == 1
                measurement.answered(route: .local, intendedUs: intended, answeredUs: intended + (failed ? 9_000 : 1_000),
                                     errorCode: failed ? ErrorCode.busy.rawValue : nil)
            }
        }
        measurement.loadDurationUs = Int64(seconds) * 1_000_000
        let report = ReportBuilder.build(spec: try spec(), topologyPath: "minimal.yaml", startedAt: Date(timeIntervalSince1970: 0),
                                         measurement: measurement, stages: [], build: "test")
        #expect(report.timelineStepS == 3)
        #expect(report.timeline.count == 3_600)
        #expect(report.timeline.map(\.second) == Array(stride(from: 0, to: seconds, by: 3)))
        let point = report.timeline[7]
        #expect(point.targetRate == 2 && point.achievedRate == 2)
        #expect(point.succeeded == 5 && point.errors == 1)
        #expect(point.latencyP50Ms == 1 && point.latencyP99Ms == 9 && point.errorLatencyP99Ms == 9)
        #expect(report.settlements.succeeded == 5 * 3_600 && report.settlements.failed == 3_600)

        var hour = Measurement()
        for second in 0..<3_600 { hour.scheduledArrival(atUs: Int64(second) * 1_000_000, dropped: false, route: .local) }
        let short = ReportBuilder.build(spec: try spec(), topologyPath: "minimal.yaml", startedAt: Date(timeIntervalSince1970: 0),
                                        measurement: hour, stages: [], build: "test")
        #expect(short.timelineStepS == nil && short.timeline.count == 3_600)
    }
}
