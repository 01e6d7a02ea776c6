import Foundation
import ZeroMQ
import SettlementModel

/// What `settlenet bench` measured, written as bench.json and printed as a table. Field names
/// are the file's public interface.
public struct BenchReport: Codable, Sendable {
    public struct Machine: Codable, Sendable {
        public var cores: Int
        public var build: String
        public var libzmq: String
        public var sqlite: String
        public var topology: String
        public var startedAt: String
        /// What a wake-up costs a sleeping thread here (the driver's figure is made of them).
        public var wakeCost: WakeCost?

        enum CodingKeys: String, CodingKey {
            case cores, build, libzmq, sqlite, topology
            case startedAt = "started_at"
            case wakeCost = "wake_cost"
        }
    }

    public struct Latency: Codable, Sendable {
        /// The cluster's packing (`Packing`) and the route classes sent (`cross_province` or `all`).
        public var packing: String
        public var routes: String
        public var ratePerS: Int
        public var seconds: Int
        public var attempted: Int
        public var succeeded: Int
        public var failed: Int
        public var dropped: Int
        public var p50Ms: Double
        public var p90Ms: Double
        public var p99Ms: Double
        public var p999Ms: Double
        public var maxMs: Double
        /// The load driver's own CPU over the run (its thread, and libzmq's I/O threads where its links
        /// use libzmq), % of one core: the harness must not measure itself.
        public var driverCPUPct: Double?
        /// Ledger syncs of 50 ms or more during the run, summed over the cluster's nodes (their
        /// status files): a stall of the disk, which every answer waiting on it shares.
        public var slowSyncs: Int64?

        /// The target of the issue: p99 ≤ 5 ms with whole routes in one process, ≤ 20 ms one process per node.
        public var p99TargetMs: Double { packing == "none" ? 20 : 5 }

        enum CodingKeys: String, CodingKey {
            case seconds, attempted, succeeded, failed, dropped, packing, routes
            case driverCPUPct = "driver_cpu_pct"
            case slowSyncs = "slow_syncs"
            case ratePerS = "rate_per_s"
            case p50Ms = "p50_ms"
            case p90Ms = "p90_ms"
            case p99Ms = "p99_ms"
            case p999Ms = "p999_ms"
            case maxMs = "max_ms"
        }
    }

    public struct Uploads: Codable, Sendable {
        public var batchSize: Int
        public var window: Int
        public var accepted: Int
        public var storedNational: Int
        public var seconds: Double
        public var perSecond: Double
        public var errors: Int
        /// CPU time the cluster's processes spent per record stored at the national tier.
        public var cpuUsPerRecord: Double?
        /// Batches answered "timed out" (their outcome unknown) and asked about again.
        public var askedAgain: Int = 0

        enum CodingKeys: String, CodingKey {
            case window, accepted, seconds, errors
            case askedAgain = "asked_again"
            case batchSize = "batch_size"
            case storedNational = "stored_national"
            case perSecond = "records_per_s"
            case cpuUsPerRecord = "cluster_cpu_us_per_record"
        }
    }

    public struct Memory: Codable, Sendable {
        /// By node; a packed process's resident set is shared among its nodes.
        public var residentMB: [String: Double]
        public var maxMB: Double
        public var meanMB: Double
        public var packing: String

        public init(residentMB: [String: Double], packing: String) {
            self.residentMB = residentMB
            self.packing = packing
            maxMB = residentMB.values.max() ?? 0
            meanMB = residentMB.isEmpty ? 0 : residentMB.values.reduce(0, +) / Double(residentMB.count)
        }

        enum CodingKeys: String, CodingKey {
            case packing
            case residentMB = "resident_mb_by_node"
            case maxMB = "max_mb"
            case meanMB = "mean_mb"
        }
    }

    /// The same closed loop on the topology as given and on its secured twin (CURVE on every
    /// link, each port admitting the keys it knows, a key per institution), interleaved so drift
    /// hits both.
    public struct Security: Codable, Sendable {
        /// The relay chain of step 1 with every link CURVE-encrypted, beside a plaintext chain
        /// measured just before it: the encryption's own cost.
        public var transportPlaintextPerS: Double?
        public var transportCurvePerS: Double?
        public var window: Int
        public var seconds: Double
        /// Settlements/s of each plaintext and each secured round, in the order run.
        public var plaintextPerS: [Double]
        public var securedPerS: [Double]
        public var plaintextP99Ms: Double
        public var securedP99Ms: Double
        public var securedErrors: Int
        /// Mean secured rate over mean plaintext rate.
        public var ratio: Double

        public init(window: Int, seconds: Double, plaintext: [ClosedLoop.Result], secured: [ClosedLoop.Result]) {
            self.window = window
            self.seconds = seconds
            plaintextPerS = plaintext.map(\.perSecond)
            securedPerS = secured.map(\.perSecond)
            plaintextP99Ms = plaintext.map(\.p99Ms).max() ?? 0
            securedP99Ms = secured.map(\.p99Ms).max() ?? 0
            securedErrors = secured.reduce(0) { $0 + $1.errors }
            let mean = { (values: [Double]) in values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
            ratio = mean(plaintextPerS) > 0 ? mean(securedPerS) / mean(plaintextPerS) : 0
        }

        /// The CURVE chain's round trips over the plaintext chain's.
        public var transportRatio: Double? {
            guard let plain = transportPlaintextPerS, let curve = transportCurvePerS, plain > 0 else { return nil }
            return curve / plain
        }

        enum CodingKeys: String, CodingKey {
            case window, seconds, ratio
            case transportPlaintextPerS = "transport_plaintext_round_trips_per_s"
            case transportCurvePerS = "transport_curve_round_trips_per_s"
            case plaintextPerS = "plaintext_per_s"
            case securedPerS = "secured_per_s"
            case plaintextP99Ms = "plaintext_p99_ms"
            case securedP99Ms = "secured_p99_ms"
            case securedErrors = "secured_errors"
        }
    }

    public struct Target: Codable, Sendable {
        public var name: String
        public var target: String
        public var measured: String
        public var met: Bool
    }

    public var machine: Machine
    public var baseline: TransportBaseline.Result?
    /// The same chain with every relay fdatasyncing the answers it drained before passing them
    /// back: the floor cost of durability on this disk.
    public var durableBaseline: TransportBaseline.Result?
    /// The plain chain under the latency step's open model: the floor for the network's latency.
    public var baselineLatency: TransportBaseline.Result?
    /// The durable chain under the same open model: the floor for a latency that waits for
    /// eight syncs in series on this disk, as a settlement does.
    public var durableBaselineLatency: TransportBaseline.Result?
    /// One closed-loop run per packing and in-flight window.
    public var settlements: [ClosedLoop.Result] = []
    /// By packing: the best error-free settlement rate over the baseline's round trips.
    public var ratioToBaseline: [String: Double] = [:]
    /// One open-model run per packing and route mix.
    public var latency: [Latency] = []
    public var memory: Memory?
    public var uploads: Uploads?
    /// The cost of security: the closed loop with CURVE and admission by key against without.
    public var security: Security?
    /// Every ledger checked against the others after steps 2 and 3.
    public var reconciled: Bool?
    public var targets: [Target] = []

    public init(machine: Machine) { self.machine = machine }

    enum CodingKeys: String, CodingKey {
        case machine, baseline, settlements, latency, memory, uploads, security, reconciled, targets
        case ratioToBaseline = "ratio_to_baseline"
        case durableBaseline = "durable_baseline"
        case baselineLatency = "baseline_latency"
        case durableBaselineLatency = "durable_baseline_latency"
    }

    /// The packings measured, in the order measured.
    public var packings: [String] {
        settlements.compactMap(\.packing).reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// The best sustained rate of one packing: its fastest window that saw no error.
    public func bestSettlements(packing: String) -> ClosedLoop.Result? {
        settlements.filter { $0.packing == packing && $0.errors == 0 }.max { $0.perSecond < $1.perSecond }
    }

    /// The issue's targets on a 2-core machine, against what was measured.
    mutating func evaluateTargets() {
        targets = []
        for packing in packings {
            guard let best = bestSettlements(packing: packing), let baseline else { continue }
            let ratio = best.perSecond / baseline.perSecond
            ratioToBaseline[packing] = ratio
            // Whole routes in one process against one process per node (issue 18).
            let goal = packing == "none" ? 0.15 : 0.50
            // Beside it, the floor of durability on this disk: the durable chain's own ratio.
            let floor = durableBaseline.map { String(format: "; the durable chain %.1f%%", 100 * $0.perSecond / baseline.perSecond) } ?? ""
            targets.append(Target(name: "cross-province settlements / transport baseline, packed \(packing)",
                                  target: String(format: ">= %.0f%%", 100 * goal),
                                  measured: String(format: "%.1f%% (%.0f / %.0f)", 100 * ratio, best.perSecond, baseline.perSecond) + floor,
                                  met: ratio >= goal))
        }
        // The durable chain waits for a cross-province settlement's eight syncs: the floor of that
        // route class only (a local settlement waits for one).
        let syncFloor = durableBaselineLatency?.p99Ms.map { String(format: "; the durable chain %.2f ms", $0) } ?? ""
        for latency in latency {
            targets.append(Target(name: "p99 latency at \(latency.ratePerS)/s, \(latency.routes), packed \(latency.packing)",
                                  target: String(format: "<= %.0f ms", latency.p99TargetMs),
                                  measured: String(format: "%.2f ms", latency.p99Ms) + (latency.routes == "cross_province" ? syncFloor : ""),
                                  met: latency.p99Ms <= latency.p99TargetMs && latency.failed == 0))
        }
        let driverCPU = latency.compactMap(\.driverCPUPct)
        if let worst = driverCPU.max(), let rate = latency.first?.ratePerS {
            let floor = machine.wakeCost.map { String(format: "; its timed wakes alone %.1f%%", $0.timedSharePct(ratePerS: rate)) } ?? ""
            targets.append(Target(name: "load driver's own CPU at \(rate)/s", target: "<= 5% of a core",
                                  measured: String(format: "%.1f%% (the most of %d runs)", worst, driverCPU.count) + floor, met: worst <= 5))
        }
        if let uploads {
            targets.append(Target(name: "validated records/s into the national store", target: ">= 100000",
                                  measured: String(format: "%.0f", uploads.perSecond), met: uploads.perSecond >= 100_000))
        }
        if let memory {
            targets.append(Target(name: "resident memory per node, packed \(memory.packing)", target: "<= 50 MB",
                                  measured: String(format: "%.1f MB (largest)", memory.maxMB), met: memory.maxMB <= 50))
        }
        if let reconciled {
            targets.append(Target(name: "ledgers reconcile after the load", target: "yes", measured: reconciled ? "yes" : "no", met: reconciled))
        }
    }

    /// The table printed at the end of a run.
    public var table: String {
        var lines: [String] = []
        lines.append("SettleNet benchmark — \(machine.cores) cores, \(machine.build) build, libzmq \(machine.libzmq), SQLite \(machine.sqlite), \(machine.startedAt)")
        lines.append("")
        func row(_ name: String, _ value: String) { lines.append(name.padding(toLength: 52, withPad: " ", startingAt: 0) + value) }
        func spread(_ samples: [Double]?) -> String {
            guard let samples, samples.count > 1, let low = samples.min(), let high = samples.max() else { return "" }
            return String(format: "   median of %d, %.0f–%.0f", samples.count, low, high)
        }
        if let wake = machine.wakeCost {
            row("a wake-up here, CPU of the thread woken",
                String(format: "timed 1 ms sleep %.1f µs, by a pipe %.1f µs (timed wakes at 1,000/s: %.1f %% of a core)",
                       wake.timedUs, wake.byDescriptorUs, wake.timedSharePct(ratePerS: 1_000)))
        }
        if let baseline {
            row("transport baseline (7 processes, \(baseline.window) in flight)",
                String(format: "%9.0f round trips/s", baseline.perSecond) + spread(baseline.samples))
        }
        if let durable = durableBaseline {
            row("durable chain (8 syncs in series, as a settlement)",
                String(format: "%9.0f round trips/s", durable.perSecond) + spread(durable.samples))
        }
        for result in settlements {
            row("cross-province settlements, \(result.packing.map { "\($0), " } ?? "")\(result.window) in flight",
                String(format: "%9.0f /s   p50 %6.2f ms  p99 %6.2f ms  errors %d", result.perSecond, result.p50Ms, result.p99Ms, result.errors)
                + (result.cpuUsPerSettlement.map { String(format: "  cluster CPU %.0f µs each", $0) } ?? "")
                + (result.driverCPUUsPerSettlement.map { String(format: ", driver %.0f", $0) } ?? "")
                + spread(result.samples))
            if let limited = result.errorCodes[ErrorCode.rateLimited.rawValue] {
                lines.append("    \(limited) refused SN-E3007 by a county's per-connection limit: the harness's limit, not the network's")
            }
        }
        for packing in packings {
            if let ratio = ratioToBaseline[packing] { row("  best error-free / baseline, packed \(packing)", String(format: "%9.1f %%", 100 * ratio)) }
        }
        for latency in latency {
            row("latency at \(latency.ratePerS)/s, \(latency.routes), \(latency.packing) (\(latency.seconds) s)",
                String(format: "p50 %.2f ms  p99 %.2f ms  p999 %.2f ms  max %.2f ms  failed %d", latency.p50Ms, latency.p99Ms,
                       latency.p999Ms, latency.maxMs, latency.failed)
                + (latency.driverCPUPct.map { String(format: "  driver CPU %.1f %%", $0) } ?? "")
                + (latency.slowSyncs.map { "  syncs >= 50 ms \($0)" } ?? ""))
        }
        if let floor = baselineLatency, let rate = floor.openModelRatePerS, let p50 = floor.p50Ms, let p99 = floor.p99Ms {
            row("  the relay chain at \(rate)/s, same open model", String(format: "p50 %.2f ms  p99 %.2f ms  (the floor)", p50, p99)
                + (floor.driverCPUPct.map { String(format: "  its sender's CPU %.1f %%", $0) } ?? ""))
        }
        if let floor = durableBaselineLatency, let rate = floor.openModelRatePerS, let p50 = floor.p50Ms, let p99 = floor.p99Ms {
            row("  the durable chain at \(rate)/s, same open model", String(format: "p50 %.2f ms  p99 %.2f ms  (8 syncs in series)", p50, p99))
        }
        if let memory { row("resident memory per node (\(memory.packing))", String(format: "max %.1f MB  mean %.1f MB", memory.maxMB, memory.meanMB)) }
        if let uploads {
            row("uploads into the national store (batch \(uploads.batchSize))",
                String(format: "%9.0f records/s (%d records in %.1f s)", uploads.perSecond, uploads.storedNational, uploads.seconds)
                + (uploads.cpuUsPerRecord.map { String(format: "  cluster CPU %.1f µs each", $0) } ?? "")
                + (uploads.askedAgain > 0 ? "  \(uploads.askedAgain) answers in doubt, asked again" : ""))
        }
        if let security, let ratio = security.transportRatio {
            row("CURVE / plaintext relay chain", String(format: "%9.1f %%   (%.0f vs %.0f round trips/s)", 100 * ratio,
                                                        security.transportCurvePerS ?? 0, security.transportPlaintextPerS ?? 0))
        }
        if let security {
            row("secured / plaintext settlements, \(security.window) in flight",
                String(format: "%9.1f %%   (%@ vs %@ /s; p99 %.2f vs %.2f ms)", 100 * security.ratio,
                       security.securedPerS.map { String(format: "%.0f", $0) }.joined(separator: ", "),
                       security.plaintextPerS.map { String(format: "%.0f", $0) }.joined(separator: ", "),
                       security.securedP99Ms, security.plaintextP99Ms))
        }
        lines.append("")
        lines.append("targets:")
        for target in targets {
            lines.append("  \(target.met ? "MET " : "MISS") \(target.name): \(target.measured) (target \(target.target))")
        }
        return lines.joined(separator: "\n")
    }
}

extension Context {
    public static var versionString: String {
        let v = version
        return "\(v.major).\(v.minor).\(v.patch)"
    }
}
