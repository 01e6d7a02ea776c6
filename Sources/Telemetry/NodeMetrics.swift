import Prometheus

/// The metrics of one process: one registry, every node's instruments labelled by node, served
/// at one endpoint (`MetricsEndpoint`).
public final class ProcessMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    public init() {}

    /// The instruments of node `id` (a division code), made once per node.
    /// `ticketKinds`: every kind of ticket, shown at 0 until one opens.
    public func node(_ id: String, tier: String, ticketKinds: [String]) -> NodeMetrics {
        NodeMetrics(registry: registry, node: id, tier: tier, ticketKinds: ticketKinds)
    }

    /// Every instrument in the Prometheus text format (exposition format 0.0.4).
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}

/// One node's instruments. Its reactor thread records into them; the HTTP endpoint reads them on
/// another thread (the instruments are atomics and locks of their own). Instruments are made
/// once per label set and kept, so a recording is an atomic add, not a registry lookup.
public final class NodeMetrics {
    public let node: String
    let registry: PrometheusCollectorRegistry

    /// Per transaction code and error code seen: the counter of its transaction and outcome
    /// (`settlenet_messages_total`) and of its error code (`settlenet_answers_total`), found
    /// with one lookup an answer.
    private var answerCounters: [AnswerKey: (message: Counter, code: Counter)] = [:]
    let framesReceived: Counter
    let commits: Counter
    /// One round's ledger transaction, written (not yet durable).
    let commitTime: DurationHistogram
    /// Making the log durable (fsync): what every answer waits for.
    let fsyncTime: DurationHistogram
    /// What one round's ledger transaction records (answers, decisions, journal rows).
    let roundMessages: ValueHistogram
    /// Rounds recorded and waiting for their fsync; their answers wait with them.
    let syncQueue: Gauge
    let pending: Gauge
    let inDoubt: Gauge
    let signedIn: Gauge
    let diskFull: Gauge
    private var ticketsOpen: [String: Gauge] = [:]
    /// Upload records by the ledger's own counters ('received', 'accepted', a rule id), so that
    /// they hold across restarts: each refresh adds what grew since the last.
    private var uploadCounters: [String: Counter] = [:]
    private var uploadCountsSeen: [String: Int] = [:]

    struct AnswerKey: Hashable {
        var txn: String
        var infcodeOK: Bool
        var errCode: String
    }

    init(registry: PrometheusCollectorRegistry, node: String, tier: String, ticketKinds: [String]) {
        self.registry = registry
        self.node = node
        let label = [("node", node)]
        registry.makeGauge(descriptor: Self.describe("settlenet_node_info", "A node served by this process (always 1), with its tier."), labels: [("node", node), ("tier", tier)]).set(Int64(1))
        framesReceived = registry.makeCounter(descriptor: Self.describe("settlenet_frames_received_total", "Messages received (requests and answers), before any check."), labels: label)
        commits = registry.makeCounter(descriptor: Self.describe("settlenet_commits_total", "Ledger transactions committed (one a round)."), labels: label)
        commitTime = registry.makeDurationHistogram(descriptor: Self.describe("settlenet_commit_seconds", "Time to write one round's ledger transaction (before its fsync)."), labels: label, buckets: Self.timeBuckets)
        fsyncTime = registry.makeDurationHistogram(descriptor: Self.describe("settlenet_fsync_seconds", "Time to make the ledger's log durable; answers leave after it."), labels: label, buckets: Self.timeBuckets)
        roundMessages = registry.makeValueHistogram(descriptor: Self.describe("settlenet_round_messages", "Directives one round's ledger transaction records (answers, decisions, journal rows): what each commit carries."), labels: label, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
        syncQueue = registry.makeGauge(descriptor: Self.describe("settlenet_sync_queue_rounds", "Rounds recorded and waiting for their fsync (their answers wait with them)."), labels: label)
        pending = registry.makeGauge(descriptor: Self.describe("settlenet_settlements_pending", "Requests forwarded and not yet answered."), labels: label)
        inDoubt = registry.makeGauge(descriptor: Self.describe("settlenet_settlements_in_doubt", "Settlements whose outcome is unknown, being resolved by correction."), labels: label)
        signedIn = registry.makeGauge(descriptor: Self.describe("settlenet_signed_in", "1 once the node has signed in to its parent."), labels: label)
        diskFull = registry.makeGauge(descriptor: Self.describe("settlenet_disk_full", "1 while the disk under the node's ledger is full and new work is refused (SN-E3008)."), labels: label)
        for kind in ticketKinds { _ = ticketGauge(kind) }
        for name in ["received", "accepted"] { _ = uploadCounter(name) }
    }

    private static func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Durations from 100 µs to 10 s.
    static let timeBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2_500), .seconds(10),
    ]

    /// An answer this node sent: `txn` the transaction it answers ("" when not known, as for a
    /// malformed request), with its `infcode` and error code.
    public func answered(txn: String, infcode: Int32, errCode: String) {
        let key = AnswerKey(txn: txn, infcodeOK: infcode == 0, errCode: errCode)
        if let counters = answerCounters[key] {
            counters.message.increment()
            counters.code.increment()
            return
        }
        let ok = infcode == 0 && errCode.isEmpty
        let message = registry.makeCounter(descriptor: Self.describe("settlenet_messages_total", "Answers this node sent, by transaction code and outcome."),
                                           labels: [("node", node), ("txn", txn.isEmpty ? "unknown" : txn), ("outcome", ok ? "ok" : "error")])
        let code = registry.makeCounter(descriptor: Self.describe("settlenet_answers_total", "Answers this node sent, by error code (none: a success)."),
                                        labels: [("node", node), ("code", errCode.isEmpty ? (ok ? "none" : "unspecified") : errCode)])
        answerCounters[key] = (message, code)
        message.increment()
        code.increment()
    }

    public func received(_ count: Int) { if count > 0 { framesReceived.increment(by: Int64(count)) } }

    public func committed(tookUs: Int64, messages: Int) {
        commits.increment()
        commitTime.record(.microseconds(tookUs))
        if messages > 0 { roundMessages.record(Double(messages)) }
    }

    public func synced(tookUs: Int64) { fsyncTime.record(.microseconds(tookUs)) }

    /// The gauges, as the node's state stands.
    public func refresh(pending: Int, inDoubt: Int, syncQueue: Int, signedIn: Bool, diskFull: Bool = false) {
        self.pending.set(Int64(pending))
        self.inDoubt.set(Int64(inDoubt))
        self.syncQueue.set(Int64(syncQueue))
        self.signedIn.set(Int64(signedIn ? 1 : 0))
        self.diskFull.set(Int64(diskFull ? 1 : 0))
    }

    /// Tickets this node holds open (or acknowledged), by kind.
    public func refresh(ticketsOpen counts: [String: Int]) {
        for kind in Set(ticketsOpen.keys).union(counts.keys) { ticketGauge(kind).set(Int64(counts[kind] ?? 0)) }
    }

    /// The ledger's upload counters: 'received', 'accepted' and one per rule id (rejected records).
    public func refresh(uploadCounts counts: [String: Int]) {
        for (name, total) in counts where name != "corrections" {
            let grown = total - (uploadCountsSeen[name] ?? 0)
            if grown > 0 { uploadCounter(name).increment(by: Int64(grown)) }
            uploadCountsSeen[name] = total
        }
    }

    private func ticketGauge(_ kind: String) -> Gauge {
        if let gauge = ticketsOpen[kind] { return gauge }
        let made = registry.makeGauge(descriptor: Self.describe("settlenet_tickets_open", "Error tickets open or acknowledged at this node, by kind."), labels: [("node", node), ("kind", kind)])
        ticketsOpen[kind] = made
        return made
    }

    private func uploadCounter(_ name: String) -> Counter {
        if let counter = uploadCounters[name] { return counter }
        let made: Counter
        switch name {
        case "received":
            made = registry.makeCounter(descriptor: Self.describe("settlenet_upload_records_received_total", "Upload records this node screened."), labels: [("node", node)])
        case "accepted":
            made = registry.makeCounter(descriptor: Self.describe("settlenet_upload_records_accepted_total", "Upload records that passed this node's screen."), labels: [("node", node)])
        default:
            made = registry.makeCounter(descriptor: Self.describe("settlenet_upload_records_rejected_total", "Upload records this node rejected, by rule id (docs/DATA_QUALITY.md)."), labels: [("node", node), ("rule", name)])
        }
        uploadCounters[name] = made
        return made
    }
}
