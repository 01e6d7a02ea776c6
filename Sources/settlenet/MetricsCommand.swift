import ArgumentParser
import ClusterControl
import Foundation
import SettlementModel
import Telemetry

extension ClusterCommand {
    struct Metrics: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scrape every node process's Prometheus endpoint and print one screen of figures per node.",
            discussion: """
                Each node process serves its metrics over HTTP in the Prometheus text format, at \
                http://<host>:<base_port + port + metrics_port>/metrics (a packed process serves all its \
                nodes at its first node's, each labelled by node; `metrics_port: off` in the topology \
                serves none). Point Prometheus at those endpoints; the status files \
                (DIR/nodes/<id>/status.json, field metrics) name each node's.

                This command reads them all once and prints, per node: answers sent and errors among \
                them, ledger commits with their mean commit and fsync time, settlements pending and in \
                doubt, tickets open and upload records accepted and rejected. More than --rows nodes \
                are summed per tier, followed by the nodes with the most errors and pending. Exit code \
                1 when an endpoint did not answer (it is named).
                  settlenet cluster metrics --data-dir run/minimal
                  curl -s http://127.0.0.1:18107/metrics | grep settlenet_messages_total
                """
        )
        @OptionGroup var data: DataDirOption
        @Option(help: "Up to this many nodes get a line each; more are summed per tier.") var rows: Int = 40
        @Option(help: "Seconds to wait for each endpoint.") var timeout: Double = 5

        func validate() throws {
            guard rows >= 1 else { throw ValidationError("--rows must be at least 1") }
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        }

        func run() throws {
            let cluster = Cluster(dataDirectory: data.dataDir)
            let record: ClusterRecord
            do { record = try cluster.record() } catch { throw SettleNetError(.command, "\(error)") }
            // One scrape per endpoint: a packed process's nodes share one.
            var endpoints: [String] = []
            var unserved: [String] = []
            for node in record.nodes {
                guard let url = cluster.readStatus(node.id)?.metrics else { unserved.append(node.id); continue }
                if !endpoints.contains(url) { endpoints.append(url) }
            }
            guard !endpoints.isEmpty else {
                throw SettleNetError(.command, "no node of \(data.dataDir) serves metrics: is the cluster up, and does its topology set metrics_port (not off)?")
            }
            var samples: [MetricSample] = []
            var failures: [String] = []
            for url in endpoints {
                do {
                    samples += try MetricsText.samples(try MetricsText.scrape(url, timeoutSeconds: timeout))
                } catch {
                    failures.append("\(error)")
                }
            }
            let summaries = NodeMetricsSummary.summaries(samples)
            if summaries.count <= rows {
                print(table(summaries))
            } else {
                let tiers = ["national", "province", "city", "county"]
                let byTier = tiers.compactMap { tier -> NodeMetricsSummary? in
                    let members = summaries.filter { $0.tier == tier }
                    guard !members.isEmpty else { return nil }
                    var total = NodeMetricsSummary.total(members, named: "\(members.count) \(tier)")
                    total.tier = tier
                    return total
                }
                print(table(byTier, first: "nodes"))
                let busiest = summaries.sorted { ($0.errors, $0.pending, $0.answers) > ($1.errors, $1.pending, $1.answers) }.prefix(10)
                print("\nthe \(busiest.count) nodes with the most errors, then pending, then answers:")
                print(table(Array(busiest)))
            }
            let total = NodeMetricsSummary.total(summaries, named: "all")
            let codes = total.errorCodes.sorted { $0.value > $1.value }.prefix(5).map { "\($0.key) \(Int($0.value))" }
            print("\(summaries.count) nodes from \(endpoints.count - failures.count) of \(endpoints.count) endpoints: \(Int(total.answers)) answers, \(Int(total.errors)) errors\(codes.isEmpty ? "" : " (\(codes.joined(separator: ", ")))")")
            if !unserved.isEmpty {
                print("no metrics endpoint in the status of \(unserved.count) nodes: \(unserved.prefix(10).joined(separator: ", "))\(unserved.count > 10 ? " ..." : "")")
            }
            if !failures.isEmpty {
                throw SettleNetError(.command, "\(failures.count) endpoints did not answer: \(failures.prefix(5).joined(separator: "; "))")
            }
        }

        func table(_ summaries: [NodeMetricsSummary], first: String = "node") -> String {
            func count(_ value: Double) -> String { String(Int(value.rounded())) }
            func ms(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }
            let header = [first, "tier", "answers", "errors", "commits", "commit ms", "fsync ms", "pending", "in doubt", "tickets",
                          "uploads ok", "rejected"]
            let rows = summaries.map {
                [$0.node, $0.tier, count($0.answers), count($0.errors), count($0.commits), ms($0.meanCommitMs), ms($0.meanFsyncMs),
                 count($0.pending), count($0.inDoubt), count($0.ticketsOpen), count($0.uploadsAccepted), count($0.uploadsRejected)]
            }
            var widths = header.map(\.count)
            for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            }
            return ([line(header)] + rows.map(line)).joined(separator: "\n")
        }
    }
}
