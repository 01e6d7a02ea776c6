/// One node's figures as its metrics endpoint gave them (`cluster metrics`).
public struct NodeMetricsSummary: Equatable, Sendable {
    public var node: String
    public var tier = ""
    /// Answers sent, and those of them that were errors.
    public var answers = 0.0
    public var errors = 0.0
    public var commits = 0.0
    public var commitSeconds = 0.0
    public var fsyncs = 0.0
    public var fsyncSeconds = 0.0
    public var pending = 0.0
    public var inDoubt = 0.0
    public var ticketsOpen = 0.0
    public var uploadsAccepted = 0.0
    public var uploadsRejected = 0.0
    /// The most frequent error codes of its answers.
    public var errorCodes: [String: Double] = [:]

    public init(node: String) { self.node = node }

    public var meanCommitMs: Double? { commits > 0 ? commitSeconds / commits * 1_000 : nil }
    public var meanFsyncMs: Double? { fsyncs > 0 ? fsyncSeconds / fsyncs * 1_000 : nil }

    /// Every node's figures in `samples` (the text of one or more endpoints), ordered by node.
    public static func summaries(_ samples: [MetricSample]) -> [NodeMetricsSummary] {
        var byNode: [String: NodeMetricsSummary] = [:]
        for sample in samples {
            guard let node = sample.labels["node"] else { continue }
            var summary = byNode[node] ?? NodeMetricsSummary(node: node)
            let value = sample.value
            switch sample.name {
            case "settlenet_node_info": summary.tier = sample.labels["tier"] ?? ""
            case "settlenet_messages_total":
                summary.answers += value
                if sample.labels["outcome"] == "error" { summary.errors += value }
            case "settlenet_answers_total":
                if let code = sample.labels["code"], code != "none", value > 0 { summary.errorCodes[code, default: 0] += value }
            case "settlenet_commits_total": summary.commits = value
            case "settlenet_commit_seconds_sum": summary.commitSeconds = value
            case "settlenet_fsync_seconds_count": summary.fsyncs = value
            case "settlenet_fsync_seconds_sum": summary.fsyncSeconds = value
            case "settlenet_settlements_pending": summary.pending = value
            case "settlenet_settlements_in_doubt": summary.inDoubt = value
            case "settlenet_tickets_open": summary.ticketsOpen += value
            case "settlenet_upload_records_accepted_total": summary.uploadsAccepted = value
            case "settlenet_upload_records_rejected_total": summary.uploadsRejected += value
            default: break
            }
            byNode[node] = summary
        }
        return byNode.values.sorted { $0.node < $1.node }
    }

    /// The figures of several nodes added up (a tier's), named `name`.
    public static func total(_ summaries: [NodeMetricsSummary], named name: String) -> NodeMetricsSummary {
        var total = NodeMetricsSummary(node: name)
        for summary in summaries {
            total.answers += summary.answers
            total.errors += summary.errors
            total.commits += summary.commits
            total.commitSeconds += summary.commitSeconds
            total.fsyncs += summary.fsyncs
            total.fsyncSeconds += summary.fsyncSeconds
            total.pending += summary.pending
            total.inDoubt += summary.inDoubt
            total.ticketsOpen += summary.ticketsOpen
            total.uploadsAccepted += summary.uploadsAccepted
            total.uploadsRejected += summary.uploadsRejected
            for (code, count) in summary.errorCodes { total.errorCodes[code, default: 0] += count }
        }
        return total
    }
}
