import ClusterControl
import Foundation
import GRDB
import NetworkTopology
import SettlementCore
import SettlementModel
import Testing

/// A size-limited tmpfs can be mounted here: the test needs root (or CAP_SYS_ADMIN).
private let canMountTmpfs: Bool = {
    guard geteuid() == 0 else { return false }
    let probe = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-mount-probe-\(UUID().uuidString)").path
    guard (try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)) != nil else { return false }
    defer { try? FileManager.default.removeItem(atPath: probe) }
    guard let mounted = try? runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]), mounted.status == 0 else { return false }
    _ = try? runProgram("/bin/umount", [probe])
    return true
}()

/// Issue 21, item 2: the disk under a node's ledger fills up. The insured county 410102's node
/// directory is a 6 MiB tmpfs mounted by the test; the test then fills what is left of it.
@Suite struct DiskFullTests {
    @Test(.enabled(if: canMountTmpfs, "needs root to mount a size-limited tmpfs under the node's ledger (mount -t tmpfs -o size=6m)"))
    func aNodeOnAFullDiskRefusesNewWorkAnswersWhatItKnowsAndResumesWhenSpaceReturns() throws {
        let cluster = try TestCluster()
        let county = DivisionCode("410102")!
        let nodeDirectory = DataLayout(root: cluster.dataDirectory).nodeDirectory(county)
        let filler = "\(nodeDirectory)/filler"
        var mounted = false
        defer {
            cluster.shutDown()   // before the unmount: the county's ledger is on the tmpfs
            if mounted { _ = try? runProgram("/bin/umount", ["-l", nodeDirectory]) }
            cluster.tearDown()
        }
        try FileManager.default.createDirectory(atPath: nodeDirectory, withIntermediateDirectories: true)
        let mount = try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", nodeDirectory])
        try #require(mount.status == 0, "mount: \(mount.error)")
        mounted = true
        try cluster.start()
        let record = try Cluster(dataDirectory: cluster.dataDirectory).record()
        let countyPid = try #require(record.nodes.first { $0.id == county.value }?.pid)
        #expect(FileManager.default.fileExists(atPath: "\(nodeDirectory)/space.reserve"), "the node set no reserve aside")

        let population = try #require(cluster.topology.population(of: county))
        var factory = RequestFactory(institution: "H41010200001", treatment: county, firstSequence: 500)
        var person = 0
        func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
        func settlement() -> WireRequest {
            person += 1
            return factory.settlement(psnNo: population.person(person).psnNo, insured: county,
                                      bill: .composed(totalFen: 10_000 + Int64(person)), inpatient: false, nowMs: now())
        }
        let client = try HospitalClient(endpoint: cluster.endpoint("410102"))
        var known: [(WireRequest, WireResponse)] = []
        for _ in 0..<5 {
            let request = settlement()
            let answer = try #require(try client.call(request), "no answer to \(request.msgid)")
            #expect(answer.infcode == 0, "\(answer.errMsg)")
            known.append((request, answer))
        }

        // The disk fills up: the test takes every byte left.
        let left = fillDisk(filler)
        #expect(left < 4_096, "\(left) bytes still free")
        // The ledger's log reuses the room it had; the county refuses once its ledger must grow.
        var refusal: WireResponse?
        var settledMeanwhile: [WireResponse] = []
        for _ in 0..<3_000 {
            let answer = try #require(try client.call(settlement()), "no answer while the disk filled up")
            if answer.infcode == 0 { settledMeanwhile.append(answer); continue }
            refusal = answer
            break
        }
        let refused = try #require(refusal, "3,000 settlements and the county never met its full disk")
        #expect(refused.errCode == ErrorCode.diskFull.rawValue, "\(refused.errMsg)")
        #expect(refused.errMsg.contains("node 410102") && refused.errMsg.contains("full"), "\(refused.errMsg)")

        // Full: new work refused definitely, what the ledger holds answered as before.
        for _ in 0..<3 {
            let answer = try #require(try client.call(settlement()))
            #expect(answer.errCode == ErrorCode.diskFull.rawValue, "\(answer.errMsg)")
        }
        for (request, answer) in known {
            let again = try #require(try client.call(request), "no answer to \(request.msgid) asked again on the full disk")
            #expect(again == answer, "\(request.msgid) answered differently on the full disk: \(again.errMsg)")
        }
        // From another province: refused definitely too, through every relay, nothing in doubt.
        let insuredAway = try #require(population.firstPerson(filedOffsite: true, from: 900))
        var away = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!, firstSequence: 500)
        let crossProvince = away.settlement(psnNo: insuredAway.psnNo, insured: county, bill: .composed(totalFen: 33_300),
                                            inpatient: false, nowMs: now())
        let awayAnswer = try #require(try HospitalClient(endpoint: cluster.endpoint("370211")).call(crossProvince))
        #expect(awayAnswer.errCode == ErrorCode.diskFull.rawValue, "\(awayAnswer.errMsg)")

        // A disk_full ticket, written into the room the reserve gave back, and at the registry.
        let ledgerPath = DataLayout(root: cluster.dataDirectory).ledgerPath(county)
        let opened = try #require(try tickets(ledgerPath).first { $0.kind == "disk_full" }, "no disk_full ticket at the county")
        #expect(opened.state != "closed" && opened.code == ErrorCode.diskFull.rawValue)
        let registry = DataLayout(root: cluster.dataDirectory).ledgerPath(DivisionCode("000000")!)
        #expect(try eventually(seconds: 30) { try tickets(registry).contains { $0.id == opened.id } }, "the registry never heard of the ticket")

        // Its operator sees it: the state in `cluster status`, and the gauge in its metrics.
        #expect(try eventually(seconds: 10) { try countyState(cluster) == "disk_full" }, "cluster status does not say disk_full")
        #expect(try diskFullGauge(cluster) == 1)

        // It does not spin while it waits: a second of CPU in three is far more than an idle node's.
        let ticksBefore = try cpuTicks(countyPid)
        Thread.sleep(forTimeInterval: 3)
        let ticks = try cpuTicks(countyPid) - ticksBefore
        #expect(ticks < 100, "\(ticks) ticks of CPU in 3 s on the full disk")
        #expect(kill(countyPid, 0) == 0, "the county's process died")

        // Space returns: the county takes new work again by itself, and closes the ticket.
        try FileManager.default.removeItem(atPath: filler)
        var resumed: WireResponse?
        _ = try eventually(seconds: 30) {
            let answer = try #require(try client.call(settlement()))
            if answer.infcode == 0 { resumed = answer; return true }
            #expect(answer.errCode == ErrorCode.diskFull.rawValue, "\(answer.errMsg)")
            return false
        }
        let settledAgain = try #require(resumed, "no settlement taken 30 s after space returned")
        #expect(try eventually(seconds: 10) { try tickets(ledgerPath).first { $0.id == opened.id }?.state == "closed" },
                "the disk_full ticket was not closed")
        #expect(kill(countyPid, 0) == 0 && cluster.recordedPids.contains(countyPid), "the county restarted or died")
        #expect(try eventually(seconds: 10) { try countyState(cluster) == "running" })
        #expect(try diskFullGauge(cluster) == 0)

        // Nothing lost or given twice, and every tier agrees.
        let setlIDs = (known.map(\.1) + settledMeanwhile + [settledAgain]).map(\.settlement.setlID)
        #expect(Set(setlIDs).count == setlIDs.count, "a setl_id given twice: \(setlIDs)")
        let reconcile = try settlenet(["reconcile", "--data-dir", cluster.dataDirectory])
        #expect(reconcile.status == 0, "\(reconcile.output)\(reconcile.error)")
    }

    /// The county's state as `cluster status --json` gives it.
    private func countyState(_ cluster: TestCluster) throws -> String? {
        let status = try settlenet(["cluster", "status", "--data-dir", cluster.dataDirectory, "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [[String: Any]]
        return rows?.first { $0["node"] as? String == "410102" }?["state"] as? String
    }

    /// The county's `settlenet_disk_full` sample, scraped from the endpoint its status file names.
    private func diskFullGauge(_ cluster: TestCluster) throws -> Double? {
        let status = try #require(try Cluster(dataDirectory: cluster.dataDirectory).readStatus("410102"))
        let url = try #require(status.metrics, "the county serves no metrics")
        let scrape = try runProgram("/usr/bin/env", ["python3", "-c", """
            import sys, urllib.request
            with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
                sys.stdout.write(answer.read().decode())
            """, url])
        let sample = scrape.output.split(separator: "\n").first { $0.hasPrefix("settlenet_disk_full{") && $0.contains("node=\"410102\"") }
        return sample?.split(separator: " ").last.flatMap { Double($0) }
    }

    /// Writes zeros to `path` until the disk takes no more, then returns what `statvfs` says is left.
    private func fillDisk(_ path: String) -> Int64 {
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o644)
        guard descriptor >= 0 else { return -1 }
        defer { close(descriptor) }
        let zeros = [UInt8](repeating: 0, count: 64 * 1_024)
        for chunk in [65_536, 4_096, 512, 1] {
            while zeros.withUnsafeBytes({ write(descriptor, $0.baseAddress, chunk) }) == chunk {}
        }
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return -1 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    private struct TicketRow { var id, kind, state, code: String }

    /// A ledger's tickets, read without writing: the ledger may be on the full disk.
    private func tickets(_ ledgerPath: String) throws -> [TicketRow] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: ledgerPath, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT ticket_id, kind, state, code FROM tickets").map {
                TicketRow(id: $0["ticket_id"], kind: $0["kind"], state: $0["state"], code: $0["code"])
            }
        }
    }

    /// utime + stime of a process, in clock ticks.
    private func cpuTicks(_ pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Polls `condition` every 200 ms until it holds or `seconds` pass.
    private func eventually(seconds: Double, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return try condition()
    }
}
