import Foundation

/// A run as JUnit XML, the format CI systems read test results in (`scenario run --junit`,
/// `sim --junit`): one test case per threshold and one per reconciliation check, a failure
/// carrying the value measured. Two suites, `<scenario>.thresholds` and
/// `<scenario>.reconciliation`, under one `testsuites` element; the scenario, seed, topology
/// and whether it was simulated are the suites' properties.
public enum JUnitReport {
    public static func xml(_ report: RunReport) -> String {
        var suites: [Suite] = []
        let thresholds = report.thresholds.map { threshold in
            Case(name: "\(threshold.path) \(threshold.condition)", className: "\(report.scenario).thresholds",
                 failure: threshold.passed ? nil : threshold.value.map {
                     "\(threshold.path) = \(number($0)), not \(threshold.condition)"
                 } ?? "\(threshold.path) names nothing numeric in the report, so \(threshold.condition) cannot hold")
        }
        suites.append(Suite(name: "\(report.scenario).thresholds", cases: thresholds))
        if let figures = report.reconciliation {
            let className = "\(report.scenario).reconciliation"
            func check(_ name: String, _ count: Int, _ what: String, problems: String) -> Case {
                let listed = figures.problems[problems].map { ": " + $0.joined(separator: ", ") } ?? ""
                return Case(name: name, className: className,
                            failure: count == 0 ? nil : "\(count) \(what) of \(figures.checked) checked\(listed)")
            }
            suites.append(Suite(name: className, cases: [
                check("nothing lost", figures.lost, "settlements lost", problems: "lost"),
                check("nothing duplicated", figures.duplicated, "settlements duplicated", problems: "duplicated"),
                check("every tier agrees", figures.mismatched, "settlements mismatched between tiers", problems: "mismatched"),
                check("nothing unresolved", figures.unresolved, "settlements unresolved", problems: "unresolved"),
                Case(name: "balances right", className: className,
                     failure: figures.balancesWrong == 0 ? nil
                        : "\(figures.balancesWrong) of \(figures.balancesChecked) balances wrong"
                          + (figures.problems["balances"].map { ": " + $0.joined(separator: ", ") } ?? "")),
                Case(name: "clearing balanced", className: className,
                     failure: figures.clearingBalanced ? nil
                        : "clearing not balanced" + (figures.problems["clearing"].map { ": " + $0.joined(separator: "; ") } ?? "")),
                Case(name: "uploads balanced", className: className,
                     failure: figures.uploadsBalanced ? nil
                        : "uploads not balanced" + (figures.problems["uploads"].map { ": " + $0.joined(separator: "; ") } ?? "")),
            ]))
        }
        let properties = [("scenario", report.scenario), ("seed", String(report.seed)), ("topology", report.topology),
                          ("simulated", report.simulation == nil ? "false" : "true")]
        let total = suites.reduce(0) { $0 + $1.cases.count }
        let failures = suites.reduce(0) { $0 + $1.failures }
        var lines = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<testsuites name=\(attribute("settlenet \(report.scenario)")) tests=\"\(total)\" failures=\"\(failures)\" errors=\"0\" time=\"\(number(report.durationS))\">",
        ]
        for suite in suites {
            lines.append("  <testsuite name=\(attribute(suite.name)) tests=\"\(suite.cases.count)\" failures=\"\(suite.failures)\" errors=\"0\" skipped=\"0\" time=\"\(number(report.durationS))\" timestamp=\(attribute(String(report.startedAt.prefix(19))))>")
            lines.append("    <properties>")
            for (name, value) in properties {
                lines.append("      <property name=\(attribute(name)) value=\(attribute(value))/>")
            }
            lines.append("    </properties>")
            for testCase in suite.cases {
                let opening = "    <testcase name=\(attribute(testCase.name)) classname=\(attribute(testCase.className)) time=\"0\""
                if let failure = testCase.failure {
                    lines.append(opening + ">")
                    lines.append("      <failure message=\(attribute(failure)) type=\"failed\">\(escaped(failure))</failure>")
                    lines.append("    </testcase>")
                } else {
                    lines.append(opening + "/>")
                }
            }
            lines.append("  </testsuite>")
        }
        lines.append("</testsuites>")
        return lines.joined(separator: "\n") + "\n"
    }

    struct Case {
        var name: String
        var className: String
        /// Why it failed, with the value measured; nil when it passed.
        var failure: String?
    }

    struct Suite {
        var name: String
        var cases: [Case]
        var failures: Int { cases.filter { $0.failure != nil }.count }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.6g", value)
    }

    /// XML character data: markup characters as entities, and the characters XML 1.0 cannot
    /// hold at all (most controls) dropped.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out += "&#\(scalar.value);"
            case let control where control.value < 0x20 || (0xFFFE...0xFFFF).contains(control.value): continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func attribute(_ text: String) -> String { "\"" + escaped(text) + "\"" }
}
