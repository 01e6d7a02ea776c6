import ClusterControl
import Foundation
import SettlementModel
import Testing

/// Live metrics: every node process serves the Prometheus text format over HTTP, a packed
/// process once for all its nodes. Scraped with a real HTTP client (Python's urllib) and parsed
/// with the reference parser (prometheus_client, which Scripts/test.sh installs).
@Suite struct MetricsTests {
    struct Scrape: Decodable {
        struct Sample: Decodable {
            var name: String
            var labels: [String: String]
            var value: Double
        }
        var url: String
        var contentType: String
        var samples: [Sample]
    }

    /// Scrapes each URL with urllib and parses it with prometheus_client's text parser.
    func scrape(_ urls: [String]) throws -> [Scrape] {
        let run = try runProgram("/usr/bin/env", ["python3", "-c", """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            scrapes = []
            for url in sys.argv[1:]:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    content_type = answer.headers.get("Content-Type")
                    text = answer.read().decode("utf-8")
                samples = [{"name": s.name, "labels": s.labels, "value": s.value}
                           for family in text_string_to_metric_families(text) for s in family.samples]
                scrapes.append({"url": url, "contentType": content_type, "samples": samples})
            print(json.dumps(scrapes))
            """] + urls)
        try #require(run.status == 0, "scrape or parse failed (prometheus_client missing? Scripts/test.sh installs it): \(run.error)")
        return try JSONDecoder().decode([Scrape].self, from: Data(run.output.utf8))
    }

    @Test func everyNodeOfAPackedClusterIsServedInTheTextFormatPrometheusReads() throws {
        let cluster = try TestCluster()
        defer {
            cluster.shutDown()
            cluster.removeFiles()
        }
        let up = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                "--base-port", String(cluster.topology.basePort), "--pack", "province-tier", "--timeout", "120"])
        try #require(up.status == 0, "cluster up failed: \(up.output) \(up.error)")

        // Three cross-province settlements, and one the insured county refuses (a person not
        // filed for off-site care).
        for amount in ["10.00", "20.00", "30.00"] {
            let settled = try settlenet(["settle", "--data-dir", cluster.dataDirectory, "--at", "370211", "--insured", "410102", "--amount", amount])
            try #require(settled.status == 0, "\(settled.output)\(settled.error)")
        }
        let refused = try settlenet(["settle", "--data-dir", cluster.dataDirectory, "--at", "370211", "--insured", "410102",
                                     "--amount", "40.00", "--unfiled"])
        let refusal = try #require(try JSONSerialization.jsonObject(with: Data(refused.output.utf8)) as? [String: Any], "\(refused.output)\(refused.error)")
        let refusalCode = try #require(refusal["err_code"] as? String)
        #expect(refusal["infcode"] as? Int == -1 && refusalCode.hasPrefix("SN-E2"), "\(refused.output)")

        // Each node's status names its process's endpoint: one per process, 7 in all.
        let statuses = cluster.topology.nodes.map { Cluster(dataDirectory: cluster.dataDirectory).readStatus($0.id.value) }
        let urls = statuses.compactMap { $0?.metrics }
        #expect(urls.count == 15, "every node names its endpoint")
        let endpoints = Array(Set(urls)).sorted()
        #expect(endpoints.count == 7, "\(endpoints)")
        #expect(endpoints.allSatisfy { $0.hasPrefix("http://127.0.0.1:") && $0.hasSuffix("/metrics") })

        let scrapes = try scrape(endpoints)
        for scrape in scrapes {
            #expect(scrape.contentType.hasPrefix("text/plain; version=0.0.4"), "\(scrape.url): \(scrape.contentType)")
        }
        let samples = scrapes.flatMap(\.samples)
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
        }
        // Every node once, labelled by node, with its tier.
        let served = samples.filter { $0.name == "settlenet_node_info" }
        #expect(served.map { $0.labels["node"] ?? "" }.sorted() == cluster.topology.nodes.map(\.id.value).sorted())
        #expect(served.allSatisfy { $0.value == 1 })
        #expect(value("settlenet_node_info", ["node": "370000"]) != nil && served.first { $0.labels["node"] == "370000" }?.labels["tier"] == "province")

        // Messages by transaction and outcome, answers by error code, at the origin, a relay and the insured county.
        for node in ["370211", "370000", "000000", "410000", "410102"] {
            #expect(value("settlenet_messages_total", ["node": node, "txn": "2207", "outcome": "ok"]) == 3, "\(node)")
            #expect(value("settlenet_messages_total", ["node": node, "txn": "2207", "outcome": "error"]) == 1, "\(node)")
            #expect(value("settlenet_answers_total", ["node": node, "code": refusalCode]) == 1, "\(node)")
        }
        #expect(value("settlenet_messages_total", ["node": "370202", "txn": "2207", "outcome": "ok"]) == nil, "not on the path")

        // Commits with their commit and fsync times, as histograms whose +Inf bucket is their count.
        let county = ["node": "410102"]
        let commits = try #require(value("settlenet_commits_total", county))
        #expect(commits >= 4, "a round per settlement at least")
        for histogram in ["settlenet_commit_seconds", "settlenet_fsync_seconds"] {
            let count = try #require(value("\(histogram)_count", county), "\(histogram)")
            #expect(count >= 1)
            #expect(value("\(histogram)_bucket", county.merging(["le": "+Inf"]) { $1 }) == count, "\(histogram)")
            #expect((value("\(histogram)_sum", county) ?? 0) > 0, "\(histogram)")
        }
        #expect((value("settlenet_round_messages_count", county) ?? 0) >= 1)

        // The gauges: every node has them, every ticket kind shown.
        for node in cluster.topology.nodes.map(\.id.value) {
            for gauge in ["settlenet_settlements_pending", "settlenet_settlements_in_doubt", "settlenet_sync_queue_rounds", "settlenet_signed_in"] {
                #expect(value(gauge, ["node": node]) != nil, "\(gauge) of \(node)")
            }
            for kind in ["node_unresponsive", "business_refusal", "upload_reject"] {
                #expect(value("settlenet_tickets_open", ["node": node, "kind": kind]) != nil, "tickets of \(node)")
            }
            #expect(value("settlenet_upload_records_accepted_total", ["node": node]) != nil)
        }

        // The operator's summary: every node on one screen, the same figures.
        let summary = try settlenet(["cluster", "metrics", "--data-dir", cluster.dataDirectory])
        #expect(summary.status == 0, "\(summary.output)\(summary.error)")
        let lines = summary.output.split(separator: "\n").map(String.init)
        for node in cluster.topology.nodes.map(\.id.value) {
            #expect(lines.contains { $0.hasPrefix(node + " ") }, "\(node) in\n\(summary.output)")
        }
        let national = try #require(lines.first { $0.hasPrefix("000000 ") }).split(separator: " ").map(String.init)
        let answers = samples.filter { $0.name == "settlenet_messages_total" && $0.labels["node"] == "000000" }.reduce(0) { $0 + $1.value }
        #expect(national[2] == String(Int(answers)), "answers as scraped: \(national)")
        #expect(summary.output.contains("15 nodes from 7 of 7 endpoints"), "\(summary.output)")
    }

    /// `metrics_port: off`: no endpoint, and `cluster metrics` says why.
    @Test func aTopologyWithMetricsOffServesNoneAndTheSummarySaysWhy() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-off-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let text = try String(contentsOfFile: "\(repositoryRoot)/Topologies/minimal.yaml", encoding: .utf8)
            .replacingOccurrences(of: "metrics_port: 1000", with: "metrics_port: off")
        try text.write(toFile: "\(base)/minimal-off.yaml", atomically: true, encoding: .utf8)
        let cluster = try TestCluster(topologyFile: "\(base)/minimal-off.yaml")
        defer {
            cluster.shutDown()
            cluster.removeFiles()
        }
        #expect(cluster.topology.metricsPortOffset == nil)
        let up = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                "--base-port", String(cluster.topology.basePort), "--pack", "15", "--timeout", "120"])
        try #require(up.status == 0, "cluster up failed: \(up.output) \(up.error)")
        #expect(Cluster(dataDirectory: cluster.dataDirectory).readStatus("370211")?.metrics == nil)
        let summary = try settlenet(["cluster", "metrics", "--data-dir", cluster.dataDirectory])
        #expect(summary.status == 1)
        #expect(summary.error.contains("metrics_port"), "\(summary.error)")
    }
}
