import Foundation
import Scenario
import Testing

/// A small report built from report.json's own field names (so the sample is what a run writes,
/// and it needs none of the model's initializers).
enum SampleReport {
    static func json(scenario: String = "steady-then-spike", passed: Bool = false, byCode: String? = nil) -> String {
        let name = String(data: try! JSONEncoder().encode(scenario), encoding: .utf8)!
        return """
        {
          "scenario": \(name), "seed": 42, "topology": "minimal",
          "started_at": "2025-06-01T08:00:00Z", "duration_s": 6.0, "passed": \(passed),
          "settlements": {
            "scheduled": 1200, "attempted": 1190, "succeeded": 1150, "failed": 40, "dropped": 10,
            "unanswered": 3, "error_rate": 0.0336, "throughput_per_s": 191.7, "target_rate_per_s": 200.0,
            "latency_ms": {"p50": 1.234, "p90": 2.5, "p99": 8.75, "p999": 15.1, "max": 22.0, "mean": 1.6},
            "by_route": {
              "cross_province": {"attempted": 200, "succeeded": 190, "failed": 10, "throughput_per_s": 31.7,
                "latency_ms": {"p50": 3.1, "p90": 5.0, "p99": 12.4, "p999": 20.0, "max": 22.0, "mean": 3.5}},
              "local": {"attempted": 600, "succeeded": 590, "failed": 10, "throughput_per_s": 98.3,
                "latency_ms": {"p50": 0.8, "p90": 1.2, "p99": 3.0, "p999": 6.0, "max": 7.0, "mean": 0.9}},
              "intra_city": {"attempted": 390, "succeeded": 370, "failed": 20, "throughput_per_s": 61.7,
                "latency_ms": {"p50": 1.5, "p90": 2.6, "p99": 7.9, "p999": 11.0, "max": 13.0, "mean": 1.7}}
            },
            "identity_violations": 0, "reversed": 2, "resolved_settled": 1, "resolved_refused": 0, "unresolved": 0
          },
          "reversals": {"attempted": 12, "succeeded": 11, "failed": 1},
          "errors": {"by_code": \(byCode ?? #"{"SN-E2001": 25, "no_answer": 3, "SN-E3002": 12}"#), "definite": 25, "indefinite": 15,
                     "response_latency_ms": {"p50": 3, "p90": 8, "p99": 20, "p999": 30, "max": 31, "mean": 5}},
          "timeline": [
            {"second": 0, "target_rate": 100, "achieved_rate": 96, "succeeded": 95, "errors": 1, "dropped": 0,
             "in_flight": 4, "latency_p50_ms": 1.1, "latency_p99_ms": 4.0, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0},
            {"second": 1, "target_rate": 100, "achieved_rate": 101, "succeeded": 100, "errors": 1, "dropped": 0,
             "in_flight": 3, "latency_p50_ms": 1.0, "latency_p99_ms": 3.8, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0},
            {"second": 2, "target_rate": 100, "achieved_rate": 99, "succeeded": 97, "errors": 2, "dropped": 0,
             "in_flight": 5, "latency_p50_ms": 1.2, "latency_p99_ms": 4.4, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0},
            {"second": 3, "target_rate": 400, "achieved_rate": 310, "succeeded": 290, "errors": 20, "dropped": 6,
             "in_flight": 64, "latency_p50_ms": 2.9, "latency_p99_ms": 14.2, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0},
            {"second": 4, "target_rate": 400, "achieved_rate": 360, "succeeded": 345, "errors": 15, "dropped": 4,
             "in_flight": 64, "latency_p50_ms": 3.4, "latency_p99_ms": 18.9, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0},
            {"second": 5, "target_rate": 100, "achieved_rate": 224, "succeeded": 223, "errors": 1, "dropped": 0,
             "in_flight": 2, "latency_p50_ms": 1.3, "latency_p99_ms": 6.1, "error_latency_p99_ms": 0, "records_answered": 0, "records_rejected": 0, "dirty_rate_pct": 0}
          ],
          "stages": [{"index": 0, "start_s": 0, "label": "steady 100/s"}, {"index": 1, "start_s": 3, "label": "spike 400/s"}],
          "faults": [],
          "thresholds": [
            {"path": "settlements.error_rate", "condition": "< 0.05", "value": 0.0336, "passed": true},
            {"path": "settlements.latency_ms.p99", "condition": "< 5", "value": 8.75, "passed": false}
          ],
          "machine": {"cores": 8, "build": "release"}
        }
        """
    }

    static func make(scenario: String = "steady-then-spike", passed: Bool = false, byCode: String? = nil) throws -> RunReport {
        try JSONDecoder().decode(RunReport.self, from: Data(json(scenario: scenario, passed: passed, byCode: byCode).utf8))
    }
}

@Suite struct ReportRenderingTests {
    /// The JSON inside `<script type="application/json" id="report-data">`, unescaped as a browser's
    /// JSON.parse would see it.
    func embeddedJSON(_ html: String) throws -> String {
        let open = #"<script type="application/json" id="report-data">"#
        let start = try #require(html.range(of: open))
        let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
        return String(html[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "<\\/", with: "</")
    }

    func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test func markdownHasVerdictRoutesAndThresholds() throws {
        let md = ReportRendering.markdown(try SampleReport.make())
        #expect(md.hasPrefix("# Scenario steady-then-spike — FAILED"))
        #expect(md.contains("| Error rate | 3.36% |"))
        #expect(md.contains("| Latency p50 | 1.23 ms |"))
        #expect(md.contains("| Throughput | 191.7/s |"))
        // Routes in network order, only those present.
        let local = try #require(md.range(of: "| local | 600 | 590 | 10 | 98.3 | 0.80 |"))
        let city = try #require(md.range(of: "| intra_city | 390 |"))
        let cross = try #require(md.range(of: "| cross_province | 200 |"))
        #expect(local.lowerBound < city.lowerBound && city.lowerBound < cross.lowerBound)
        #expect(!md.contains("intra_province"))
        // Errors most frequent first.
        let e1 = try #require(md.range(of: "| SN-E2001 | 25 |"))
        let e2 = try #require(md.range(of: "| SN-E3002 | 12 |"))
        let e3 = try #require(md.range(of: "| no_answer | 3 |"))
        #expect(e1.lowerBound < e2.lowerBound && e2.lowerBound < e3.lowerBound)
        #expect(md.contains("| settlements.error_rate | < 0.05 | 0.0336 | ✓ |"))
        #expect(md.contains("| settlements.latency_ms.p99 | < 5 | 8.75 | ✗ |"))
        #expect(md.contains("**Identity violations:** 0"))
        #expect(ReportRendering.markdown(try SampleReport.make(passed: true)).hasPrefix("# Scenario steady-then-spike — PASSED"))
    }

    @Test func summaryTableShowsFiguresAndThresholdVerdicts() throws {
        let text = ReportRendering.summaryTable(try SampleReport.make())
        #expect(text.hasPrefix("Scenario steady-then-spike: FAILED"))
        #expect(text.contains("3.36%"))
        #expect(text.contains("1,200"))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("PASS") && $0.contains("settlements.error_rate") })
        #expect(lines.contains { $0.hasPrefix("FAIL") && $0.contains("settlements.latency_ms.p99") && $0.hasSuffix("8.75") })
    }

    @Test func htmlEmbedsTheReportAndFourCharts() throws {
        let report = try SampleReport.make()
        let html = ReportRendering.html(report)
        let decoded = try JSONDecoder().decode(RunReport.self, from: Data(try embeddedJSON(html).utf8))
        #expect(decoded.scenario == report.scenario)
        #expect(decoded.timeline.count == 6)
        #expect(decoded.stages.map(\.label) == ["steady 100/s", "spike 400/s"])
        #expect(decoded.errors.byCode == report.errors.byCode)
        #expect(decoded.thresholds.map(\.passed) == [true, false])
        #expect(occurrences(of: #"<svg class="chart""#, in: html) == 5)
        #expect(html.contains(#"<table class="thresholds">"#))
        #expect(html.contains("document.body.dataset.rendered = \"true\""))
        // Self-contained: nothing loaded from elsewhere.
        #expect(!html.contains("<script src"))
        #expect(!html.contains("<link"))
        let withoutSVGNamespace = html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
        #expect(!withoutSVGNamespace.contains("http://") && !withoutSVGNamespace.contains("https://"))
        if let path = ProcessInfo.processInfo.environment["SETTLENET_WRITE_SAMPLE_HTML"], !path.isEmpty {
            try html.write(toFile: path, atomically: true, encoding: .utf8)
            let noErrors = (path as NSString).deletingPathExtension + "-no-errors.html"
            try ReportRendering.html(try SampleReport.make(passed: true, byCode: "{}")).write(toFile: noErrors, atomically: true, encoding: .utf8)
        }
    }

    /// `--baseline`: the earlier run embedded for the charts, its figures compared in a table
    /// that marks a regression; a baseline that is no report is refused before any run.
    @Test func aBaselineIsEmbeddedAndComparedFigureByFigure() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("baseline-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The baseline was faster: this run's p99 (8.75 ms) is a regression against 5 ms.
        let oldText = SampleReport.json(scenario: "old </script> run", passed: true)
            .replacingOccurrences(of: #""p99": 8.75"#, with: #""p99": 5.0"#)
        try oldText.write(toFile: "\(directory)/old.json", atomically: true, encoding: .utf8)
        let baseline = try Baseline.load("\(directory)/old.json")
        let html = ReportRendering.html(try SampleReport.make(), baseline: baseline)

        let open = #"<script type="application/json" id="baseline-data">"#
        let start = try #require(html.range(of: open))
        let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
        let embedded = String(html[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "<\\/", with: "</")
        #expect(try JSONDecoder().decode(RunReport.self, from: Data(embedded.utf8)).scenario == "old </script> run",
                "embedded whole, and no string in it closes the element")
        let table = try #require(html.range(of: #"<table class="baseline">"#))
        let tableEnd = try #require(html.range(of: "</table>", range: table.upperBound..<html.endIndex))
        let tableText = String(html[table.lowerBound..<tableEnd.lowerBound])
        let p99Row = try #require(tableText.components(separatedBy: "<tr").first { $0.contains("settlements.latency_ms.p99</code>") })
        #expect(p99Row.contains(">5<") && p99Row.contains(">8.75<") && p99Row.contains("+75.0%") && p99Row.contains("REGRESSION"), "\(p99Row)")
        let throughputRow = try #require(tableText.components(separatedBy: "<tr").first { $0.contains("throughput_per_s</code>") })
        #expect(!throughputRow.contains("REGRESSION"))
        #expect(html.contains("series baseline"), "the charts draw it")

        // Refused with the file named: missing, not JSON, JSON that is no report.
        try "not json".write(toFile: "\(directory)/text.json", atomically: true, encoding: .utf8)
        try #"{"scenario": "x"}"#.write(toFile: "\(directory)/other.json", atomically: true, encoding: .utf8)
        for (name, why) in [("missing.json", "no such file"), ("text.json", "not JSON"), ("other.json", "not a SettleNet report.json")] {
            do {
                _ = try Baseline.load("\(directory)/\(name)")
                Issue.record("accepted \(name)")
            } catch {
                #expect(error.code == .invalidScenario && error.message.contains(name) && error.message.contains(why), "\(error.message)")
            }
        }
    }

    /// The network's figures: two more charts (time per hop, the drawing) and the table of hops.
    @Test func theNetworkAddsItsChartsAndTheTableOfHops() throws {
        let network = """
            "network": {"legs": [{"pair": "county→city", "hops": 40, "latency_ms": {"p50": 1.5, "p90": 2, "p99": 3.25, "p999": 4, "max": 4, "mean": 1.6}}],
                        "sampled_one_in": 1, "summarised_by_province": false, "routes": {"intra_city": ["370211", "370200", "370202"]},
                        "nodes": [{"id": "370200", "tier": "city", "name": "青岛市", "settlements": 40, "errors": 1, "nodes": 1},
                                  {"id": "370211", "tier": "county", "parent": "370200", "name": "黄岛区", "settlements": 40, "errors": 0, "nodes": 1}]},
            "machine":
            """
        let text = SampleReport.json().replacingOccurrences(of: #""machine":"#, with: network)
        let report = try JSONDecoder().decode(RunReport.self, from: Data(text.utf8))
        #expect(report.network?.legs.first?.latencyMs.p99 == 3.25)
        let html = ReportRendering.html(report)
        #expect(occurrences(of: #"<svg class="chart""#, in: html) == 7)
        #expect(html.contains(#"data-chart="legs""#) && html.contains(#"data-chart="network""#))
        #expect(html.contains(#"<table class="legs">"#) && html.contains("<td>county→city</td>"))
        let markdown = ReportRendering.markdown(report)
        #expect(markdown.contains("## Time per hop by pair of tiers") && markdown.contains("| county→city |"))
        // Without it, as before.
        #expect(occurrences(of: #"<svg class="chart""#, in: ReportRendering.html(try SampleReport.make())) == 5)
    }

    @Test func hostileScenarioNameCannotBreakOut() throws {
        let hostile = "</script><script>alert(1)</script><!--<script>"
        let report = try SampleReport.make(scenario: hostile)
        let html = ReportRendering.html(report)
        #expect(!html.contains("</script><script>alert"))
        // Inside the JSON an opening `<script>` is inert text: only `</` or `<!--` could end or
        // derail the element, and both are escaped.
        #expect(occurrences(of: "<script>alert", in: html) == 1)
        #expect(!html.contains("<!--<script"))
        // The page has exactly the two script elements it means to have.
        #expect(occurrences(of: "</script>", in: html) == 2)
        #expect(html.contains("<h1>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"))
        let decoded = try JSONDecoder().decode(RunReport.self, from: Data(try embeddedJSON(html).utf8))
        #expect(decoded.scenario == hostile)
    }

    @Test func escapeHTMLEscapesMarkupAndQuotes() {
        #expect(ReportRendering.escapeHTML(#"<a href="x" title='y'>&</a>"#)
            == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;")
        #expect(ReportRendering.escapeHTML("深圳 local") == "深圳 local")
    }

    @Test func reportWithoutErrorsOrRoutesStillRenders() throws {
        var report = try SampleReport.make(passed: true, byCode: "{}")
        report.settlements.byRoute = [:]
        report.thresholds = []
        let md = ReportRendering.markdown(report)
        #expect(md.contains("No errors."))
        #expect(md.contains("No thresholds."))
        #expect(!md.contains("| local |"))
        let html = ReportRendering.html(report)
        #expect(occurrences(of: #"<svg class="chart""#, in: html) == 5)
        #expect(html.contains("\"no errors\""))
    }

    @Test func nonFiniteFiguresDoNotBreakTheRendering() throws {
        var report = try SampleReport.make()
        report.settlements.errorRate = .nan
        report.settlements.latencyMs.max = .infinity
        #expect(ReportRendering.markdown(report).contains("| Error rate | n/a |"))
        let html = ReportRendering.html(report)
        #expect(try embeddedJSON(html).contains(#""error_rate":"NaN""#))
    }
}
