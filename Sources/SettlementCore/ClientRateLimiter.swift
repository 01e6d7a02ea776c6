import SettlementModel

/// The limits a node puts on what comes in from its clients (hospitals), documented in
/// docs/SECURITY.md. Links from child nodes carry whole subtrees' traffic and are not limited.
public enum EdgeLimits {
    /// Messages a client connection may send per second, and in one burst, before its
    /// requests are refused with SN-E3007 (a real hospital sends a few a second; a load tool
    /// multiplexing a county's hospitals on one plaintext link stays well below).
    public static let clientRatePerS = 2_000
    public static let clientBurst = 2_000
    /// Larger messages make libzmq drop the connection before the node reads them.
    public static let maxMessageBytes = WireCodec.maxMessageBytes
    /// Larger request bodies are refused with SN-E1007.
    public static let maxBodyBytes = WireCodec.maxBodyBytes
}

/// Token buckets per client connection: `ratePerS` messages a second, up to `burst` at once.
/// Pure: the caller gives the time, so a test can run an hour of traffic in no time.
public struct ClientRateLimiter {
    public let ratePerS: Double
    public let burst: Double
    private var buckets: [[UInt8]: (tokens: Double, lastMs: Int64, refused: Int)] = [:]

    public init(ratePerS: Int = EdgeLimits.clientRatePerS, burst: Int = EdgeLimits.clientBurst) {
        self.ratePerS = Double(ratePerS)
        self.burst = Double(burst)
    }

    /// Whether one more message of `client` is within its share now; a refusal is counted.
    public mutating func admit(_ client: [UInt8], nowMs: Int64) -> Bool {
        var bucket = buckets[client] ?? (burst, nowMs, 0)
        bucket.tokens = min(burst, bucket.tokens + Double(max(0, nowMs - bucket.lastMs)) * ratePerS / 1_000)
        bucket.lastMs = nowMs
        let admitted = bucket.tokens >= 1
        if admitted { bucket.tokens -= 1 } else { bucket.refused += 1 }
        buckets[client] = bucket
        return admitted
    }

    /// Refusals per client since the last call, and forgets clients idle for `idleMs` with a
    /// full bucket (hospitals reconnect under new routing ids: the table must not grow forever).
    public mutating func takeRefusals(nowMs: Int64, idleMs: Int64 = 60_000) -> [(client: [UInt8], refused: Int)] {
        var report: [(client: [UInt8], refused: Int)] = []
        for (client, bucket) in buckets {
            if bucket.refused > 0 {
                report.append((client, bucket.refused))
                buckets[client]?.refused = 0
            } else if nowMs - bucket.lastMs >= idleMs {
                buckets[client] = nil
            }
        }
        return report
    }

    public var trackedClients: Int { buckets.count }
}
