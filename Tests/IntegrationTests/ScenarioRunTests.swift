import Foundation
import GRDB
import NetworkTopology
import Persistence
import Reconciliation
import SettlementCore
import SettlementModel
import Scenario
import Testing

/// Runs scenarios through the real command: launches the cluster, drives it, writes reports.
@Suite(.serialized) struct ScenarioRunTests {
    func outputDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-scenario-\(UUID().uuidString)").path
    }

    /// Stops a cluster the run may have left behind (it should not), so no test leaks processes.
    func sweep(_ output: String) {
        _ = try? settlenet(["cluster", "down", "--data-dir", "\(output)/cluster", "--grace", "5"])
    }

    @Test func theSmokeScenarioPassesAndItsReportHasEveryField() throws {
        let output = outputDirectory()
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let result = try settlenet(["scenario", "run", "Scenarios/smoke.yaml", "--out", output])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        #expect(result.output.contains("PASS"))
        #expect(result.error.contains("achieved"), "no progress line on stderr")

        let data = try Data(contentsOf: URL(fileURLWithPath: "\(output)/report.json"))
        let json = try JSONDecoder().decode(JSONValue.self, from: data)
        let required = ["seed", "duration_s", "settlements.attempted", "settlements.succeeded", "settlements.failed",
                        "settlements.dropped", "settlements.error_rate", "settlements.throughput_per_s",
                        "settlements.latency_ms.p50", "settlements.latency_ms.p90", "settlements.latency_ms.p99",
                        "settlements.latency_ms.p999", "settlements.latency_ms.max"]
            + ["local", "intra_city", "intra_province", "cross_province"].flatMap { route in
                ["attempted", "succeeded", "failed", "throughput_per_s", "latency_ms.p50", "latency_ms.p99"]
                    .map { "settlements.by_route.\(route).\($0)" }
            }
        for path in required { #expect(Thresholds.value(at: path, in: json) != nil, "report.json lacks \(path)") }
        let report = try JSONDecoder().decode(RunReport.self, from: data)
        #expect(report.passed)
        #expect(report.scenario == "smoke")
        #expect(report.seed == 20_221_122)
        #expect(report.settlements.attempted > 500)
        #expect(report.settlements.attempted + report.settlements.dropped == report.settlements.scheduled)
        #expect(report.settlements.succeeded + report.settlements.failed == report.settlements.attempted)
        #expect(report.settlements.byRoute.values.allSatisfy { $0.succeeded > 0 })
        #expect(report.settlements.identityViolations == 0)
        #expect(report.timeline.count >= 8)
        #expect(report.thresholds.count == 4 && report.thresholds.allSatisfy(\.passed))
        #expect(report.errors.byCode.keys.allSatisfy { $0 == "SN-E2002" }, "unexpected errors \(report.errors.byCode)")
        #expect(report.reversals.attempted > 0 && report.reversals.succeeded == report.reversals.attempted)
        let markdown = try String(contentsOfFile: "\(output)/report.md", encoding: .utf8)
        #expect(markdown.contains("PASSED"))
        let html = try String(contentsOfFile: "\(output)/report.html", encoding: .utf8)
        #expect(html.contains("report-data"))
        // The cluster the run launched is gone.
        let status = try settlenet(["cluster", "status", "--data-dir", "\(output)/cluster", "--json"])
        #expect(status.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || status.output.contains("[]"),
                "nodes still recorded: \(status.output)")

        // Every ledger agrees with the others, at the end of the run and when asked again.
        let reconciliation = try #require(report.reconciliation)
        #expect(reconciliation.passed && reconciliation.checked >= report.settlements.attempted, "\(reconciliation.problems)")
        let clean = try settlenet(["reconcile", "--data-dir", "\(output)/cluster"])
        #expect(clean.status == 0 && clean.output.contains("reconciliation: PASS"), "\(clean.output)\n\(clean.error)")
        try reconciliationCatchesBrokenLedgers(dataDirectory: "\(output)/cluster")
    }

    /// Breaks the ledgers of a finished run three ways and expects `settlenet reconcile` to name each.
    func reconciliationCatchesBrokenLedgers(dataDirectory: String) throws {
        let layout = DataLayout(root: dataDirectory)
        let national = try DatabaseQueue(path: layout.ledgerPath(DivisionCode("000000")!))
        let crossProvince = try national.read { db in
            try Row.fetchAll(db, sql: """
                SELECT msgid, insuplc_admdvs FROM transits WHERE state = 'settled' AND infno IN ('2207', '2304') AND acct_pay > 0 ORDER BY msgid LIMIT 3
                """).map { (msgid: $0[0] as String, insured: $0[1] as String) }
        }
        try #require(crossProvince.count == 3, "the run settled too few cross-province settlements to break")
        let (deleted, doubled, changed) = (crossProvince[0], crossProvince[1], crossProvince[2])
        try DatabaseQueue(path: layout.ledgerPath(DivisionCode(deleted.insured)!)).write { db in
            try db.execute(sql: "DELETE FROM settlements WHERE msgid = ?", arguments: [deleted.msgid])
        }
        let copy = "D" + doubled.msgid.dropFirst()
        try DatabaseQueue(path: layout.ledgerPath(DivisionCode(doubled.insured)!)).write { db in
            try db.execute(sql: "CREATE TEMP TABLE twin AS SELECT * FROM settlements WHERE msgid = ?", arguments: [doubled.msgid])
            try db.execute(sql: "UPDATE twin SET msgid = ?, setl_id = setl_id || 'D'", arguments: [copy])
            try db.execute(sql: "INSERT INTO settlements SELECT * FROM twin")
        }
        try national.write { db in
            try db.execute(sql: "UPDATE transit_log SET fund_pay_sumamt = fund_pay_sumamt + 1 WHERE msgid = ?", arguments: [changed.msgid])
        }
        let broken = try settlenet(["reconcile", "--data-dir", dataDirectory, "--json"])
        #expect(broken.status == 1, "exit \(broken.status): \(broken.error)")
        let verdict = try JSONDecoder().decode(ReconciliationResult.self, from: Data(broken.output.utf8))
        #expect(verdict.lost == [deleted.msgid])
        #expect(verdict.duplicated == [copy])
        #expect(verdict.mismatched == [changed.msgid])
        #expect(verdict.balancesWrong.count == 2, "the deleted and the doubled settlement both paid from an account")
        #expect(!verdict.clearingBalanced, "the changed fund payment is the national tier's: provinces dispute it")
        let text = try settlenet(["reconcile", "--data-dir", dataDirectory])
        #expect(text.status == 1 && text.output.contains("lost: \(deleted.msgid)") && text.output.contains("FAIL"))
    }

    @Test func dirtyUploadsAreRejectedWhereExpectedWithExactAccounting() throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let scenario = """
            name: dirty-small
            topology: Topologies/minimal.yaml
            seed: 25
            duration: 5s
            load:
              uploads:
                executor: constant-arrival-rate
                rate: 8
                batch_size: 100
                dirty:
                  rate: 0.25
                  kinds: { missing_field: 0.2, bad_format: 0.2, unknown_code: 0.2, bad_admdvs: 0.1,
                           amount_mismatch: 0.1, date_order: 0.1, duplicate: 0.1 }
            thresholds:
              dirty_data.leak_rate: "== 0"
              dirty_data.false_reject_rate: "== 0"
              dirty_data.accounting_exact: "== 1"
            """
        try scenario.write(toFile: "\(output)/dirty.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/dirty.yaml", "--out", "\(output)/report"])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(output)/report/report.json"))
        let json = try JSONDecoder().decode(JSONValue.self, from: data)
        let tierPaths = ["county", "city", "provincial", "national"].flatMap { tier in
            ["received", "rejected", "rate"].map { "dirty_data.by_tier.\(tier).\($0)" }
        }
        let rulePaths = ["DQ-R101", "DQ-R106", "DQ-R201", "DQ-R204"].flatMap { rule in
            ["injected", "detected"].map { "dirty_data.by_rule.\(rule).\($0)" }
        }
        let uploadPaths = ["uploads.batches", "uploads.records_sent", "uploads.accepted_national", "uploads.throughput_records_per_s",
                           "dirty_data.injected_rate", "dirty_data.detected_rate", "dirty_data.leak_rate", "dirty_data.false_reject_rate"]
        for path in uploadPaths + tierPaths + rulePaths {
            #expect(Thresholds.value(at: path, in: json) != nil, "report.json lacks \(path)")
        }
        let report = try JSONDecoder().decode(RunReport.self, from: data)
        let uploads = try #require(report.uploads), dirty = try #require(report.dirtyData)
        #expect(uploads.batches == 40 && uploads.batchesDropped == 0 && uploads.batchesFailed == 0 && uploads.batchesUnanswered == 0)
        #expect(uploads.recordsSent == 4_000)
        #expect(dirty.injectedRate > 0.2 && dirty.injectedRate < 0.3, "injected \(dirty.injectedRate)")
        // Every injected record was refused, by its rule at the first tier able to see it; no
        // clean record was; nothing dirty reached the national store.
        #expect(dirty.detected == dirty.injected && dirty.detectedAsExpected == dirty.injected)
        #expect(dirty.leaked == 0 && dirty.falseRejects == 0)
        for (id, rule) in dirty.byRule { #expect(rule.injected == rule.detected, "\(id): \(rule.injected) injected, \(rule.detected) detected") }
        #expect(dirty.byTier.values.allSatisfy { $0.accountingExact })
        #expect(uploads.acceptedNational == uploads.recordsSent - dirty.injected)
        // What one tier accepted is what the next received.
        #expect(dirty.byTier["county"]?.accepted == dirty.byTier["city"]?.received)
        #expect(dirty.byTier["city"]?.accepted == dirty.byTier["provincial"]?.received)
        #expect(dirty.byTier["provincial"]?.accepted == dirty.byTier["national"]?.received)
        let stats = try settlenet(["data", "stats", "--data-dir", "\(output)/report/cluster", "--json"])
        #expect(stats.status == 0, "\(stats.error)")
        #expect(stats.output.contains("\"tier\" : \"national\""))
        // The national store holds each record whole (the tiers above the county read only its
        // keys and pass on the bytes that came), numbered by the county.
        let national = try DatabaseQueue(path: DataLayout(root: "\(output)/report/cluster").ledgerPath(DivisionCode("000000")!))
        let (batches, claimed) = try national.read { db in
            (try Data.fetchAll(db, sql: "SELECT input FROM upload_stored"), try String.fetchAll(db, sql: "SELECT setl_id FROM upload_claims"))
        }
        let stored = try batches.flatMap { try UploadInput(serializedBytes: $0).records }
        #expect(stored.count == uploads.acceptedNational)
        #expect(Set(stored.map(\.setlID)) == Set(claimed) && claimed.count == stored.count, "a record stored for each claim")
        for record in stored {
            #expect(!record.psnNo.isEmpty && !record.admDate.isEmpty && !record.dscgDate.isEmpty && !record.diseCodg.isEmpty
                    && !record.details.isEmpty && record.medfeeSumamt == record.details.reduce(0) { $0 + $1.amount }
                    && record.batchIndex >= 0 && record.batchIndex < 100, "\(record.setlID) is not whole")
        }
    }

    @Test func theGovernanceLoopCorrectsEveryRejectClosesItsTicketsAndTheDirtyRateFalls() throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let scenario = """
            name: governance-small
            topology: Topologies/minimal.yaml
            seed: 31
            duration: 20s
            load:
              uploads:
                executor: constant-arrival-rate
                rate: 10
                batch_size: 100
                dirty:
                  rate: 0.25
                  kinds: { missing_field: 0.2, bad_format: 0.2, unknown_code: 0.2, bad_admdvs: 0.1,
                           amount_mismatch: 0.1, date_order: 0.1, duplicate: 0.1 }
                  fix_probability: 0.25
                  residual_share: 0.2
            """
        try scenario.write(toFile: "\(output)/governance.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/governance.yaml", "--out", "\(output)/report"])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(output)/report/report.json"))
        let report = try JSONDecoder().decode(RunReport.self, from: data)
        let dirty = try #require(report.dirtyData), loop = try #require(dirty.governance)
        // Institutions told about their defects fix causes: the first-upload dirty rate falls.
        #expect(loop.causesFixed > 0)
        #expect(loop.dirtyRateFirstQuarterPct > 18, "first quarter \(loop.dirtyRateFirstQuarterPct) %")
        #expect(loop.dirtyRateLastQuarterPct < loop.dirtyRateFirstQuarterPct - 5,
                "first quarter \(loop.dirtyRateFirstQuarterPct) %, last \(loop.dirtyRateLastQuarterPct) %")
        // Every rejected record was corrected and re-uploaded, and every correction got in.
        #expect(loop.correctionsSent == dirty.detected, "\(loop.correctionsSent) corrections for \(dirty.detected) rejects")
        #expect(loop.correctionsAccepted == loop.correctionsSent && loop.correctionsRejected == 0)
        #expect(dirty.leaked == 0 && dirty.falseRejects == 0 && dirty.accountingExact)
        #expect(report.reconciliation?.uploadsBalanced == true && report.reconciliation?.passed == true)
        // Duplicates found above the county opened tickets; the re-uploads closed every one (销号).
        let tickets = try #require(report.tickets)
        #expect((tickets.byKind["upload_reject"] ?? 0) > 0)
        #expect(tickets.openAtEnd == 0 && tickets.closed == tickets.opened, "open at end: \(tickets.openReasons)")
        #expect(report.timeline.contains { ($0.ticketsOpen ?? 0) > 0 }, "the backlog chart has something to show")
        let listed = try settlenet(["tickets", "list", "--data-dir", "\(output)/report/cluster", "--json"])
        #expect(listed.status == 0, "\(listed.error)")
        #expect(listed.output.contains("\"upload_reject\"") && !listed.output.contains("\"state\" : \"acknowledged\""))
        let html = try String(contentsOfFile: "\(output)/report/report.html", encoding: .utf8)
        #expect(html.contains("data-chart=\"tickets\"") && html.contains("data-chart=\"dirty-trend\""))
    }

    @Test func underAPausedCountyEveryRequestIsAnsweredInTimeAndNothingStaysInDoubt() throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let scenario = """
            name: storm-small
            topology: Topologies/minimal.yaml
            seed: 9
            duration: 6s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 40
                mix:
                  route: { local: 0.2, cross_province: 0.8 }
                  unfiled_offsite: 0.2
            faults:
              - { at: 1s, pause: "410102", for: 9s }
            thresholds:
              settlements.unresolved: "== 0"
            """
        try scenario.write(toFile: "\(output)/storm.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/storm.yaml", "--out", "\(output)/report"])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/report/report.json")))
        // Settlements toward the paused county came back indefinite, and were resolved: reversed
        // by correction, or (for the paused county's own hospitals) settled or refused when asked again.
        #expect(report.errors.indefinite > 0)
        #expect(report.settlements.reversed > 0, "no correction reversal happened")
        #expect(report.settlements.unresolved == 0 && report.settlements.unanswered == 0)
        #expect(report.settlements.reversed + report.settlements.resolvedSettled + report.settlements.resolvedRefused
                == report.errors.indefinite)
        // No answer later than the deadline (8 s, or the hospital's own 8.5 s timeout).
        #expect(report.errors.responseLatencyMs.max <= 8_600, "an answer took \(report.errors.responseLatencyMs.max) ms")
        #expect(report.errors.byCode["SN-E2002", default: 0] > 0)
        #expect(report.faults.count == 1 && report.faults.first?.startedS != nil && report.faults.first?.endedS != nil)
        #expect(report.settlements.identityViolations == 0)
        // Money in flight through the pause ended settled once or not at all, on every tier alike.
        #expect(report.reconciliation?.passed == true, "\(report.reconciliation?.problems ?? [:])")
        // Tickets: the silent county's was acknowledged and closed once it was back; the refusals
        // caused by filing data stay open, each with its reason.
        let tickets = try #require(report.tickets)
        #expect(tickets.byKind["node_unresponsive", default: 0] >= 1 && tickets.closed >= 1)
        #expect(tickets.byKind["business_refusal", default: 0] > 0)
        #expect(tickets.acknowledged == tickets.opened)
        #expect(tickets.openReasons.values.reduce(0, +) == tickets.openAtEnd)
        #expect(tickets.opened == tickets.closed + tickets.openAtEnd)
    }

    /// Unpacked, and with each province in one process, where the city-to-province links faulted
    /// are hops in memory: faults act on those messages all the same.
    @Test(arguments: [nil, "province"])
    func linkFaultsAndAPartitionActOnRealMessagesAndEveryLedgerStillAgrees(pack: String?) throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let scenario = """
            name: links-small
            topology: Topologies/minimal.yaml
            \(pack.map { "pack: \($0)" } ?? "")
            seed: 77
            duration: 12s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 80
                mix:
                  route: { local: 0.1, intra_city: 0.1, intra_province: 0.3, cross_province: 0.5 }
                  reversal: 0.02
                max_in_flight: 2000
            faults:
              - { at: 1s, link: "370200-370000", delay: 30ms, jitter: 10ms, loss: 0.1, duplicate: 0.05, for: 4s }
              - { at: 2s, link: "410300-410000", corrupt: 0.2, for: 3s }
              - { at: 6s, partition: ["410000", "000000"], for: 2s }
            """
        try scenario.write(toFile: "\(output)/links.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/links.yaml", "--out", "\(output)/report"])
        #expect(result.status == 0, "exit \(result.status): \(result.output)\n\(result.error)")
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/report/report.json")))
        // Every fault started, acted and ended when its time was up.
        #expect(report.faults.map(\.kind) == ["link", "link", "partition"])
        for fault in report.faults {
            let started = try #require(fault.startedS), ended = try #require(fault.endedS)
            #expect(started >= fault.atS && ended > started, "\(fault)")
        }
        #expect(report.errors.indefinite > 0, "lost and cut-off messages leave outcomes unknown")
        let provinceLog = try String(contentsOfFile: "\(output)/report/cluster/logs/410000.log", encoding: .utf8)
        #expect(provinceLog.contains("integrity check failed"), "corrupted frames reach the province and are dropped")
        // And still: every settlement settled once or not at all, on every tier alike.
        #expect(report.settlements.unresolved == 0 && report.settlements.unanswered == 0)
        let reconciliation = try #require(report.reconciliation)
        #expect(reconciliation.passed, "\(reconciliation.problems)")
        // The faults are over: the file the nodes read holds nothing in force.
        let entries = try JSONDecoder().decode([LinkFault].self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/report/cluster/link-faults.json")))
        #expect(entries.isEmpty)
    }

    @Test func anImpossibleThresholdExits99() throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { sweep(output); try? FileManager.default.removeItem(atPath: output) }
        let scenario = """
            name: impossible
            topology: Topologies/minimal.yaml
            seed: 5
            duration: 2s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: 50
                mix:
                  route: { local: 1, cross_province: 1 }
            thresholds:
              settlements.latency_ms.p99: "< 0.001"
            """
        try scenario.write(toFile: "\(output)/impossible.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/impossible.yaml", "--out", "\(output)/report"])
        #expect(result.status == 99, "exit \(result.status): \(result.error)")
        #expect(result.output.contains("FAIL"))
        let report = try JSONDecoder().decode(RunReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(output)/report/report.json")))
        #expect(!report.passed)
        #expect(report.thresholds.first?.passed == false)
        #expect(report.settlements.succeeded > 0)
    }

    @Test func aBadScenarioExits2BeforeAnythingStarts() throws {
        let output = outputDirectory()
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: output) }
        try "name: bad\ntopology: Topologies/minimal.yaml\nduration: 2s\nload:\n  settlements:\n    executor: constant-arrival-rate\n    rate: 10\n    mux: {}\n"
            .write(toFile: "\(output)/bad.yaml", atomically: true, encoding: .utf8)
        let result = try settlenet(["scenario", "run", "\(output)/bad.yaml", "--out", "\(output)/report"])
        #expect(result.status == 2)
        #expect(result.error.contains("bad.yaml:8: field load.settlements.mux: unknown key"), "\(result.error)")
        #expect(!FileManager.default.fileExists(atPath: "\(output)/report/cluster"))
    }
}
