import ArgumentParser
import Foundation
import SettlementModel
import Scenario

/// What `scenario run` and `sim` print while a run goes and when it ends: log lines and a live
/// progress line on standard error (rewritten in place on a terminal), then the summary table
/// on standard output, and the exit code the run's outcome calls for.
struct RunConsole {
    let interactive = isatty(STDERR_FILENO) == 1

    func log(_ message: String) {
        FileHandle.standardError.write(Data("\(interactive ? "\r\u{1B}[K" : "")\(message)\n".utf8))
    }

    func progress(_ line: String) {
        FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    /// The run could not be carried out: says why, and exits with the error's code.
    func failed(_ error: ScenarioError) -> ExitCode {
        FileHandle.standardError.write(Data("\(interactive ? "\n" : "")error: \(error.message)\n".utf8))
        return ExitCode(error.code.rawValue)
    }

    /// The summary and where the reports are; exit 99 when a threshold failed.
    /// `junit`: also the thresholds and reconciliation checks as JUnit XML, to this file.
    /// `baseline`: also the headline figures against that earlier run (drawn in report.html too).
    func finish(_ outcome: ScenarioRunner.Outcome, junit: String? = nil, baseline: Baseline? = nil) throws {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        print(ReportRendering.summaryTable(outcome.report))
        if let baseline {
            let comparison = baseline.comparison(with: outcome.report)
            print("against the baseline \(baseline.path):")
            print(comparison.table(oldName: "baseline", newName: "this run"))
        }
        print("reports: \(outcome.outputDirectory)/report.json, report.md, report.html")
        if let junit {
            do {
                try JUnitReport.xml(outcome.report).write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                throw SettleNetError(.command, "cannot write the JUnit file --junit \(junit): \(error.localizedDescription)")
            }
            print("junit: \(junit)")
        }
        if !outcome.report.passed { throw ExitCode(99) }
    }
}
