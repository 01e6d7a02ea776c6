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
        var latency = LatencySamples()
        var errorLatency = LatencySamples()
        /// Upload records whose batch was answered in this second, and how many were refused.
        var recordsAnswered = 0, recordsRejected = 0
    }

    var scheduled = 0, attempted = 0, succeeded = 0, failed = 0, dropped = 0, unanswered = 0
    /// Everything the seed decided about the load, folded as it was scheduled.
    var plan = PlanDigest()
    var identityViolations = 0
    var reversalsAttempted = 0, reversalsSucceeded = 0, reversalsFailed = 0
    var latency = Measurement.makeHistogram()
    var routes: [RouteClass: RouteCounters] = [:]
    var errorsByCode: [String: Int] = [:]
    var seconds: [Second] = []
    var loadDurationUs: Int64 = 0
    /// The driver's own CPU time (its thread's and libzmq's I/O threads') and how long it ran (µs):
    /// a harness must not measure itself.
    var driverCPUUs: Int64 = 0, driverWallUs: Int64 = 0
    /// Latency of the answers that were errors: how fast the network says no (or "unknown").
    var errorLatency = Measurement.makeHistogram()
    var definiteErrors = 0, indefiniteErrors = 0
    /// Settlements first answered indefinitely, then resolved: settled after all, not in effect
    /// (reversed or cancelled by correction, SN-E2006), or refused; or still unresolved at the end.
    var resolvedSettled = 0, resolvedReversed = 0, resolvedRefused = 0, unresolved = 0

    mutating func resolved(ok: Bool, errorCode: String) {
        if ok { resolvedSettled += 1 }
        else if errorCode == ErrorCode.cancelledByCorrection.rawValue { resolvedReversed += 1 }
        else { resolvedRefused += 1 }
    }

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
        seconds[index].latency.record(latencyUs)
        if let errorCode {
            _ = errorLatency.record(latencyUs)
            seconds[index].errorLatency.record(latencyUs)
            // client_timeout: the hospital's own deadline passed with no answer (indefinite).
            if errorCode != "client_timeout", ErrorCode(rawValue: errorCode)?.isDefinite ?? true { definiteErrors += 1 } else { indefiniteErrors += 1 }
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
        indefiniteErrors += count
    }

    /// An upload batch answered: for the dirty-rate trend.
    mutating func uploadAnswered(atUs us: Int64, records: Int, rejected: Int) {
        let index = second(us)
        seconds[index].recordsAnswered += records
        seconds[index].recordsRejected += rejected
    }

    mutating func inFlight(_ count: Int, atUs us: Int64) {
        let index = second(us)
        seconds[index].inFlight = count
    }
}

/// What the upload load sent and what the hospitals were answered.
public struct UploadMeasurement: Sendable {
    var batchesScheduled = 0, batchesSent = 0, batchesDropped = 0, batchesAnswered = 0, batchesFailed = 0, batchesUnanswered = 0
    var recordsSent = 0, recordsAcceptedProvincial = 0
    /// Dirty records sent, by generator kind and by the rule expected to catch them.
    var injectedByKind: [String: Int] = [:]
    var injectedByRule: [String: Int] = [:]
    var dirtySent = 0, cleanSent = 0
    /// Rejects the hospitals were told about: matching the expected rule and tier, or not.
    var rejectedAsExpected = 0, rejectedOtherwise = 0
    /// Clean records rejected (false rejects) seen in answers.
    var cleanRejected = 0
    var latency = Measurement.makeHistogram()
    var errorsByCode: [String: Int] = [:]
    /// Per record identity "setl_id|fixmedins_code": true when any copy sent under it was clean.
    var cleanKeys: Set<String> = []
    var dirtyKeys: Set<String> = []
    /// The governance loop: causes institutions fixed, corrected records re-uploaded and what
    /// became of them (a corrected record is clean: any reject of one is a false reject).
    var causesFixed = 0, correctionsSent = 0, correctionsAccepted = 0, correctionsRejected = 0

    static func key(_ setlID: String, _ fixmedinsCode: String) -> String { setlID + "|" + fixmedinsCode }
}

extension UploadMeasurement {
    /// Takes in a re-upload batch's answer.
    mutating func recordCorrections(_ response: WireResponse, for plan: UploadBatchPlan) {
        guard response.infcode == 0, response.errMsg.isEmpty, case .upload(let output)? = response.output else {
            batchesFailed += 1
            errorsByCode[response.errCode.isEmpty ? "unknown" : response.errCode, default: 0] += 1
            return
        }
        correctionsRejected += output.rejects.count
        correctionsAccepted += plan.records.count - output.rejects.count
    }

    /// Takes in a batch's answer: which records were refused, by which rule at which tier,
    /// against what the generator injected.
    mutating func record(_ response: WireResponse, for plan: UploadBatchPlan, latencyUs: Int64) {
        batchesAnswered += 1
        _ = latency.record(UInt64(max(1, latencyUs)))
        guard response.infcode == 0, response.errMsg.isEmpty, case .upload(let output)? = response.output else {
            batchesFailed += 1
            errorsByCode[response.errCode.isEmpty ? "unknown" : response.errCode, default: 0] += 1
            return
        }
        recordsAcceptedProvincial += Int(output.accepted)
        for reject in output.rejects {
            guard reject.index >= 0, Int(reject.index) < plan.records.count else { continue }
            let generated = plan.records[Int(reject.index)]
            if generated.dirtyKind == nil {
                cleanRejected += 1
            } else if generated.expectedRule == reject.ruleID && generated.expectedTier?.rawValue == reject.tier {
                rejectedAsExpected += 1
            } else {
                rejectedOtherwise += 1
            }
        }
    }
}

/// A 64-bit FNV-1a fold of a run's settlement load as the seed planned it: each settlement's
/// scheduled time, parties, amounts and flags. Two runs of the same scenario with the same
/// seed print the same digest; anything that changed the plan changes it. Upload batches are
/// left out: which record a duplicate copies depends on what was stored in time.
public struct PlanDigest: Sendable, Equatable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    mutating func mix(_ text: String) {
        for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
        value = (value ^ 0x1F) &* 0x100_0000_01b3   // a separator, so "ab","c" differs from "a","bc"
    }

    /// Mixes the decimal digits of `number` as `mix(String(number))` would, without making the
    /// string: the load driver mixes every arrival, a dozen numbers each.
    mutating func mix(_ number: Int64) {
        if number < 0 { value = (value ^ UInt64(UInt8(ascii: "-"))) &* 0x100_0000_01b3 }
        var magnitude = number.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // up to 20 digits, last first
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { value = (value ^ UInt64(buffer[index])) &* 0x100_0000_01b3 }
        }
        value = (value ^ 0x1F) &* 0x100_0000_01b3
    }

    mutating func mix(_ flag: Bool) { mix(flag ? "true" : "false") }

    mutating func mix(_ plan: PlannedSettlement, dueUs: Int64) {
        let b = plan.bill
        mix("S"); mix(dueUs); mix(plan.route.rawValue); mix(plan.origin.value); mix(plan.insured.value)
        mix(plan.institution); mix(plan.psnNo)
        mix(b.medfeeSumamt); mix(b.fulamtOwnpayAmt); mix(b.overlmtSelfpay); mix(b.preselfpayAmt); mix(b.inscpScpAmt)
        mix(plan.inpatient); mix(plan.reverseAfter); mix(plan.expectRefusal)
    }
}

/// One second's latencies (µs), as the values themselves: a second holds at most a few thousand.
/// Each second kept two HDR histograms of 188 KB before, and a simulated national day of 86,400
/// seconds grew by 32 GB.
public struct LatencySamples: Sendable {
    private var values: [UInt32] = []

    mutating func record(_ us: UInt64) { values.append(UInt32(min(us, UInt64(UInt32.max)))) }

    /// Takes in `other`'s values too (a timeline point of several seconds).
    mutating func add(_ other: LatencySamples) { values += other.values }

    /// The latency at `percentile` (nearest rank), in milliseconds to two decimals as the
    /// report's summaries; 0 with none.
    func percentileMs(_ percentile: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = max(1, Int((percentile / 100 * Double(sorted.count)).rounded(.up)))
        return (Double(sorted[min(rank, sorted.count) - 1]) / 1_000 * 100).rounded() / 100
    }

    /// Adds every value to `histogram` (a stage's latency, from its seconds).
    func add(to histogram: inout Histogram<UInt64>) {
        for value in values { _ = histogram.record(UInt64(value)) }
    }
}
