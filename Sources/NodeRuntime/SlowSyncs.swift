import Logging

/// Syncs of a node's ledger slow enough to show in every answer waiting on them (a sync takes
/// well under a millisecond on a healthy disk). Logged as a warning at most once a second, with
/// how many there were and the longest, so that a stall in a run's latency can be put down to
/// the disk, or not, and an operator learns that the disk is slow without a flood of lines.
struct SlowSyncs {
    /// A sync that takes this long is slow.
    static let thresholdUs: Int64 = 50_000

    private var pending = 0
    private var longestUs: Int64 = 0
    private var lastReportMs: Int64 = .min
    /// Slow syncs since the node started.
    private(set) var total = 0

    /// Counts a sync that took `tookUs`; returns what to report when a report is due.
    mutating func record(tookUs: Int64, nowMs: Int64) -> (count: Int, longestMs: Int64)? {
        guard tookUs >= Self.thresholdUs else { return nil }
        total += 1
        pending += 1
        longestUs = max(longestUs, tookUs)
        guard lastReportMs == .min || nowMs - lastReportMs >= 1_000 else { return nil }
        defer {
            pending = 0
            longestUs = 0
            lastReportMs = nowMs
        }
        return (pending, longestUs / 1_000)
    }

    mutating func note(tookUs: Int64, nowMs: Int64, logger: Logger) {
        guard let report = record(tookUs: tookUs, nowMs: nowMs) else { return }
        logger.warning("ledger sync slow: answers waited for the disk", metadata: [
            "slow_syncs": "\(report.count)", "longest_ms": "\(report.longestMs)", "threshold_ms": "\(Self.thresholdUs / 1_000)",
        ])
    }
}
