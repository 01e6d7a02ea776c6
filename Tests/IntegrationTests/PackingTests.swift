import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel
import Testing

/// Nodes packed into processes: every node keeps its own sockets, ledger, sign-in and log, the
/// cluster settles every route class, and the answers are the ones an unpacked cluster gives.
@Suite(.serialized) struct PackingTests {
    func statusRows(_ dataDirectory: String) throws -> [NodeStatusRow] {
        let result = try settlenet(["cluster", "status", "--data-dir", dataDirectory, "--json"])
        #expect(result.status == 0, "\(result.error)")
        // Endpoints as they are written: no JSON SettleNet prints escapes `/` (`tcp:\/\/...`).
        #expect(result.output.contains("tcp://") && !result.output.contains("\\/"), "\(result.output)")
        return try JSONDecoder().decode([NodeStatusRow].self, from: Data(result.output.utf8))
    }

    func probe(_ dataDirectory: String, seed: Int = 1) throws -> (status: Int32, outcomes: [RouteProbe.Outcome]) {
        let result = try settlenet(["cluster", "probe", "--data-dir", dataDirectory, "--json", "--seed", String(seed)])
        let outcomes = (try? JSONDecoder().decode([RouteProbe.Outcome].self, from: Data(result.output.utf8))) ?? []
        #expect(!outcomes.isEmpty, "probe printed no outcomes: \(result.error)")
        return (result.status, outcomes)
    }

    @Test func aPackedShandongClusterSettlesEveryRouteClass() throws {
        let cluster = try TestCluster(topologyFile: "Topologies/shandong.yaml")
        defer { cluster.shutDown(); cluster.removeFiles() }
        let up = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                "--base-port", String(cluster.topology.basePort), "--pack", "province-tier", "--timeout", "120"])
        try #require(up.status == 0, "cluster up failed: \(up.output)\(up.error)")

        let rows = try statusRows(cluster.dataDirectory)
        #expect(rows.count == cluster.topology.nodes.count)
        #expect(rows.allSatisfy { $0.up && $0.signedIn })
        // One process for the national node, and per province one each for the province, its cities, its counties.
        #expect(Set(rows.map(\.process)) == ["000000", "370000-province", "370000-cities", "370000-counties",
                                              "410000-province", "410000-cities", "410000-counties"])
        #expect(Set(rows.map(\.pid)).count == 7)
        #expect(rows.first { $0.node == "370211" }?.process == "370000-counties")
        #expect(Set(rows.map(\.endpoint)).count == rows.count, "every packed node keeps its own endpoint")

        let (status, outcomes) = try probe(cluster.dataDirectory)
        #expect(status == 0)
        for route in RouteClass.allCases {
            let mine = outcomes.filter { $0.route == route.rawValue }
            #expect(!mine.isEmpty && mine.allSatisfy(\.settled), "\(route.rawValue): \(mine.map { "\($0.treatment)->\($0.insured) \($0.error ?? "")" })")
        }
        #expect(outcomes.filter { $0.route == RouteClass.crossProvince.rawValue }.count == 2)

        // Each packed node logs to its own file.
        let log = try settlenet(["cluster", "logs", "--data-dir", cluster.dataDirectory, "--node", "370211"])
        #expect(log.output.contains("signed in") && log.output.contains("node=370211"))
        #expect(!log.output.contains("node=370202"))

        // Restarting a packed node restarts its process, with every node in it signing in again.
        let before = try #require(rows.first { $0.node == "370211" }?.pid)
        let restart = try settlenet(["cluster", "restart", "--data-dir", cluster.dataDirectory, "--node", "370211"])
        #expect(restart.status == 0, "\(restart.output)\(restart.error)")
        #expect(restart.output.contains("with the \(rows.filter { $0.process == "370000-counties" }.count - 1) nodes of its process"))
        let after = try statusRows(cluster.dataDirectory)
        #expect(!isRunning(before, of: cluster.dataDirectory))
        #expect(after.allSatisfy { $0.up && $0.signedIn })
        #expect(Set(after.filter { $0.process == "370000-counties" }.map(\.pid)).count == 1)

        // A wait too short for the whole process (it took 3.5 s on an idle machine) fails with what
        // to do, and leaves the process running: every one of its nodes then becomes ready.
        let hurried = try settlenet(["cluster", "restart", "--data-dir", cluster.dataDirectory, "--node", "370211", "--timeout", "0.2"])
        #expect(hurried.status != 0)
        #expect(hurried.error.contains("of 136 nodes did not sign in within 0.2 s") && hurried.error.contains("keeps running")
                && hurried.error.contains("settlenet cluster ready --data-dir \(cluster.dataDirectory) --node 370211 --wait 120"),
                "\(hurried.output)\(hurried.error)")
        let counties = after.filter { $0.process == "370000-counties" }.flatMap { ["--node", $0.node] }
        // 120 s: 34 times the idle restart, for a machine busy with the rest of the suite.
        let ready = try settlenet(["cluster", "ready", "--data-dir", cluster.dataDirectory, "--wait", "120"] + counties)
        #expect(ready.status == 0, "\(ready.output)\(ready.error)")

        let pids = cluster.recordedPids
        cluster.shutDown()
        #expect(pids.allSatisfy { !isRunning($0, of: cluster.dataDirectory) }, "cluster down leaves no packed process behind")
    }

    @Test func packedAndUnpackedClustersGiveTheSameAnswers() throws {
        let unpacked = try TestCluster()
        defer { unpacked.shutDown(); unpacked.removeFiles() }
        let upA = try unpacked.up()
        try #require(upA.status == 0, "\(upA.output)\(upA.error)")
        let packed = try TestCluster()
        defer { packed.shutDown(); packed.removeFiles() }
        let upB = try settlenet(["cluster", "up", "--topology", packed.topology.file, "--data-dir", packed.dataDirectory,
                                 "--base-port", String(packed.topology.basePort), "--pack", "4"])
        try #require(upB.status == 0, "\(upB.output)\(upB.error)")
        #expect(Set(try statusRows(packed.dataDirectory).map(\.pid)).count == 4, "15 nodes, at most 4 per process")

        // Twice the same probes: the second round sees the first round's deductible and balances.
        for seed in [3, 3] {
            let a = try probe(unpacked.dataDirectory, seed: seed)
            let b = try probe(packed.dataDirectory, seed: seed)
            #expect(a.status == 0 && b.status == 0)
            #expect(a.outcomes.count == b.outcomes.count)
            for (one, other) in zip(a.outcomes, b.outcomes) {
                #expect(one.route == other.route && one.treatment == other.treatment && one.insured == other.insured)
                #expect(one.settled && other.settled)
                #expect(!one.amountsFen.isEmpty && one.amountsFen == other.amountsFen,
                        "\(one.treatment)->\(one.insured): \(one.amountsFen) unpacked, \(other.amountsFen) packed")
            }
        }
    }

    /// One reactor thread steps every node of a packed process: 15 nodes, every route class
    /// settled, and the process has its one thread, the commit threads that sync the ledgers
    /// (at most `CommitWriters.maxThreads`, whatever the nodes), and no other: every link is
    /// spoken on the reactor's thread (no libzmq I/O thread nor reaper).
    /// Parents and children in the process hand their messages over in memory.
    /// (Metrics off: their HTTP endpoint runs on Swift concurrency's threads, which come and go.)
    @Test func aPackedProcessRunsAllItsNodesOnOneThread() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("packed-threads-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try String(contentsOfFile: "\(repositoryRoot)/Topologies/minimal.yaml", encoding: .utf8)
            .replacingOccurrences(of: "metrics_port: 1000", with: "metrics_port: off")
            .write(toFile: "\(base)/minimal.yaml", atomically: true, encoding: .utf8)
        let cluster = try TestCluster(topologyFile: "\(base)/minimal.yaml")
        defer { cluster.shutDown(); cluster.removeFiles() }
        let up = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                "--base-port", String(cluster.topology.basePort), "--pack", "15"])
        try #require(up.status == 0, "\(up.output)\(up.error)")
        let rows = try statusRows(cluster.dataDirectory)
        let pids = Set(rows.map(\.pid))
        #expect(rows.count == 15 && pids.count == 1, "\(rows.map { "\($0.node) \($0.pid)" })")
        let settled = try probe(cluster.dataDirectory)
        #expect(settled.status == 0 && settled.outcomes.allSatisfy(\.settled), "\(settled.outcomes)")

        let pid = try #require(pids.first)
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").map { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        }
        // The reactor and four commit threads for 15 nodes (the commit threads name themselves
        // commit-N, but a name set by the thread itself can lag its start: counted, not named).
        #expect(threads.count == 1 + 4, "one reactor and 4 commit threads for 15 nodes: \(threads)")
        #expect(!threads.contains { $0.hasPrefix("ZMQbg/") }, "\(threads)")

        // No node holds a TCP link to a parent in its own process: the process has no connection
        // out to any node's port (the probe's hospital links are gone; before, 14 children did).
        let fdDirectory = "/proc/\(pid)/fd"
        let socketInodes = Set(try FileManager.default.contentsOfDirectory(atPath: fdDirectory).compactMap { fd -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)"),
                  target.hasPrefix("socket:[") else { return nil }
            return String(target.dropFirst("socket:[".count).dropLast())
        })
        let nodePorts = Set(cluster.topology.nodes.compactMap { node in
            cluster.topology.endpoint(of: node.id).flatMap { $0.split(separator: ":").last.flatMap { Int($0) } }
        })
        var toNodePorts = 0
        for line in try String(contentsOfFile: "/proc/\(pid)/net/tcp", encoding: .utf8).split(separator: "\n").dropFirst() {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[3] == "01", socketInodes.contains(String(fields[9])),
                  let remotePort = fields[2].split(separator: ":").last.flatMap({ Int($0, radix: 16) }) else { continue }
            if nodePorts.contains(remotePort) { toNodePorts += 1 }
        }
        #expect(!nodePorts.isEmpty && toNodePorts == 0, "\(toNodePorts) connections from the packed process to its own nodes' ports")

        // The probe's settlements passed every city in memory, both ways (the status file is
        // rewritten within the idle interval of a packed node, 5 s).
        let layout = DataLayout(root: cluster.dataDirectory)
        for city in ["370100", "370200", "410100", "410300"] {
            let path = layout.statusPath(DivisionCode(city)!)
            var handedOver: Int64 = 0
            let deadline = Date().addingTimeInterval(30)
            while handedOver == 0 && Date() < deadline {
                if let data = FileManager.default.contents(atPath: path), let status = try? JSONDecoder().decode(NodeStatus.self, from: data) {
                    handedOver = status.handedOverInMemory ?? 0
                }
                if handedOver == 0 { usleep(100_000) }
            }
            #expect(handedOver > 0, "city \(city) handed nothing over in memory")
        }
        // Every cross-province settlement passed the national node, which relays the request (its
        // budget replaced in place) and the answer as received, without encoding either again.
        let nationalPath = layout.statusPath(DivisionCode("000000")!)
        var passedThrough: Int64 = 0
        let deadline = Date().addingTimeInterval(30)
        while passedThrough < 2 && Date() < deadline {
            if let data = FileManager.default.contents(atPath: nationalPath), let status = try? JSONDecoder().decode(NodeStatus.self, from: data) {
                passedThrough = status.passedThrough ?? 0
            }
            if passedThrough < 2 { usleep(100_000) }
        }
        #expect(passedThrough >= 2, "the national node encoded again what it relayed")
    }

    /// One process per node: every hop goes over TCP, none in memory.
    @Test func unpackedNodesHandNothingOverInMemory() throws {
        let cluster = try TestCluster()
        defer { cluster.shutDown(); cluster.removeFiles() }
        let up = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                "--base-port", String(cluster.topology.basePort)])
        try #require(up.status == 0, "\(up.output)\(up.error)")
        let settled = try probe(cluster.dataDirectory)
        #expect(settled.status == 0 && settled.outcomes.allSatisfy(\.settled), "\(settled.outcomes)")
        // Status files of lone nodes are rewritten every 250 ms while busy: wait for the count of
        // messages handled to include the probe's, then read what went in memory.
        let layout = DataLayout(root: cluster.dataDirectory)
        let path = layout.statusPath(DivisionCode("370200")!)
        var status: NodeStatus?
        let deadline = Date().addingTimeInterval(30)
        while (status?.messagesHandled ?? 0) < 4 && Date() < deadline {
            status = FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(NodeStatus.self, from: $0) }
            if (status?.messagesHandled ?? 0) < 4 { usleep(100_000) }
        }
        let city = try #require(status)
        #expect(city.messagesHandled >= 4 && city.handedOverInMemory == 0, "\(city)")
    }

    @Test func aBadPackModeIsRefusedBeforeAnythingStarts() throws {
        let cluster = try TestCluster()
        defer { cluster.shutDown(); cluster.removeFiles() }
        let result = try settlenet(["cluster", "up", "--topology", cluster.topology.file, "--data-dir", cluster.dataDirectory,
                                    "--pack", "by-mood"])
        #expect(result.status != 0)
        #expect(result.error.contains("--pack by-mood") && result.error.contains("province-tier"))
        #expect(!FileManager.default.fileExists(atPath: "\(cluster.dataDirectory)/cluster.json"))
    }
}
