import Histogram
import NetworkTopology

/// How far a stepped load was held: each plateau of the ramp (a stage whose target is the
/// previous one's) is a multiple of the baseline; the held multiple is the highest plateau
/// that, like every plateau below it, met the scenario's `scale:` limits.
public struct ScaleFigures: Codable, Sendable {
    public struct Step: Codable, Sendable {
        public var multiple: Double
        public var targetRatePerS: Double
        public var achievedRatePerS: Double
        public var p99Ms: Double
        public var errorRate: Double
        public var dropped: Int
        public var held: Bool

        enum CodingKeys: String, CodingKey {
            case multiple, dropped, held
            case targetRatePerS = "target_rate_per_s"
            case achievedRatePerS = "achieved_rate_per_s"
            case p99Ms = "p99_ms"
            case errorRate = "error_rate"
        }
    }

    public var baselineRatePerS: Double
    public var limitP99Ms: Double
    public var limitErrorRate: Double
    public var steps: [Step]
    /// 0 when not even the first plateau held.
    public var heldMultiple: Double
    public var heldRatePerS: Double

    enum CodingKeys: String, CodingKey {
        case steps
        case baselineRatePerS = "baseline_rate_per_s"
        case limitP99Ms = "limit_p99_ms"
        case limitErrorRate = "limit_error_rate"
        case heldMultiple = "held_multiple"
        case heldRatePerS = "held_rate_per_s"
    }
}

enum ScaleAnalysis {
    /// The plateaus of a ramp: (first second, end second, target rate). The first second of
    /// each is left out: it still carries the step's transition.
    static func plateaus(_ executor: SettlementLoad.Executor) -> [(from: Int, to: Int, rate: Double)] {
        guard case .rampingArrivalRate(let startRate, let stages) = executor else { return [] }
        var result: [(Int, Int, Double)] = []
        var previous = startRate
        var atMs: Int64 = 0
        for stage in stages {
            if stage.target == previous && stage.target > 0 && stage.durationMs >= 3_000 {
                result.append((Int(atMs / 1_000) + 1, Int((atMs + stage.durationMs) / 1_000), stage.target))
            }
            previous = stage.target
            atMs += stage.durationMs
        }
        return result
    }

    static func figures(_ scale: ScaleSpec, executor: SettlementLoad.Executor, measurement m: Measurement) -> ScaleFigures {
        var steps: [ScaleFigures.Step] = []
        for plateau in plateaus(executor) {
            let seconds = m.seconds.indices.filter { $0 >= plateau.from && $0 < plateau.to }.map { m.seconds[$0] }
            var latency = Measurement.makeHistogram()
            for second in seconds { second.latency.add(to: &latency) }
            let answered = seconds.reduce(0) { $0 + $1.answered }
            let errors = seconds.reduce(0) { $0 + $1.errors }
            let dropped = seconds.reduce(0) { $0 + $1.dropped }
            let span = Double(max(1, plateau.to - plateau.from))
            let achieved = ReportBuilder.round2(Double(answered) / span)
            let p99 = ReportBuilder.summary(latency).p99
            let errorRate = answered == 0 ? 1 : ReportBuilder.round4(Double(errors) / Double(answered))
            let held = !seconds.isEmpty && achieved >= plateau.rate * 0.95 && p99 <= scale.p99Ms
                && errorRate <= scale.errorRate && dropped == 0
            steps.append(.init(multiple: ReportBuilder.round2(plateau.rate / scale.baselineRate), targetRatePerS: plateau.rate,
                               achievedRatePerS: achieved, p99Ms: p99, errorRate: errorRate, dropped: dropped, held: held))
        }
        // Held means held at every step up to it.
        let held = steps.prefix { $0.held }.last
        return ScaleFigures(baselineRatePerS: scale.baselineRate, limitP99Ms: scale.p99Ms, limitErrorRate: scale.errorRate,
                            steps: steps, heldMultiple: held?.multiple ?? 0, heldRatePerS: held?.targetRatePerS ?? 0)
    }
}
