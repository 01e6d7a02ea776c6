import Foundation
import Histogram
import NetworkTopology
import SettlementModel

/// Turns a run's measurement into report.json's model and applies the thresholds.
public enum ReportBuilder {
    /// Seconds per timeline point: one, up to an hour of load; past that, as many as keep the
    /// timeline to 3,600 points (a simulated day: 24 s). A point a second for a day was 86,400
    /// points, and minutes of JSON encoding at the end of the run.
    public static func timelineStepS(seconds: Int) -> Int { max(1, (seconds + 3_599) / 3_600) }

    public static func summary(_ histogram: Histogram<UInt64>) -> LatencySummary {
        guard histogram.totalCount > 0 else { return LatencySummary(p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0) }
        func ms(_ us: UInt64) -> Double { (Double(us) / 1_000 * 100).rounded() / 100 }
        return LatencySummary(p50: ms(histogram.valueAtPercentile(50)), p90: ms(histogram.valueAtPercentile(90)),
                              p99: ms(histogram.valueAtPercentile(99)), p999: ms(histogram.valueAtPercentile(99.9)),
                              max: ms(histogram.max), mean: (histogram.mean / 1_000 * 100).rounded() / 100)
    }

    public static func build(spec: ScenarioSpec, topologyPath: String, startedAt: Date, measurement m: Measurement,
                             stages: [(startS: Double, label: String)], build: String) -> RunReport {
        let loadSeconds = max(0.001, Double(m.loadDurationUs) / 1e6)
        var routes: [String: RouteFigures] = [:]
        for (route, counters) in m.routes {
            routes[route.rawValue] = RouteFigures(attempted: counters.attempted, succeeded: counters.succeeded,
                                                  failed: counters.failed,
                                                  throughputPerS: round2(Double(counters.succeeded) / loadSeconds),
                                                  latencyMs: summary(counters.latency))
        }
        let step = timelineStepS(seconds: m.seconds.count)
        let timeline = stride(from: 0, to: m.seconds.count, by: step).map { start in
            let seconds = m.seconds[start..<min(start + step, m.seconds.count)]
            var latency = LatencySamples(), errorLatency = LatencySamples()
            var point = TimelinePoint(second: start, targetRate: 0, achievedRate: 0, succeeded: 0, errors: 0, dropped: 0,
                                      inFlight: seconds.last!.inFlight, latencyP50Ms: 0, latencyP99Ms: 0, errorLatencyP99Ms: 0,
                                      recordsAnswered: 0, recordsRejected: 0, dirtyRatePct: 0)
            var scheduled = 0, answered = 0
            for second in seconds {
                scheduled += second.scheduled
                answered += second.answered
                point.succeeded += second.succeeded
                point.errors += second.errors
                point.dropped += second.dropped
                point.recordsAnswered += second.recordsAnswered
                point.recordsRejected += second.recordsRejected
                latency.add(second.latency)
                errorLatency.add(second.errorLatency)
            }
            point.targetRate = round2(Double(scheduled) / Double(seconds.count))
            point.achievedRate = round2(Double(answered) / Double(seconds.count))
            point.latencyP50Ms = latency.percentileMs(50)
            point.latencyP99Ms = latency.percentileMs(99)
            point.errorLatencyP99Ms = errorLatency.percentileMs(99)
            point.dirtyRatePct = point.recordsAnswered == 0 ? 0 : round2(Double(point.recordsRejected) / Double(point.recordsAnswered) * 100)
            return point
        }
        let settlements = SettlementFigures(
            scheduled: m.scheduled, attempted: m.attempted, succeeded: m.succeeded, failed: m.failed, dropped: m.dropped,
            unanswered: m.unanswered, errorRate: m.attempted == 0 ? 0 : round4(Double(m.failed) / Double(m.attempted)),
            throughputPerS: round2(Double(m.succeeded) / loadSeconds), targetRatePerS: round2(Double(m.scheduled) / loadSeconds),
            latencyMs: summary(m.latency), byRoute: routes, identityViolations: m.identityViolations,
            reversed: m.resolvedReversed, resolvedSettled: m.resolvedSettled, resolvedRefused: m.resolvedRefused,
            unresolved: m.unresolved)
        let formatter = ISO8601DateFormatter()
        var report = RunReport(
            scenario: spec.name, seed: spec.seed, topology: topologyPath, startedAt: formatter.string(from: startedAt),
            durationS: round2(loadSeconds), passed: false, settlements: settlements,
            reversals: ReversalFigures(attempted: m.reversalsAttempted, succeeded: m.reversalsSucceeded, failed: m.reversalsFailed),
            errors: ErrorFigures(byCode: m.errorsByCode, definite: m.definiteErrors, indefinite: m.indefiniteErrors,
                                 responseLatencyMs: summary(m.errorLatency)), timeline: timeline,
            stages: stages.enumerated().map { StageMark(index: $0, startS: $1.startS, label: $1.label) },
            thresholds: [], machine: MachineInfo(cores: ProcessInfo.processInfo.activeProcessorCount, build: build))
        report.timelineStepS = step > 1 ? step : nil
        report.planDigest = m.plan.hex
        if m.driverWallUs > 0 { report.driver = DriverFigures(cpuS: Double(m.driverCPUUs) / 1e6, wallS: Double(m.driverWallUs) / 1e6) }
        if let scale = spec.scale, let executor = spec.settlements?.executor {
            report.scale = ScaleAnalysis.figures(scale, executor: executor, measurement: m)
        }
        return applyThresholds(spec.thresholds, to: report)
    }

    /// The governance loop's figures: what the institutions did (from the driver) and the
    /// first-upload dirty rate of the load's first and last quarter (from the timeline).
    static func governance(_ loop: UploadLoad.Governance, sent: UploadMeasurement, timeline: [TimelinePoint],
                           loadSeconds: Double) -> GovernanceFigures {
        func ratePct(_ seconds: Range<Double>) -> Double {
            let points = timeline.filter { seconds.contains(Double($0.second)) }
            let answered = points.reduce(0) { $0 + $1.recordsAnswered }
            return answered == 0 ? 0 : round2(Double(points.reduce(0) { $0 + $1.recordsRejected }) / Double(answered) * 100)
        }
        return GovernanceFigures(fixProbability: loop.fixProbability, residualShare: loop.residualShare,
                                 causesFixed: sent.causesFixed, correctionsSent: sent.correctionsSent,
                                 correctionsAccepted: sent.correctionsAccepted, correctionsRejected: sent.correctionsRejected,
                                 dirtyRateFirstQuarterPct: ratePct(0..<loadSeconds / 4),
                                 dirtyRateLastQuarterPct: ratePct(loadSeconds * 3 / 4..<loadSeconds))
    }

    /// Evaluates the thresholds against the report as it will be written.
    public static func applyThresholds(_ thresholds: [ThresholdSpec], to report: RunReport) -> RunReport {
        var report = report
        report.thresholds = []
        let json = (try? JSONValue.of(report)) ?? .null
        report.thresholds = Thresholds.evaluate(thresholds, against: json)
        report.passed = report.thresholds.allSatisfy(\.passed)
        return report
    }

    static func round2(_ value: Double) -> Double { (value * 100).rounded() / 100 }
    static func round4(_ value: Double) -> Double { (value * 10_000).rounded() / 10_000 }
}
