import Histogram
import SettlementModel

/// Latency histograms and counters of one run. Latency is recorded in microseconds from the
/// intended send time (open model), in HDR histograms: percentiles are read, never averaged.
public struct Measurement: Sendable {
    static func makeHistogram() -> Histogram<UInt64> {
        // 1 µs to 1 hour at 3 significant digits.
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    public struct RouteCounters: Sendable {
        var attempted = 0, succeeded = 0, failed = 0
        var latency = Measurement.makeHistogram()
    }

    public struct Second: Sendable {
        var scheduled = 0, dropped = 0, answered = 0, succeeded = 0, errors = 0, inFlight = 0
        var latency = Measurement.makeHistogram()
    }

    var scheduled = 0, attempted = 0, succeeded = 0, failed = 0, dropped = 0, unanswered = 0
    var identityViolations = 0
    var reversalsAttempted = 0, reversalsSucceeded = 0, reversalsFailed = 0
    var latency = Measurement.makeHistogram()
    var routes: [RouteClass: RouteCounters] = [:]
    var errorsByCode: [String: Int] = [:]
    var seconds: [Second] = []
    var loadDurationUs: Int64 = 0

    mutating func second(_ us: Int64) -> Int {
        let index = Int(max(0, us) / 1_000_000)
        while seconds.count <= index { seconds.append(Second()) }
        return index
    }

    mutating func scheduledArrival(atUs us: Int64, dropped wasDropped: Bool, route: RouteClass) {
        scheduled += 1
        let index = second(us)
        seconds[index].scheduled += 1
        if wasDropped {
            dropped += 1
            seconds[index].dropped += 1
        } else {
            attempted += 1
            routes[route, default: RouteCounters()].attempted += 1
        }
    }

    mutating func answered(route: RouteClass, intendedUs: Int64, answeredUs: Int64, errorCode: String?) {
        let latencyUs = UInt64(max(1, answeredUs - intendedUs))
        _ = latency.record(latencyUs)
        _ = routes[route, default: RouteCounters()].latency.record(latencyUs)
        let index = second(answeredUs)
        seconds[index].answered += 1
        _ = seconds[index].latency.record(latencyUs)
        if let errorCode {
            failed += 1
            routes[route, default: RouteCounters()].failed += 1
            errorsByCode[errorCode, default: 0] += 1
            seconds[index].errors += 1
        } else {
            succeeded += 1
            routes[route, default: RouteCounters()].succeeded += 1
            seconds[index].succeeded += 1
        }
    }

    mutating func neverAnswered(route: RouteClass, count: Int = 1) {
        unanswered += count
        failed += count
        routes[route, default: RouteCounters()].failed += count
        errorsByCode["no_answer", default: 0] += count
    }

    mutating func inFlight(_ count: Int, atUs us: Int64) {
        let index = second(us)
        seconds[index].inFlight = count
    }
}
