import Foundation

/// Two runs' headline figures side by side (`scenario compare OLD NEW`), each with its change
/// and whether that change is a regression beyond a limit. Figures are read from report.json by
/// path, as thresholds read them, so any two reports compare, simulated or real.
public struct RunComparison: Sendable {
    public enum Better: Sendable { case higher, lower }

    /// A headline figure: its path in report.json and which way is better.
    public struct Figure: Sendable {
        public let path: String
        public let better: Better
    }

    public struct Row: Sendable {
        public let figure: Figure
        public let old: Double?
        public let new: Double?
        /// (new - old) / old; nil when either is missing or old is 0.
        public let change: Double?
        /// Worse than the limit allows; from 0 to anything worse always is.
        public let regressed: Bool
    }

    /// Throughput, latency percentiles, error and loss rates, dirty-data rates and the
    /// reconciliation's counts.
    public static let headline: [Figure] = [
        Figure(path: "settlements.throughput_per_s", better: .higher),
        Figure(path: "settlements.latency_ms.p50", better: .lower),
        Figure(path: "settlements.latency_ms.p90", better: .lower),
        Figure(path: "settlements.latency_ms.p99", better: .lower),
        Figure(path: "settlements.latency_ms.p999", better: .lower),
        Figure(path: "settlements.latency_ms.max", better: .lower),
        Figure(path: "settlements.error_rate", better: .lower),
        Figure(path: "settlements.dropped", better: .lower),
        Figure(path: "settlements.unanswered", better: .lower),
        Figure(path: "settlements.identity_violations", better: .lower),
        Figure(path: "uploads.throughput_records_per_s", better: .higher),
        Figure(path: "uploads.batch_latency_ms.p99", better: .lower),
        Figure(path: "dirty_data.detected_rate", better: .higher),
        Figure(path: "dirty_data.leak_rate", better: .lower),
        Figure(path: "dirty_data.false_reject_rate", better: .lower),
        Figure(path: "reconciliation.lost", better: .lower),
        Figure(path: "reconciliation.duplicated", better: .lower),
        Figure(path: "reconciliation.mismatched", better: .lower),
        Figure(path: "reconciliation.unresolved", better: .lower),
        Figure(path: "reconciliation.balances_wrong", better: .lower),
    ]

    public let rows: [Row]
    public let maxRegression: Double

    /// `maxRegression`: the largest change for the worse that is not a regression (0.10: 10 %).
    public init(old: JSONValue, new: JSONValue, maxRegression: Double) {
        self.maxRegression = maxRegression
        rows = Self.headline.compactMap { figure in
            let before = Thresholds.value(at: figure.path, in: old), after = Thresholds.value(at: figure.path, in: new)
            guard before != nil || after != nil else { return nil }   // neither run has it (no uploads, say)
            var change: Double?
            var regressed = false
            if let before, let after {
                let worse = figure.better == .lower ? after - before : before - after
                if before != 0 {
                    change = (after - before) / abs(before)
                    regressed = worse / abs(before) > maxRegression
                } else {
                    regressed = worse > 0
                }
            }
            return Row(figure: figure, old: before, new: after, change: change, regressed: regressed)
        }
    }

    public var regressions: [Row] { rows.filter(\.regressed) }

    /// Each row as text: figure, old, new, change, and REGRESSION where there is one.
    public var textRows: [[String]] {
        func text(_ value: Double?) -> String {
            guard let value else { return "-" }
            return value == value.rounded() && abs(value) < 1e12 ? String(Int64(value)) : String(format: "%.4g", value)
        }
        return rows.map { row in
            let change = row.change.map { String(format: "%+.1f%%", $0 * 100) } ?? (row.old == row.new ? "0" : "-")
            return [row.figure.path, text(row.old), text(row.new), change, row.regressed ? "REGRESSION" : ""]
        }
    }

    /// The table: figure, old, new, change, and REGRESSION where there is one.
    public func table(oldName: String, newName: String) -> String {
        let lines: [[String]] = [["figure", oldName, newName, "change", ""]] + textRows
        let widths = (0..<5).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0)
                            : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}

/// An earlier run's report.json, drawn beside a new run in its report.html (`--baseline`).
public struct Baseline: Sendable {
    public let path: String
    /// The report as JSON values, for `RunComparison`.
    public let value: JSONValue
    /// The file as it was read, embedded in the page for its charts.
    public let json: String

    /// Reads `path`; a file that is missing or no report says so, naming it, before any run starts.
    public static func load(_ path: String) throws(ScenarioError) -> Baseline {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError(code: .invalidScenario, message: "--baseline \(path): no such file (give an earlier run's report.json)")
        }
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw ScenarioError(code: .invalidScenario, message: "--baseline \(path): not JSON: \(error.localizedDescription)")
        }
        guard Thresholds.value(at: "settlements.attempted", in: value) != nil else {
            throw ScenarioError(code: .invalidScenario, message: "--baseline \(path): not a SettleNet report.json (it has no settlements.attempted)")
        }
        return Baseline(path: path, value: value, json: String(decoding: data, as: UTF8.self))
    }

    /// The headline figures of `report` against this baseline, changes beyond `maxRegression` marked.
    public func comparison(with report: RunReport, maxRegression: Double = 0.10) -> RunComparison {
        RunComparison(old: value, new: (try? JSONValue.of(report)) ?? .object([:]), maxRegression: maxRegression)
    }
}
