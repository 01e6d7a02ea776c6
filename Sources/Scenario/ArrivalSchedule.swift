import NetworkTopology

/// The open model's fixed schedule of intended send times: the k-th arrival is due when the
/// integral of the rate reaches k + 1/2. It depends only on the executor, never on how fast
/// the network answers, so a slow network cannot slow the load down (no coordinated omission).
public struct ArrivalSchedule: Sequence, Sendable {
    /// A piece of the rate curve: linear from `startRate` to `endRate` over [startUs, endUs).
    struct Segment: Sendable {
        var startUs: Int64
        var endUs: Int64
        var startRate: Double
        var endRate: Double
        var arrivalsBefore: Double   // integral of the rate up to startUs
        var arrivals: Double { (startRate + endRate) / 2 * Double(endUs - startUs) / 1e6 }
    }

    let segments: [Segment]
    public let durationUs: Int64

    public init(executor: SettlementLoad.Executor, durationMs: Int64) {
        durationUs = durationMs * 1_000
        var pieces: [(Int64, Double, Double)] = []   // (length us, start rate, end rate)
        switch executor {
        case .constantArrivalRate(let rate):
            pieces = [(durationUs, rate, rate)]
        case .rampingArrivalRate(let startRate, let stages):
            var previous = startRate
            for stage in stages {
                pieces.append((stage.durationMs * 1_000, previous, stage.target))
                previous = stage.target
            }
        }
        var segments: [Segment] = []
        var at: Int64 = 0
        var total = 0.0
        for (length, start, end) in pieces where at < durationUs {
            // The load stops at `duration`: cut the last piece there, at the rate reached.
            let cut = Swift.min(length, durationUs - at)
            let endRate = cut == length ? end : start + (end - start) * Double(cut) / Double(length)
            let segment = Segment(startUs: at, endUs: at + cut, startRate: start, endRate: endRate, arrivalsBefore: total)
            segments.append(segment)
            total += segment.arrivals
            at += cut
        }
        self.segments = segments
    }

    /// The target rate at `us` microseconds from the start.
    public func rate(atUs us: Int64) -> Double {
        guard let segment = segments.first(where: { us >= $0.startUs && us < $0.endUs }) else { return 0 }
        let fraction = Double(us - segment.startUs) / Double(segment.endUs - segment.startUs)
        return segment.startRate + (segment.endRate - segment.startRate) * fraction
    }

    /// How many arrivals the schedule holds in all.
    public var expectedArrivals: Int {
        guard let last = segments.last else { return 0 }
        let total = last.arrivalsBefore + last.arrivals
        return Swift.max(0, Int((total - 0.5).rounded(.down)) + 1)
    }

    public func makeIterator() -> Iterator { Iterator(segments: segments) }

    public struct Iterator: IteratorProtocol {
        let segments: [Segment]
        var index = 0
        var segmentIndex = 0

        /// The next intended send time, in microseconds from the start.
        public mutating func next() -> Int64? {
            let wanted = Double(index) + 0.5
            while segmentIndex < segments.count {
                let segment = segments[segmentIndex]
                let need = wanted - segment.arrivalsBefore
                if need <= segment.arrivals + 1e-9, segment.arrivals > 0 {
                    index += 1
                    return segment.startUs + Self.offset(for: need, in: segment)
                }
                segmentIndex += 1
            }
            return nil
        }

        /// Solves startRate·t + (slope/2)·t² = need for t (seconds), as microseconds.
        static func offset(for need: Double, in segment: Segment) -> Int64 {
            let seconds = Double(segment.endUs - segment.startUs) / 1e6
            let slope = (segment.endRate - segment.startRate) / seconds
            let t: Double
            if abs(slope) < 1e-12 {
                t = need / segment.startRate
            } else {
                let discriminant = Swift.max(0, segment.startRate * segment.startRate + 2 * slope * need)
                t = (-segment.startRate + discriminant.squareRoot()) / slope
            }
            return Swift.min(segment.endUs - segment.startUs - 1, Swift.max(0, Int64((t * 1e6).rounded())))
        }
    }

    /// Where each stage begins, in seconds, for report marks.
    public static func stageStarts(_ executor: SettlementLoad.Executor) -> [(startS: Double, label: String)] {
        switch executor {
        case .constantArrivalRate(let rate):
            return [(0, "constant \(formatRate(rate))/s")]
        case .rampingArrivalRate(_, let stages):
            var at: Int64 = 0
            return stages.enumerated().map { index, stage in
                defer { at += stage.durationMs }
                return (Double(at) / 1_000, "stage \(index + 1): → \(formatRate(stage.target))/s")
            }
        }
    }

    static func formatRate(_ rate: Double) -> String {
        rate == rate.rounded() ? String(Int(rate)) : String(format: "%.1f", rate)
    }
}
