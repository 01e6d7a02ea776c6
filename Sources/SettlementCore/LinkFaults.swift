import SettlementModel

/// A fault on one direction of one link: what happens to the messages `from` sends to `to`
/// between `startMs` and `endMs` (Unix ms). Entries expire by themselves: a node ignores an
/// entry past its end whether or not anyone removes it.
public struct LinkFault: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var startMs: Int64
    public var endMs: Int64
    public var delayMs: Int
    public var jitterMs: Int
    /// Probabilities per message, 0...1. A partition is loss 1.
    public var loss: Double
    public var duplicate: Double
    public var corrupt: Double
    /// Seeds the per-message decisions: the same seed and the same messages give the same decisions.
    public var seed: UInt64

    public init(from: String, to: String, startMs: Int64, endMs: Int64, delayMs: Int = 0, jitterMs: Int = 0, loss: Double = 0,
                duplicate: Double = 0, corrupt: Double = 0, seed: UInt64) {
        self.from = from; self.to = to; self.startMs = startMs; self.endMs = endMs; self.delayMs = delayMs
        self.jitterMs = jitterMs; self.loss = loss; self.duplicate = duplicate; self.corrupt = corrupt; self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case from, to, loss, duplicate, corrupt, seed
        case startMs = "start_ms"
        case endMs = "end_ms"
        case delayMs = "delay_ms"
        case jitterMs = "jitter_ms"
    }
}

/// What becomes of one message on a faulty link.
public struct LinkDecision: Equatable, Sendable {
    public var dropped: Bool
    /// Sent after this long (delay plus jitter).
    public var delayMs: Int
    /// Sent twice.
    public var duplicated: Bool
    /// One byte of the body flipped, at this position (modulo the body's length).
    public var corruptAt: Int?

    public static let untouched = LinkDecision(dropped: false, delayMs: 0, duplicated: false, corruptAt: nil)
}

/// One decision as a node took it, for the trace a run keeps (`DataLayout.linkDecisionsPath`):
/// which fault (by its seed), the message's number on that link during the fault, and what
/// became of it. Two runs with the same seed agree entry by entry on `(fault, number)`.
public struct TracedDecision: Codable, Equatable, Sendable {
    public var fault: UInt64
    public var to: String
    public var number: Int
    public var dropped: Bool
    public var delayMs: Int
    public var duplicated: Bool
    public var corruptAt: Int?

    public init(fault: UInt64, to: String, number: Int, decision: LinkDecision) {
        self.fault = fault; self.to = to; self.number = number; dropped = decision.dropped
        delayMs = decision.delayMs; duplicated = decision.duplicated; corruptAt = decision.corruptAt
    }

    public var decision: LinkDecision {
        LinkDecision(dropped: dropped, delayMs: delayMs, duplicated: duplicated, corruptAt: corruptAt)
    }

    enum CodingKeys: String, CodingKey {
        case fault, to, number, dropped, duplicated
        case delayMs = "delay_ms"
        case corruptAt = "corrupt_at"
    }
}

/// The link faults one node applies to what it sends, with the per-message decisions drawn
/// from each fault's seed and the message's number on that link during the fault: replaying
/// a seed replays the decisions, message by message.
public struct LinkFaultTable: Sendable {
    public private(set) var faults: [LinkFault]
    /// Messages decided so far per fault, by the fault's seed: kept when the table is
    /// replaced, so a fault's numbering does not restart when another fault begins.
    private var sequence: [UInt64: Int] = [:]

    public init(faults: [LinkFault] = []) {
        self.faults = faults
    }

    /// The faults of `node`'s outgoing links, from everything in force in the cluster.
    public init(faults: [LinkFault], sender node: String) {
        self.init(faults: faults.filter { $0.from == node })
    }

    /// Puts `faults` (already this node's) in force, keeping the numbering of those that stay.
    public mutating func replace(with faults: [LinkFault]) {
        let kept = Set(faults.map(\.seed))
        sequence = sequence.filter { kept.contains($0.key) }
        self.faults = faults
    }

    public var isEmpty: Bool { faults.isEmpty }

    /// The decision for the next message from this node to `peer` at `nowMs`; `.untouched`
    /// when no fault is in force on that link.
    public mutating func decide(to peer: String, nowMs: Int64) -> LinkDecision {
        next(to: peer, nowMs: nowMs)?.decision ?? .untouched
    }

    /// As `decide`, with the fault and the message's number on the link; nil when no fault
    /// is in force on that link.
    public mutating func next(to peer: String, nowMs: Int64) -> TracedDecision? {
        guard let fault = faults.first(where: { $0.to == peer && $0.startMs <= nowMs && nowMs < $0.endMs }) else {
            return nil
        }
        let number = sequence[fault.seed, default: 0] + 1
        sequence[fault.seed] = number
        return TracedDecision(fault: fault.seed, to: peer, number: number, decision: Self.decision(fault, number: number))
    }

    /// The fate of the `number`-th message under `fault`: a pure function of the two.
    public static func decision(_ fault: LinkFault, number: Int) -> LinkDecision {
        var random = SplitMix64(seed: fault.seed &+ UInt64(number) &* 0x9E37_79B9_7F4A_7C15)
        func chance() -> Double { Double(random.next() >> 11) / Double(UInt64(1) << 53) }
        // Every draw is made, used or not, so one setting never shifts another's decisions.
        let lost = chance() < fault.loss
        let twice = chance() < fault.duplicate
        let spoiled = chance() < fault.corrupt
        let position = Int(random.next() % 1_000_000)
        let jitter = fault.jitterMs > 0 ? Int(random.next() % UInt64(2 * fault.jitterMs + 1)) - fault.jitterMs : 0
        return LinkDecision(dropped: lost, delayMs: max(0, fault.delayMs + jitter), duplicated: twice,
                            corruptAt: spoiled ? position : nil)
    }
}
