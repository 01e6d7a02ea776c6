import SettlementModel

/// Where the node runtime gets the time. The reactor reads it once per round and hands that
/// instant to every node it steps, so nothing inside a round reads a clock of its own.
public protocol NodeClock: Sendable {
    func nowMs() -> Int64
}

/// Milliseconds since the Unix epoch.
public struct WallClock: NodeClock {
    public init() {}
    public func nowMs() -> Int64 { wallClockMs() }
}

/// A node's life: its status file says which.
public enum NodeState: String, Sendable {
    case starting, running, draining, stopped
}
