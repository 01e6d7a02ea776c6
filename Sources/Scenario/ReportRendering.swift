import Foundation
import SettlementModel

/// Renders a `RunReport` for people: report.md (`markdown`), the terminal summary printed at the
/// end of a run (`summaryTable`) and report.html (`html`), one self-contained page whose charts
/// an inline script draws as SVG from the report's JSON embedded in the page.
public enum ReportRendering {
    /// Route keys of `SettlementFigures.byRoute`, nearest first; any other key follows, sorted.
    static let routeOrder = ["local", "intra_city", "intra_province", "cross_province"]

    // MARK: - Markdown

    public static func markdown(_ report: RunReport) -> String {
        let s = report.settlements
        var md: [String] = []
        md.append("# Scenario \(report.scenario) — \(verdict(report))")
        md.append("")
        md.append("- **Seed:** \(report.seed)\(report.planDigest.map { " (plan digest \($0))" } ?? "")")
        md.append("- **Topology:** \(report.topology)")
        md.append("- **Started:** \(report.startedAt)")
        md.append("- **Duration:** \(fixed(report.durationS, 1)) s")
        md.append("- **Machine:** \(machine(report.machine))")
        if let simulation = report.simulation {
            md.append("- **Simulated:** on virtual time (`settlenet sim`), \(fixed(simulation.virtualS, 1)) virtual s in \(fixed(simulation.wallS, 1)) s; model: "
                      + simulation.model.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value) µs" }.joined(separator: ", "))
        }
        md.append("")
        md.append("## Summary")
        md.append("")
        md.append(markdownTable(["Metric", "Value"], summaryRows(report), rightAligned: [1]))
        md.append("")
        md.append("## By route")
        md.append("")
        let routes = orderedRoutes(s.byRoute)
        if routes.isEmpty {
            md.append("No per-route figures.")
        } else {
            md.append(markdownTable(
                ["Route", "Attempted", "Succeeded", "Failed", "Throughput/s",
                 "p50 ms", "p90 ms", "p99 ms", "p999 ms", "max ms"],
                routes.map { name, r in
                    [name, grouped(r.attempted), grouped(r.succeeded), grouped(r.failed), fixed(r.throughputPerS, 1),
                     fixed(r.latencyMs.p50, 2), fixed(r.latencyMs.p90, 2), fixed(r.latencyMs.p99, 2),
                     fixed(r.latencyMs.p999, 2), fixed(r.latencyMs.max, 2)]
                },
                rightAligned: Set(1...9)))
        }
        md.append("")
        if let network = report.network, !network.legs.isEmpty {
            md.append("## Time per hop by pair of tiers")
            md.append("")
            if network.sampledOneIn > 1 { md.append("One settlement in \(network.sampledOneIn) timed."); md.append("") }
            md.append(markdownTable(["Hop", "Timed", "p50 ms", "p90 ms", "p99 ms", "max ms"], legRows(network), rightAligned: Set(1...5)))
            md.append("")
        }
        md.append("## Reversals")
        md.append("")
        md.append(markdownTable(
            ["Attempted", "Succeeded", "Failed"],
            [[grouped(report.reversals.attempted), grouped(report.reversals.succeeded), grouped(report.reversals.failed)]],
            rightAligned: [0, 1, 2]))
        md.append("")
        md.append("## Errors by code")
        md.append("")
        let errors = sortedErrors(report.errors)
        if errors.isEmpty {
            md.append("No errors.")
        } else {
            md.append(markdownTable(["Code", "Count"], errors.map { [$0.code, grouped($0.count)] }, rightAligned: [1]))
        }
        md.append("")
        md.append("## Thresholds")
        md.append("")
        if report.thresholds.isEmpty {
            md.append("No thresholds.")
        } else {
            md.append(markdownTable(
                ["Path", "Condition", "Value", "Passed"],
                report.thresholds.map { [$0.path, $0.condition, measured($0.value), $0.passed ? "✓" : "✗"] },
                rightAligned: [2]))
        }
        md.append("")
        md.append("**Identity violations:** \(grouped(s.identityViolations)) \(s.identityViolations == 0 ? "✓" : "✗")")
        md.append("")
        if let scale = report.scale {
            md.append("## Scale")
            md.append("")
            md.append(markdownTable(["Multiple", "Target /s", "Achieved /s", "p99 ms", "Error rate", "Dropped", "Held"],
                                    scaleRows(scale), rightAligned: Set(0...5)))
            md.append("")
            md.append(scaleVerdict(scale))
            md.append("")
        }
        if !report.faults.isEmpty {
            md.append("## Faults")
            md.append("")
            md.append(markdownTable(["Kind", "Target", "Asked at s", "Started s", "Ended s", "What it did"],
                                    report.faults.map(faultRow), rightAligned: [2, 3, 4]))
            md.append("")
        }
        if let uploads = report.uploads, let dirty = report.dirtyData {
            md.append("## Uploads and dirty data")
            md.append("")
            md.append(markdownTable(["Metric", "Value"], uploadRows(uploads, dirty), rightAligned: [1]))
            md.append("")
            md.append(markdownTable(["Tier", "Received", "Accepted", "Rejected", "Dirty rate", "Accounting"],
                                    tierRows(dirty), rightAligned: [1, 2, 3, 4]))
            md.append("")
            md.append(markdownTable(["Rule", "Tier", "Checks", "Injected", "Detected"], ruleRows(dirty, withChecks: true),
                                    rightAligned: [3, 4]))
            md.append("")
        }
        return md.joined(separator: "\n")
    }

    // MARK: - Terminal

    public static func summaryTable(_ report: RunReport) -> String {
        let s = report.settlements
        var out: [String] = []
        out.append("Scenario \(report.scenario): \(verdict(report))")
        out.append("seed \(report.seed) · topology \(report.topology) · started \(report.startedAt) · "
            + "\(fixed(report.durationS, 1)) s · \(machine(report.machine))")
        out.append("")
        var rows = summaryRows(report)
        rows.append(["Reversals ok/attempted", "\(grouped(report.reversals.succeeded))/\(grouped(report.reversals.attempted))"])
        rows.append(["Identity violations", grouped(s.identityViolations)])
        out.append(textTable(["metric", "value"], rows, rightAligned: [1]))
        let routes = orderedRoutes(s.byRoute)
        if !routes.isEmpty {
            out.append("")
            out.append(textTable(
                ["route", "attempted", "succeeded", "failed", "per s", "p50 ms", "p99 ms", "max ms"],
                routeCells(routes),
                rightAligned: Set(1...7)))
        }
        let errors = sortedErrors(report.errors)
        if !errors.isEmpty {
            out.append("")
            out.append(textTable(["error", "count"], errors.map { [$0.code, grouped($0.count)] }, rightAligned: [1]))
        }
        if let uploads = report.uploads, let dirty = report.dirtyData {
            out.append("")
            out.append(textTable(["uploads", "value"], uploadRows(uploads, dirty), rightAligned: [1]))
            out.append("")
            out.append(textTable(["tier", "received", "accepted", "rejected", "dirty rate", "accounting"], tierRows(dirty),
                                 rightAligned: [1, 2, 3, 4]))
            out.append("")
            out.append(textTable(["rule", "tier", "injected", "detected"], ruleRows(dirty, withChecks: false), rightAligned: [2, 3]))
        }
        if let scale = report.scale {
            out.append("")
            out.append(textTable(["multiple", "target /s", "achieved /s", "p99 ms", "error rate", "dropped", "held"],
                                 scaleRows(scale), rightAligned: Set(0...5)))
            out.append(scaleVerdict(scale))
        }
        if !report.thresholds.isEmpty {
            out.append("")
            out.append(textTable(
                ["", "threshold", "condition", "value"],
                report.thresholds.map { [$0.passed ? "PASS" : "FAIL", $0.path, $0.condition, measured($0.value)] },
                rightAligned: [3]))
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func scaleRows(_ scale: ScaleFigures) -> [[String]] {
        scale.steps.map { ["×\(fixed($0.multiple, 2))", fixed($0.targetRatePerS, 0), fixed($0.achievedRatePerS, 1), fixed($0.p99Ms, 1),
                           fixed($0.errorRate * 100, 2) + " %", grouped($0.dropped), $0.held ? "yes" : "no"] }
    }

    static func scaleVerdict(_ scale: ScaleFigures) -> String {
        "Held ×\(fixed(scale.heldMultiple, 2)) the baseline of \(fixed(scale.baselineRatePerS, 0))/s (\(fixed(scale.heldRatePerS, 0)) settlements/s) "
            + "with p99 ≤ \(fixed(scale.limitP99Ms, 0)) ms, errors ≤ \(fixed(scale.limitErrorRate * 100, 2)) %, nothing dropped."
    }

    // MARK: - HTML

    /// `baseline`: an earlier run, drawn dashed in every chart it has data for and compared
    /// figure by figure in a table (`--baseline`).
    public static func html(_ report: RunReport, baseline: Baseline? = nil) -> String {
        let s = report.settlements
        let title = "SettleNet · \(report.scenario) · \(verdict(report))"
        var h: [String] = []
        h.append("<!DOCTYPE html>")
        h.append("<html lang=\"en\">")
        h.append("<head>")
        h.append("<meta charset=\"utf-8\">")
        h.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        h.append("<title>\(escapeHTML(title))</title>")
        h.append("<style>\(css)</style>")
        h.append("</head>")
        h.append("<body>")
        h.append("<header>")
        h.append("<h1>\(escapeHTML(report.scenario)) <span class=\"verdict \(report.passed ? "pass" : "fail")\">"
            + "\(verdict(report))</span></h1>")
        h.append("<p class=\"meta\">seed \(report.seed) · topology \(escapeHTML(report.topology)) · started "
            + "\(escapeHTML(report.startedAt)) · \(fixed(report.durationS, 1)) s · \(escapeHTML(machine(report.machine)))</p>")
        if let simulation = report.simulation {
            h.append("<p class=\"meta\">simulated on virtual time (settlenet sim): \(fixed(simulation.virtualS, 1)) virtual s in "
                + "\(fixed(simulation.wallS, 1)) s; model "
                + escapeHTML(simulation.model.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value) µs" }.joined(separator: ", ")) + "</p>")
        }
        if let baseline {
            h.append("<p class=\"meta baseline-note\">against the baseline \(escapeHTML(baseline.path)): drawn dashed in the charts, "
                + "compared in the table below</p>")
        }
        h.append("</header>")
        h.append("<noscript><p class=\"warn\">Charts need JavaScript; the tables below do not.</p></noscript>")
        h.append("<section class=\"charts\">")
        var charts = [("rate", "timeseries", "Rate over time"),
                      ("latency", "timeseries", "Latency percentiles over time"),
                      ("errors", "bars", "Errors by code"),
                      ("routes", "bars", "Latency by route"),
                      ("tickets", "timeseries", "Error tickets open over time")]
        if report.network != nil {
            charts += [("legs", "bars", "Time per hop by pair of tiers"), ("network", "network", "The network: load, errors and route paths")]
        }
        if report.dirtyData != nil {
            charts += [("dirty-trend", "timeseries", "Dirty rate over time"),
                       ("dirty-tiers", "bars", "Dirty rate by tier"), ("dirty-rules", "bars", "Dirty data by rule")]
        }
        for (id, kind, label) in charts {
            h.append("<figure><svg class=\"chart\" id=\"chart-\(id)\" data-chart=\"\(id)\" data-kind=\"\(kind)\" "
                + "viewBox=\"0 0 640 300\" role=\"img\" aria-label=\"\(label)\"></svg></figure>")
        }
        h.append("</section>")
        h.append("<section class=\"tables\">")
        if let baseline {
            let comparison = baseline.comparison(with: report)
            h.append("<div class=\"wide\"><h2>Against the baseline</h2>")
            h.append("<p class=\"meta\">\(escapeHTML(baseline.path)) → this run; a change for the worse beyond "
                + "\(fixed(comparison.maxRegression * 100, 0)) % is marked REGRESSION (scenario compare --max-regression sets another limit)</p>")
            h.append("<table class=\"baseline\"><thead><tr><th>Figure</th><th class=\"num\">Baseline</th><th class=\"num\">This run</th>"
                + "<th class=\"num\">Change</th><th></th></tr></thead><tbody>")
            for row in comparison.textRows {
                h.append("<tr class=\"\(row[4].isEmpty ? "same" : "fail")\"><td><code>\(escapeHTML(row[0]))</code></td>"
                    + row[1...3].map { "<td class=\"num\">\(escapeHTML($0))</td>" }.joined() + "<td>\(escapeHTML(row[4]))</td></tr>")
            }
            h.append("</tbody></table></div>")
        }
        h.append("<div><h2>Summary</h2>")
        h.append(htmlTable(["Metric", "Value"], summaryRows(report), rightAligned: [1], cssClass: "summary"))
        h.append("</div>")
        h.append("<div><h2>Thresholds</h2>")
        if report.thresholds.isEmpty {
            h.append("<p>No thresholds.</p>")
        } else {
            h.append("<table class=\"thresholds\"><thead><tr><th>Path</th><th>Condition</th><th class=\"num\">Value</th>"
                + "<th>Passed</th></tr></thead><tbody>")
            for t in report.thresholds {
                h.append("<tr class=\"\(t.passed ? "pass" : "fail")\"><td><code>\(escapeHTML(t.path))</code></td>"
                    + "<td><code>\(escapeHTML(t.condition))</code></td><td class=\"num\">\(escapeHTML(measured(t.value)))</td>"
                    + "<td>\(t.passed ? "✓ pass" : "✗ fail")</td></tr>")
            }
            h.append("</tbody></table>")
        }
        h.append("<p class=\"\(s.identityViolations == 0 ? "pass" : "fail")\">Identity violations: "
            + "\(grouped(s.identityViolations))</p>")
        h.append("</div>")
        let routes = orderedRoutes(s.byRoute)
        if !routes.isEmpty {
            h.append("<div class=\"wide\"><h2>By route</h2>")
            h.append(htmlTable(
                ["Route", "Attempted", "Succeeded", "Failed", "Per s", "p50 ms", "p99 ms", "max ms"],
                routeCells(routes),
                rightAligned: Set(1...7), cssClass: "routes"))
            h.append("</div>")
        }
        if let network = report.network, !network.legs.isEmpty {
            h.append("<div class=\"wide\"><h2>Time per hop by pair of tiers</h2>")
            h.append(htmlTable(["Hop", "Timed", "p50 ms", "p90 ms", "p99 ms", "max ms"], legRows(network),
                               rightAligned: Set(1...5), cssClass: "legs"))
            h.append("</div>")
        }
        if let uploads = report.uploads, let dirty = report.dirtyData {
            h.append("<div><h2>Uploads and dirty data</h2>")
            h.append(htmlTable(["Metric", "Value"], uploadRows(uploads, dirty), rightAligned: [1], cssClass: "uploads"))
            h.append("</div>")
            h.append("<div class=\"wide\"><h2>Dirty data by tier and rule</h2>")
            h.append(htmlTable(["Tier", "Received", "Accepted", "Rejected", "Dirty rate", "Accounting"], tierRows(dirty),
                               rightAligned: [1, 2, 3, 4], cssClass: "tiers"))
            h.append(htmlTable(["Rule", "Tier", "Checks", "Injected", "Detected"], ruleRows(dirty, withChecks: true),
                               rightAligned: [3, 4], cssClass: "rules"))
            h.append("</div>")
        }
        h.append("<div><h2>Reversals</h2>")
        h.append(htmlTable(
            ["Attempted", "Succeeded", "Failed"],
            [[grouped(report.reversals.attempted), grouped(report.reversals.succeeded), grouped(report.reversals.failed)]],
            rightAligned: [0, 1, 2], cssClass: "reversals"))
        h.append("</div>")
        h.append("</section>")
        h.append("<script type=\"application/json\" id=\"report-data\">\(embeddedJSON(report))</script>")
        if let baseline {
            h.append("<script type=\"application/json\" id=\"baseline-data\">\(scriptSafe(baseline.json))</script>")
        }
        h.append("<script>\(script)</script>")
        h.append("</body>")
        h.append("</html>")
        return h.joined(separator: "\n") + "\n"
    }

    /// Escapes text for HTML element content and quoted attribute values.
    public static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// The report as JSON safe inside a `<script>` element: `</` becomes `<\/` (so no string in
    /// the report can close the element) and `<!--` becomes `<\u0021--` (so none can switch the
    /// HTML parser into the script's escaped states); both are plain JSON escapes, which
    /// `JSON.parse` and `JSONDecoder` read back unchanged. A non-finite number (which JSON
    /// cannot hold) is written as the string "NaN", "Infinity" or "-Infinity"; the page's script
    /// treats it as 0.
    static func embeddedJSON(_ report: RunReport) -> String {
        let encoder = JSONEncoder.settlenet(pretty: false)
        var data = try? encoder.encode(report)
        if data == nil {
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
            data = try? encoder.encode(report)
        }
        return scriptSafe(data.flatMap { String(data: $0, encoding: .utf8) } ?? "{}")
    }

    /// JSON text made safe inside a `<script>` element (see `embeddedJSON`).
    static func scriptSafe(_ json: String) -> String {
        json.replacingOccurrences(of: "</", with: "<\\/").replacingOccurrences(of: "<!--", with: "<\\u0021--")
    }

    // MARK: - Shared pieces

    static func verdict(_ report: RunReport) -> String { report.passed ? "PASSED" : "FAILED" }

    /// One row per route, in the text and the HTML report alike.
    static func legRows(_ network: NetworkFigures) -> [[String]] {
        network.legs.map { [$0.pair, grouped($0.hops), fixed($0.latencyMs.p50, 2), fixed($0.latencyMs.p90, 2),
                            fixed($0.latencyMs.p99, 2), fixed($0.latencyMs.max, 2)] }
    }

    static func routeCells(_ routes: [(String, RouteFigures)]) -> [[String]] {
        routes.map { name, r in
            [name, grouped(r.attempted), grouped(r.succeeded), grouped(r.failed), fixed(r.throughputPerS, 1),
             fixed(r.latencyMs.p50, 2), fixed(r.latencyMs.p99, 2), fixed(r.latencyMs.max, 2)]
        }
    }

    static func machine(_ m: MachineInfo) -> String { "\(m.cores) cores, \(m.build) build" }

    static func summaryRows(_ report: RunReport) -> [[String]] {
        let s = report.settlements
        let l = s.latencyMs
        return [
            ["Scheduled", grouped(s.scheduled)],
            ["Attempted", grouped(s.attempted)],
            ["Succeeded", grouped(s.succeeded)],
            ["Failed", grouped(s.failed)],
            ["Dropped", grouped(s.dropped)],
            ["Unanswered", grouped(s.unanswered)],
            ["Error rate", percent(s.errorRate)],
            ["Throughput", "\(fixed(s.throughputPerS, 1))/s"],
            ["Target rate", "\(fixed(s.targetRatePerS, 1))/s"],
            ["Latency p50", "\(fixed(l.p50, 2)) ms"],
            ["Latency p90", "\(fixed(l.p90, 2)) ms"],
            ["Latency p99", "\(fixed(l.p99, 2)) ms"],
            ["Latency p999", "\(fixed(l.p999, 2)) ms"],
            ["Latency max", "\(fixed(l.max, 2)) ms"],
            ["Errors definite / indefinite", "\(grouped(report.errors.definite)) / \(grouped(report.errors.indefinite))"],
            ["Error answer p50 / p99", "\(fixed(report.errors.responseLatencyMs.p50, 2)) / \(fixed(report.errors.responseLatencyMs.p99, 2)) ms"],
            ["In doubt, then reversed", grouped(s.reversed)],
            ["In doubt, then settled / refused", "\(grouped(s.resolvedSettled)) / \(grouped(s.resolvedRefused))"],
            ["Unresolved at end", grouped(s.unresolved)],
        ] + (report.tickets.map { t in
            [["Tickets opened / acknowledged / closed", "\(grouped(t.opened)) / \(grouped(t.acknowledged)) / \(grouped(t.closed))"],
             ["Tickets open at end", grouped(t.openAtEnd)],
             ["Ticket time to close p50 / p99", "\(fixed(t.timeToCloseMs.p50, 0)) / \(fixed(t.timeToCloseMs.p99, 0)) ms"]]
        } ?? []) + (report.dirtyData?.governance.map { g in
            [["Dirty rate, first / last quarter", "\(fixed(g.dirtyRateFirstQuarterPct, 2)) % / \(fixed(g.dirtyRateLastQuarterPct, 2)) %"],
             ["Causes fixed (fix probability \(fixed(g.fixProbability, 2)))", grouped(g.causesFixed)],
             ["Corrections re-uploaded / accepted / rejected",
              "\(grouped(g.correctionsSent)) / \(grouped(g.correctionsAccepted)) / \(grouped(g.correctionsRejected))"]]
        } ?? [])
    }

    static func uploadRows(_ u: UploadFigures, _ d: DirtyDataFigures) -> [[String]] {
        [["Batches sent", grouped(u.batches)], ["Batches dropped", grouped(u.batchesDropped)],
         ["Batches failed", grouped(u.batchesFailed)], ["Batches unanswered", grouped(u.batchesUnanswered)],
         ["Records sent", grouped(u.recordsSent)], ["Accepted (provincial)", grouped(u.acceptedProvincial)],
         ["Accepted (national)", grouped(u.acceptedNational)], ["Records/s", fixed(u.throughputRecordsPerS, 1)],
         ["Batch latency p50", "\(fixed(u.batchLatencyMs.p50, 2)) ms"], ["Batch latency p99", "\(fixed(u.batchLatencyMs.p99, 2)) ms"],
         ["Injected dirty", "\(grouped(d.injected)) (\(percent(d.injectedRate)))"],
         ["Detected", "\(grouped(d.detected)) (\(percent(d.detectedRate)))"],
         ["Leaked to national", "\(grouped(d.leaked)) (\(percent(d.leakRate)))"],
         ["False rejects", "\(grouped(d.falseRejects)) (\(percent(d.falseRejectRate)))"],
         ["Accounting exact", d.accountingExact ? "yes" : "NO"]]
    }

    static func tierRows(_ d: DirtyDataFigures) -> [[String]] {
        ["county", "city", "provincial", "national"].compactMap { tier in
            d.byTier[tier].map { [tier, grouped($0.received), grouped($0.accepted), grouped($0.rejected), percent($0.rate),
                                  $0.accountingExact ? "exact" : "BROKEN"] }
        }
    }

    static func ruleRows(_ d: DirtyDataFigures, withChecks: Bool) -> [[String]] {
        d.byRule.keys.sorted().map { id in
            let r = d.byRule[id]!
            return withChecks ? [id, r.tier, r.checks, grouped(r.injected), grouped(r.detected)]
                              : [id, r.tier, grouped(r.injected), grouped(r.detected)]
        }
    }

    static func orderedRoutes(_ byRoute: [String: RouteFigures]) -> [(String, RouteFigures)] {
        let known = routeOrder.filter { byRoute[$0] != nil }
        let others = byRoute.keys.filter { !routeOrder.contains($0) }.sorted()
        return (known + others).map { ($0, byRoute[$0]!) }
    }

    /// Most frequent first; ties by code, so the order is stable.
    static func sortedErrors(_ errors: ErrorFigures) -> [(code: String, count: Int)] {
        errors.byCode.map { (code: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.code < $1.code }
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "n/a" }
        let text = String(format: "%.\(digits)f", value)
        // No "-0.00" for a value that rounds to zero.
        return text.hasPrefix("-") && text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) ? String(text.dropFirst()) : text
    }

    /// A fraction (0.0123) as a percentage ("1.23%").
    static func percent(_ fraction: Double) -> String {
        fraction.isFinite ? fixed(fraction * 100, 2) + "%" : "n/a"
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// A threshold's measured value, whose unit the path decides: counts as integers, small
    /// fractions (rates) with four significant digits, the rest with two decimals.
    static func measured(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        guard value.isFinite else { return "n/a" }
        if value == value.rounded() && abs(value) < 1e15 { return grouped(Int(value)) }
        if abs(value) < 1 { return String(format: "%.4g", value) }
        return fixed(value, 2)
    }

    static func faultRow(_ fault: FaultRecord) -> [String] {
        var did: [String] = []
        if let e = fault.effects {
            did.append("\(grouped(e.messages)) messages: \(grouped(e.dropped)) lost, \(grouped(e.duplicated)) doubled, \(grouped(e.corrupted)) corrupted, \(grouped(e.delayed)) delayed")
        }
        if !fault.note.isEmpty { did.append(fault.note) }
        return [fault.kind, fault.node, fixed(fault.atS, 1), fault.startedS.map { fixed($0, 2) } ?? "–",
                fault.endedS.map { fixed($0, 2) } ?? "–", did.joined(separator: "; ")]
    }

    static func markdownTable(_ headers: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        func cell(_ text: String) -> String {
            text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
        }
        var lines = ["| " + headers.map(cell).joined(separator: " | ") + " |"]
        lines.append("|" + headers.indices.map { rightAligned.contains($0) ? "---:" : "---" }.joined(separator: "|") + "|")
        for row in rows { lines.append("| " + row.map(cell).joined(separator: " | ") + " |") }
        return lines.joined(separator: "\n")
    }

    /// Columns padded to their widest cell, two spaces apart, a dashed rule under the headers.
    static func textTable(_ headers: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        let all = [headers] + rows
        let widths = headers.indices.map { col in all.map { $0.indices.contains(col) ? $0[col].count : 0 }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            headers.indices.map { col -> String in
                let text = cells.indices.contains(col) ? cells[col] : ""
                let pad = String(repeating: " ", count: widths[col] - text.count)
                return rightAligned.contains(col) ? pad + text : text + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }

    static func htmlTable(_ headers: [String], _ rows: [[String]], rightAligned: Set<Int>, cssClass: String) -> String {
        func cells(_ row: [String], _ tag: String) -> String {
            row.enumerated().map { i, text in
                "<\(tag)\(rightAligned.contains(i) ? " class=\"num\"" : "")>\(escapeHTML(text))</\(tag)>"
            }.joined()
        }
        return "<table class=\"\(cssClass)\"><thead><tr>\(cells(headers, "th"))</tr></thead><tbody>"
            + rows.map { "<tr>\(cells($0, "td"))</tr>" }.joined() + "</tbody></table>"
    }

    // MARK: - Page assets

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2937;background:#fff}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 8px}
        .meta{color:#6b7280;margin:0 0 16px}.warn{color:#b45309}
        .verdict{font-size:14px;padding:2px 8px;border-radius:4px;vertical-align:middle;color:#fff}
        .verdict.pass{background:#16a34a}.verdict.fail{background:#dc2626}
        .charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
        figure{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:8px}
        svg.chart{width:100%;height:auto;display:block}
        .fault{fill:#d62728;fill-opacity:.10;stroke:none}
        .fault-label{font-size:9px;fill:#b22}
        svg .title{font-size:14px;font-weight:600;fill:#111827}
        svg .tick,svg .legend,svg .axis-label{font-size:11px;fill:#4b5563}
        svg .grid{stroke:#e5e7eb}svg .axis{stroke:#9ca3af}
        svg .series{fill:none;stroke-width:2}svg .series.baseline{stroke-dasharray:6 4;stroke-width:1.5;opacity:.75}
        .baseline-note{color:#374151}table.baseline tr.fail td{color:#b91c1c}
        svg .stage{stroke:#6b7280;stroke-dasharray:5 4}svg .stage-label{font-size:11px;fill:#374151}
        svg .bar-value{font-size:10px;fill:#374151}svg .empty{font-size:14px;fill:#6b7280}
        .tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:8px 24px}
        .tables>div{min-width:0;overflow-x:auto}.tables>.wide{grid-column:1/-1}
        table{border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{border-bottom:1px solid #e5e7eb;padding:3px 10px;text-align:left}
        th{background:#f9fafb;white-space:nowrap}.num{text-align:right}
        tr.fail td,p.fail{color:#b91c1c}tr.pass td:last-child,p.pass{color:#15803d}
        """

    /// Draws the charts from #report-data; sets data-points on each and, last,
    /// body[data-rendered="true"] (Scripts/check-html-report.sh checks both in a real browser).
    static let script = #"""
        (function () {
          "use strict";
          var NS = "http://www.w3.org/2000/svg";
          var W = 640, H = 300, L = 60, R = 20, T = 50, B = 42; // viewBox size and plot margins
          var COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
          var ROUTES = ["local", "intra_city", "intra_province", "cross_province"];
          var report = JSON.parse(document.getElementById("report-data").textContent);
          var baselineElement = document.getElementById("baseline-data");
          var baseline = baselineElement ? JSON.parse(baselineElement.textContent) : null;

          function num(v) { var n = Number(v); return isFinite(n) ? n : 0; }
          function el(parent, name, attrs, text) {
            var node = document.createElementNS(NS, name);
            Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
            if (text !== undefined) node.textContent = text;
            parent.appendChild(node);
            return node;
          }
          // A round step giving at most `count` intervals over [0, span].
          function step(span, count) {
            var raw = (span > 0 ? span : 1) / count, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
            return p * (f > 5 ? 10 : f > 2 ? 5 : f > 1 ? 2 : 1);
          }
          function label(v, st) { return v.toFixed(Math.max(0, -Math.floor(Math.log10(st)))); }
          function maxOf(values) { return values.reduce(function (m, v) { return Math.max(m, v); }, 0); }

          function frame(svg, title, xLabel, yLabel) {
            while (svg.firstChild) svg.removeChild(svg.firstChild);
            el(svg, "text", {x: W / 2, y: 18, "class": "title", "text-anchor": "middle"}, title);
            el(svg, "text", {"class": "axis-label", "text-anchor": "middle",
              transform: "translate(14," + (T + (H - T - B) / 2) + ") rotate(-90)"}, yLabel);
            if (xLabel) el(svg, "text", {"class": "axis-label", "text-anchor": "middle", x: L + (W - L - R) / 2, y: H - 4}, xLabel);
          }
          function legend(svg, names) {
            var x = L;
            names.forEach(function (name, i) {
              if (name.indexOf("dashed:") === 0) {
                el(svg, "line", {x1: x, x2: x + 12, y1: 32, y2: 32, stroke: "#4b5563", "stroke-width": 1.5, "stroke-dasharray": "4 3"});
              } else {
                el(svg, "rect", {x: x, y: 27, width: 10, height: 10, fill: COLORS[i]});
              }
              el(svg, "text", {x: x + 14, y: 36, "class": "legend"}, name);
              x += 30 + name.length * 6.5;
            });
          }
          // Draws the y axis with gridlines over [0, max plus headroom, rounded up]; returns value -> y.
          function yAxis(svg, max) {
            max *= 1.08; // room above the highest value for its label and the stage labels
            var st = step(max, 5), top = Math.max(1, Math.ceil(max / st)) * st;
            var y = function (v) { return H - B - (v / top) * (H - T - B); };
            for (var i = 0; i * st <= top + st / 1e6; i++) {
              el(svg, "line", {x1: L, x2: W - R, y1: y(i * st), y2: y(i * st), "class": i ? "grid" : "axis"});
              el(svg, "text", {x: L - 6, y: y(i * st) + 4, "text-anchor": "end", "class": "tick"}, label(i * st, st));
            }
            el(svg, "line", {x1: L, x2: L, y1: T, y2: H - B, "class": "axis"});
            return y;
          }
          function empty(svg, text) {
            el(svg, "text", {x: W / 2, y: (T + H - B) / 2, "text-anchor": "middle", "class": "empty"}, text);
            svg.setAttribute("data-points", 0);
          }

          // One line per series over the timeline, a dashed mark where each stage begins.
          // With a baseline, its timeline is drawn dashed in the same colours (class "baseline").
          function lineChart(id, title, yLabel, series) {
            var svg = document.getElementById(id), pts = report.timeline || [], stages = report.stages || [];
            var old = (baseline && baseline.timeline) || [];
            frame(svg, title, "seconds since start", yLabel);
            legend(svg, series.map(function (s) { return s.name; }).concat(old.length ? ["dashed: baseline"] : []));
            if (!pts.length) return empty(svg, "no timeline data");
            var xsAll = pts.concat(old).map(function (p) { return num(p.second); })
              .concat(stages.map(function (s) { return num(s.start_s); }));
            var x0 = xsAll.reduce(function (m, v) { return Math.min(m, v); });
            var x1 = Math.max(x0 + 1, xsAll.reduce(function (m, v) { return Math.max(m, v); }));
            var x = function (v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
            var y = yAxis(svg, maxOf([].concat.apply([], series.map(function (s) {
              return pts.concat(old).map(function (p) { return num(p[s.key]); });
            }))));
            var st = step(x1 - x0, 8);
            for (var t = Math.ceil(x0 / st) * st; t <= x1 + st / 1e6; t += st) {
              el(svg, "line", {x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, "class": "axis"});
              el(svg, "text", {x: x(t), y: H - B + 16, "text-anchor": "middle", "class": "tick"}, label(t, st));
            }
            // Faults: a band from their actual start to their end (or the end of the chart).
            (report.faults || []).forEach(function (f) {
              if (f.start_s === undefined || f.start_s === null) return;
              var fx0 = x(Math.max(x0, num(f.start_s))), fx1 = x(Math.min(x1, f.end_s === undefined || f.end_s === null ? x1 : num(f.end_s)));
              if (fx1 <= fx0) return;
              el(svg, "rect", {x: fx0, y: T, width: fx1 - fx0, height: H - B - T, "class": "fault"});
              el(svg, "text", {x: fx0 + 2, y: H - B - 4, "class": "fault-label"}, f.kind + " " + f.target);
            });
            stages.forEach(function (s) {
              var sx = x(num(s.start_s));
              el(svg, "line", {x1: sx, x2: sx, y1: T, y2: H - B, "class": "stage"});
              el(svg, "text", {x: sx + 3, y: T + 10, "class": "stage-label"}, s.label);
            });
            series.forEach(function (s, i) {
              var d = pts.map(function (p, j) {
                return (j ? "L" : "M") + x(num(p.second)).toFixed(1) + " " + y(num(p[s.key])).toFixed(1);
              }).join(" ");
              el(svg, "path", {d: d, "class": "series", stroke: COLORS[i], "data-series": s.key});
              if (pts.length <= 60) pts.forEach(function (p) {
                el(svg, "circle", {cx: x(num(p.second)), cy: y(num(p[s.key])), r: 2.5, fill: COLORS[i]});
              });
              if (old.length) {
                var od = old.map(function (p, j) {
                  return (j ? "L" : "M") + x(num(p.second)).toFixed(1) + " " + y(num(p[s.key])).toFixed(1);
                }).join(" ");
                el(svg, "path", {d: od, "class": "series baseline", stroke: COLORS[i], "data-series": s.key + "-baseline"});
              }
            });
            svg.setAttribute("data-points", pts.length);
          }

          // groups: [{label, values: [one per name]}]; one bar per value, grouped by label.
          function barChart(id, title, yLabel, names, groups, digits, emptyText) {
            var svg = document.getElementById(id), bars = 0;
            frame(svg, title, "", yLabel);
            if (!groups.length) return empty(svg, emptyText);
            if (names.length > 1) legend(svg, names);
            var y = yAxis(svg, maxOf([].concat.apply([], groups.map(function (g) { return g.values.map(num); }))));
            var gw = (W - L - R) / groups.length, bw = Math.min(56, gw * 0.8 / names.length);
            groups.forEach(function (g, gi) {
              var gx = L + gi * gw + (gw - bw * names.length) / 2;
              g.values.forEach(function (v, si) {
                var bx = gx + si * bw, by = y(num(v));
                var rect = el(svg, "rect", {x: bx + 1, y: by, width: bw - 2, height: H - B - by, fill: COLORS[si], "class": "bar"});
                el(rect, "title", {}, g.label + " " + names[si] + ": " + v);
                el(svg, "text", {x: bx + bw / 2, y: by - 3, "text-anchor": "middle", "class": "bar-value"},
                  num(v).toFixed(digits));
                bars++;
              });
              el(svg, "text", {x: L + gi * gw + gw / 2, y: H - B + 16, "text-anchor": "middle", "class": "tick"}, g.label);
            });
            svg.setAttribute("data-points", bars);
          }

          // The tree of nodes (or the national node and its provinces), a node's size its load and
          // its colour its share of errors, with the path of each route class drawn over it.
          function networkChart(id, net) {
            var svg = document.getElementById(id), nodes = net.nodes || [];
            frame(svg, net.summarised_by_province ? "The network by province: load, errors, route paths" :
              "The network: load, errors, route paths", "", "");
            if (!nodes.length) return empty(svg, "no nodes");
            var byId = {}, roots = [];
            nodes.forEach(function (n) { byId[n.id] = {node: n, children: [], x: 0, y: 0}; });
            nodes.forEach(function (n) {
              if (n.parent && byId[n.parent]) byId[n.parent].children.push(byId[n.id]); else roots.push(byId[n.id]);
            });
            var leaves = 0, depth = 0;
            (function place(items, level) {
              depth = Math.max(depth, level);
              items.forEach(function (item) {
                item.level = level;
                if (item.children.length) {
                  place(item.children, level + 1);
                  item.slot = item.children.reduce(function (s, c) { return s + c.slot; }, 0) / item.children.length;
                } else {
                  item.slot = leaves++;
                }
              });
            })(roots, 0);
            var top = T + 18, bottom = H - B + 10;
            Object.keys(byId).forEach(function (k) {
              var item = byId[k];
              item.x = L + (leaves > 1 ? item.slot / (leaves - 1) : 0.5) * (W - L - R);
              item.y = top + (depth ? item.level / depth : 0) * (bottom - top);
            });
            Object.keys(byId).forEach(function (k) {
              byId[k].children.forEach(function (c) {
                el(svg, "line", {x1: byId[k].x, y1: byId[k].y, x2: c.x, y2: c.y, "class": "grid", "stroke-width": 1});
              });
            });
            var names = [], drawn = 0;
            ROUTES.filter(function (r) { return net.routes && net.routes[r]; }).forEach(function (r, i) {
              var points = net.routes[r].filter(function (id) { return byId[id]; })
                .map(function (id) { return (byId[id].x + (i - 1.5) * 3).toFixed(1) + "," + (byId[id].y + (i - 1.5) * 3).toFixed(1); });
              if (points.length === 1) points.push(points[0].split(",").map(function (v, j) { return num(v) + (j ? 0 : 8); }).join(","));
              el(svg, "polyline", {points: points.join(" "), fill: "none", stroke: COLORS[i], "stroke-width": 2.5,
                "stroke-opacity": 0.8, "class": "route", "data-route": r});
              names.push(r);
              drawn++;
            });
            var most = maxOf(nodes.map(function (n) { return num(n.settlements); }));
            Object.keys(byId).forEach(function (k) {
              var item = byId[k], n = item.node, rate = n.settlements ? num(n.errors) / num(n.settlements) : 0;
              var red = Math.min(1, rate / 0.1);   // a tenth failed or more: full red
              var fill = "rgb(" + Math.round(22 + red * (220 - 22)) + "," + Math.round(163 - red * (163 - 38)) + "," + Math.round(74 - red * (74 - 38)) + ")";
              var circle = el(svg, "circle", {cx: item.x, cy: item.y, r: 3 + 7 * Math.sqrt(most ? num(n.settlements) / most : 0),
                fill: fill, stroke: "#111827", "stroke-width": 0.5, "class": "node", "data-node": n.id});
              el(circle, "title", {}, n.id + " " + n.name + " (" + n.tier + (n.nodes > 1 ? ", " + n.nodes + " nodes" : "") + "): " +
                n.settlements + " settlements, " + n.errors + " refused or unknown");
              if (nodes.length <= 40) {
                el(svg, "text", {x: item.x, y: item.y + (item.children.length ? -9 : 16), "text-anchor": "middle", "class": "tick",
                  "font-size": 9}, net.summarised_by_province && n.tier === "province" ? n.id.slice(0, 2) : n.id);
              }
            });
            legend(svg, names.length ? names : ["no route paths"]);
            svg.setAttribute("data-points", nodes.length);
            svg.setAttribute("data-routes", drawn);
          }

          try {
            lineChart("chart-rate", "Rate over time", "per second",
              [{name: "target rate", key: "target_rate"}, {name: "achieved rate", key: "achieved_rate"}]);
            lineChart("chart-latency", "Latency percentiles over time", "ms",
              [{name: "p50", key: "latency_p50_ms"}, {name: "p99", key: "latency_p99_ms"},
               {name: "error answers p99", key: "error_latency_p99_ms"}]);
            var byCode = (report.errors && report.errors.by_code) || {};
            barChart("chart-errors", "Errors by code", "count", ["errors"],
              Object.keys(byCode).sort(function (a, b) { return byCode[b] - byCode[a] || (a < b ? -1 : 1); })
                .map(function (c) { return {label: c, values: [byCode[c]]}; }), 0, "no errors");
            var byRoute = (report.settlements && report.settlements.by_route) || {};
            var routes = ROUTES.filter(function (r) { return r in byRoute; })
              .concat(Object.keys(byRoute).filter(function (r) { return ROUTES.indexOf(r) < 0; }).sort());
            var oldRoutes = (baseline && baseline.settlements && baseline.settlements.by_route) || null;
            barChart("chart-routes", "Latency by route", "ms",
              oldRoutes ? ["p50", "p99", "baseline p50", "baseline p99"] : ["p50", "p99"], routes.map(function (r) {
              var l = byRoute[r].latency_ms || {}, o = (oldRoutes && oldRoutes[r] && oldRoutes[r].latency_ms) || {};
              return {label: r, values: oldRoutes ? [num(l.p50), num(l.p99), num(o.p50), num(o.p99)] : [num(l.p50), num(l.p99)]};
            }), 2, "no per-route figures");
            lineChart("chart-tickets", "Error tickets open over time (backlog)", "tickets open",
              [{name: "open tickets", key: "tickets_open"}]);
            var network = report.network;
            if (network) {
              var short = function (pair) { return pair.replace(/province/g, "prov.").replace(/national/g, "nat."); };
              barChart("chart-legs", "Time per hop by pair of tiers" + (network.sampled_one_in > 1 ? " (1 in " + network.sampled_one_in + " timed)" : ""),
                "ms", ["p50", "p99"], (network.legs || []).map(function (l) {
                  return {label: short(l.pair), values: [num(l.latency_ms.p50), num(l.latency_ms.p99)]};
                }), 2, "no hops timed (local settlements only)");
              networkChart("chart-network", network);
            }
            var dirty = report.dirty_data;
            if (dirty) {
              lineChart("chart-dirty-trend", "Dirty rate over time (first uploads, hospitals' answers)", "% refused",
                [{name: "refused %", key: "dirty_rate_pct"}]);
              var tiers = ["county", "city", "provincial", "national"].filter(function (t) { return dirty.by_tier && t in dirty.by_tier; });
              barChart("chart-dirty-tiers", "Dirty rate by tier", "% of received", ["rejected %"], tiers.map(function (t) {
                return {label: t, values: [num(dirty.by_tier[t].rate) * 100]};
              }), 2, "no uploads");
              var rules = Object.keys(dirty.by_rule || {}).sort();
              barChart("chart-dirty-rules", "Dirty data by rule", "records", ["injected", "detected"], rules.map(function (r) {
                return {label: r.replace("DQ-", ""), values: [num(dirty.by_rule[r].injected), num(dirty.by_rule[r].detected)]};
              }), 0, "no rules");
            }
            document.body.dataset.rendered = "true";
          } catch (e) {
            document.body.dataset.renderError = String(e);
            throw e;
          }
        })();
        """#
}
