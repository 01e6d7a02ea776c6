import Foundation
import Testing

/// `--junit FILE`: one test case per threshold and per reconciliation check, read back with a
/// real JUnit parser (Python's junitparser, which Scripts/test.sh installs), a failure carrying
/// the value measured.
@Suite struct JUnitTests {
    @Test func everyThresholdAndReconciliationCheckIsATestCase() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("junit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        // One threshold that holds, one that cannot (a name with XML's markup characters in it).
        try """
            name: junit-check
            topology: \(repositoryRoot)/Topologies/minimal.yaml
            seed: 7
            duration: 2s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 100
            thresholds:
              settlements.error_rate: "< 0.5"
              settlements.throughput_per_s: "> 1000000"
            """.write(toFile: "\(base)/junit-check.yaml", atomically: true, encoding: .utf8)
        let run = try settlenet(["sim", "\(base)/junit-check.yaml", "--out", "\(base)/out", "--junit", "\(base)/junit.xml"])
        #expect(run.status == 99, "a threshold failed: exit 99\n\(run.output)\(run.error)")

        let read = try runProgram("/usr/bin/env", ["python3", "-c", """
            import json, sys
            from junitparser import JUnitXml
            xml = JUnitXml.fromfile(sys.argv[1])
            cases = []
            for suite in xml:
                for case in suite:
                    cases.append({"suite": suite.name, "name": case.name, "passed": case.is_passed,
                                  "message": case.result[0].message if case.result else None})
            print(json.dumps({"tests": xml.tests, "failures": xml.failures, "cases": cases}))
            """, "\(base)/junit.xml"])
        #expect(read.status == 0, "junitparser could not read it: \(read.error)")
        struct Parsed: Decodable {
            struct Case: Decodable { var suite: String; var name: String; var passed: Bool; var message: String? }
            var tests: Int
            var failures: Int
            var cases: [Case]
        }
        let parsed = try JSONDecoder().decode(Parsed.self, from: Data(read.output.utf8))
        let thresholds = parsed.cases.filter { $0.suite == "junit-check.thresholds" }
        let reconciliation = parsed.cases.filter { $0.suite == "junit-check.reconciliation" }
        #expect(thresholds.map(\.name).sorted() == ["settlements.error_rate < 0.5", "settlements.throughput_per_s > 1000000"])
        #expect(reconciliation.count == 7 && reconciliation.allSatisfy(\.passed), "\(reconciliation)")
        #expect(parsed.tests == 9 && parsed.failures == 1)
        let failed = try #require(thresholds.first { !$0.passed })
        #expect(failed.name == "settlements.throughput_per_s > 1000000")
        // The value measured, in the failure's message: about the 100/s the scenario asked for.
        let message = try #require(failed.message)
        let measured = message.split(separator: " ").dropFirst(2).first.flatMap { Double($0.trimmingCharacters(in: .punctuationCharacters)) }
        #expect(message.hasPrefix("settlements.throughput_per_s = ") && (measured ?? 0) > 50 && (measured ?? .infinity) < 150, "\(message)")
    }
}

/// `scenario compare OLD NEW`: the headline figures side by side, exit 99 on a regression.
@Suite struct CompareTests {
    @Test func aSlowerDiskIsARegressionAndARunAgainstItselfIsNone() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("compare-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (run, model) in [("old", [String]()), ("new", ["--model", "commit_us=5000"])] {
            let result = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/\(run)"] + model)
            #expect(result.status == 0, "\(result.output)\(result.error)")
        }
        let same = try settlenet(["scenario", "compare", "\(base)/old/report.json", "\(base)/old/report.json"])
        #expect(same.status == 0 && same.output.contains("no regression"), "\(same.output)\(same.error)")
        #expect(same.output.contains("settlements.latency_ms.p99") && same.output.contains("reconciliation.lost"))

        let slower = try settlenet(["scenario", "compare", "\(base)/old/report.json", "\(base)/new/report.json", "--max-regression", "10%"])
        #expect(slower.status == 99, "\(slower.output)\(slower.error)")
        let p50 = try #require(slower.output.split(separator: "\n").first { $0.hasPrefix("settlements.latency_ms.p50 ") })
        #expect(p50.hasSuffix("REGRESSION") && p50.contains("+"), "\(p50)")
        // Nothing was lost either way: not a regression.
        let lost = try #require(slower.output.split(separator: "\n").first { $0.hasPrefix("reconciliation.lost ") })
        #expect(!lost.contains("REGRESSION"), "\(lost)")
        // The same two runs the other way round: faster is no regression.
        let faster = try settlenet(["scenario", "compare", "\(base)/new/report.json", "\(base)/old/report.json"])
        #expect(faster.status == 0, "\(faster.output)")

        let missing = try settlenet(["scenario", "compare", "\(base)/none.json", "\(base)/old/report.json"])
        #expect(missing.status == 2 && missing.error.contains("none.json"))

        // --baseline: the earlier run beside the new one, in report.html and after the summary.
        let against = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/against", "--model", "commit_us=5000",
                                     "--baseline", "\(base)/old/report.json"])
        #expect(against.status == 0, "\(against.output)\(against.error)")
        #expect(against.output.contains("against the baseline \(base)/old/report.json:"), "\(against.output)")
        let againstP50 = try #require(against.output.split(separator: "\n").first { $0.hasPrefix("settlements.latency_ms.p50 ") })
        #expect(againstP50.hasSuffix("REGRESSION"), "\(againstP50)")
        let page = try String(contentsOfFile: "\(base)/against/report.html", encoding: .utf8)
        #expect(page.contains(#"id="baseline-data""#) && page.contains(#"<table class="baseline">"#))
        // A baseline that cannot be read stops the run before it starts: exit 2, the file named.
        let noBaseline = try settlenet(["sim", "Scenarios/smoke.yaml", "--out", "\(base)/never", "--baseline", "\(base)/none.json"])
        #expect(noBaseline.status == 2 && noBaseline.error.contains("none.json"), "\(noBaseline.error)")
        #expect(!FileManager.default.fileExists(atPath: "\(base)/never/report.json"))
    }
}
