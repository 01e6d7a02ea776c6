import SettlementModel

/// Where the node runtime gets the time. The reactor reads it once per round and hands that
/// instant to every node it steps, so nothing inside a round reads a clock of its own.
public protocol NodeClock: Sendable {
    /// Microseconds since the Unix epoch.
    func nowUs() -> Int64
}

extension NodeClock {
    public func nowMs() -> Int64 { nowUs() / 1_000 }
}

/// Milliseconds since the Unix epoch: the wall clock as read when it was made, moved on by the
/// monotonic clock. A node's timers (deadlines, correction backoffs, flushes) and its
/// timestamps never jump with the machine's clock: a clock stepped back once held a county's
/// corrections back by the step, past the hospitals' patience (`sim fuzz`, seed 5505). A node
/// started after a step runs on the new time.
public struct WallClock: NodeClock {
    private let startWallUs: Int64
    private let startMonotonicUs: Int64

    public init() {
        startWallUs = wallClockMs() * 1_000
        startMonotonicUs = monotonicUs()
    }

    public func nowUs() -> Int64 { startWallUs + monotonicUs() - startMonotonicUs }
}

/// A node's life: its status file says which.
public enum NodeState: String, Sendable {
    case starting, running, draining, stopped
}
