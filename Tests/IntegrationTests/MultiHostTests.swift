import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel
import Testing

/// Two network namespaces joined by a veth pair stand in for two machines: one topology file
/// places Shandong (and the national node) on host `east` and Henan on host `west`, each side
/// runs `cluster up --host` for its own nodes, and settlements cross between them.
/// Needs root and `ip netns`; skipped where the machine does not allow it.
@Suite(.serialized) struct MultiHostTests {
    @Test(.enabled(if: TwoHosts.available, "needs root and ip netns (network namespaces)"))
    func aClusterSplitOverTwoHostsSettlesAcrossThem() throws {
        let hosts = try TwoHosts()
        defer { hosts.remove() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-hosts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // The minimal topology, placed on two hosts: the national node and Shandong east, Henan west.
        var text = try String(contentsOfFile: "\(repositoryRoot)/Topologies/minimal.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "base_port: 17100", with: "base_port: 17100\nhosts:\n  - { name: east, address: \(hosts.eastAddress) }\n  - { name: west, address: \(hosts.westAddress) }")
        text = text.replacingOccurrences(of: "port: 0 }", with: "port: 0, host: east }")
        text = text.replacingOccurrences(of: "    name: 山东省\n", with: "    name: 山东省\n    host: east\n")
        text = text.replacingOccurrences(of: "    name: 河南省\n", with: "    name: 河南省\n    host: west\n")
        let file = "\(directory)/two-hosts.yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let topology = try TopologyLoader.load(path: file)
        #expect(topology.nodes(onHost: "east").count == 8 && topology.nodes(onHost: "west").count == 7)

        let eastData = "\(directory)/east", westData = "\(directory)/west"
        defer {
            for data in [eastData, westData] {
                _ = try? settlenet(["cluster", "down", "--data-dir", data, "--grace", "5"])
                for pid in (try? Cluster(dataDirectory: data).record().nodes.map(\.pid)) ?? [] where isRunning(pid, of: data) { kill(pid, SIGKILL) }
            }
        }
        // Each machine starts its own nodes with the same file; west's provinces sign in to the
        // national node east, so both launches run at once, as operators on two machines would.
        let launches = [(hosts.east, "east", eastData), (hosts.west, "west", westData)].map { namespace, host, data in
            Launch(namespace: namespace, arguments: ["cluster", "up", "--topology", file, "--data-dir", data, "--host", host, "--timeout", "60"])
        }
        let results = launches.map { $0.wait() }
        for result in results { try #require(result.status == 0, "cluster up failed: \(result.output)\(result.error)") }

        let east = try JSONDecoder().decode([NodeStatusRow].self, from: Data(try settlenet(["cluster", "status", "--data-dir", eastData, "--json"]).output.utf8))
        let west = try JSONDecoder().decode([NodeStatusRow].self, from: Data(try settlenet(["cluster", "status", "--data-dir", westData, "--json"]).output.utf8))
        #expect(Set(east.map(\.node)) == Set(topology.nodes(onHost: "east").map(\.id.value)))
        #expect(Set(west.map(\.node)) == Set(topology.nodes(onHost: "west").map(\.id.value)))
        #expect((east + west).allSatisfy { $0.up && $0.signedIn })
        #expect(west.allSatisfy { $0.endpoint.contains(hosts.westAddress) })

        // A hospital on each side settles for a person insured on the other.
        for (namespace, at, insured) in [(hosts.east, "370211", "410102"), (hosts.west, "410302", "370102")] {
            let answer = try runProgram("/usr/sbin/ip", ["netns", "exec", namespace, settlenetBinary, "settle", "--topology", file,
                                                         "--at", at, "--insured", insured, "--amount", "350.00"])
            #expect(answer.status == 0, "\(at) -> \(insured): \(answer.output)\(answer.error)")
            #expect(answer.output.contains("\"infcode\": 0") || answer.output.contains("\"infcode\":0") || !answer.output.contains("infcode\": -1"))
        }
        // The other machine's nodes are not reachable from outside the two: the split is real.
        let outside = try settlenet(["settle", "--topology", file, "--at", "410302", "--insured", "370102", "--amount", "1.00", "--timeout", "1"])
        #expect(outside.status == 2, "no answer outside the two hosts")
    }
}

/// Two network namespaces joined by a veth pair on a private /24, removed by `remove()`.
struct TwoHosts {
    let east: String, west: String
    let eastAddress: String, westAddress: String

    static let available: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { return false }
        let name = "sn-check-\(getpid())"
        guard (try? runProgram("/usr/sbin/ip", ["netns", "add", name]))?.status == 0 else { return false }
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", name])
        return true
    }()

    init() throws {
        let tag = String(UInt32.random(in: 0..<0xFFFF), radix: 16)
        let subnet = Int.random(in: 1...250)
        east = "sn-east-\(tag)"
        west = "sn-west-\(tag)"
        eastAddress = "10.77.\(subnet).1"
        westAddress = "10.77.\(subnet).2"
        let steps: [[String]] = [
            ["netns", "add", east], ["netns", "add", west],
            ["link", "add", "sne\(tag)", "type", "veth", "peer", "name", "snw\(tag)"],
            ["link", "set", "sne\(tag)", "netns", east], ["link", "set", "snw\(tag)", "netns", west],
            ["-n", east, "addr", "add", "\(eastAddress)/24", "dev", "sne\(tag)"],
            ["-n", west, "addr", "add", "\(westAddress)/24", "dev", "snw\(tag)"],
            ["-n", east, "link", "set", "sne\(tag)", "up"], ["-n", west, "link", "set", "snw\(tag)", "up"],
            ["-n", east, "link", "set", "lo", "up"], ["-n", west, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let result = try runProgram("/usr/sbin/ip", step)
            if result.status != 0 {
                remove()
                throw SettleNetError(.cluster, "ip \(step.joined(separator: " ")) failed: \(result.error)")
            }
        }
    }

    /// Deleting a namespace deletes its end of the veth, and with it the other end.
    func remove() {
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", east])
        _ = try? runProgram("/usr/sbin/ip", ["netns", "del", west])
    }
}

/// A settlenet command started in a namespace, waited for later.
final class Launch: @unchecked Sendable {  // `outcome` is written before `done` is signalled, read after waiting on it
    private let done = DispatchSemaphore(value: 0)
    private var outcome: CommandResult?

    init(namespace: String, arguments: [String]) {
        Thread { [self] in
            outcome = try? runProgram("/usr/sbin/ip", ["netns", "exec", namespace, settlenetBinary] + arguments)
            done.signal()
        }.start()
    }

    func wait() -> CommandResult {
        done.wait()
        return outcome ?? CommandResult(status: -1, output: "", error: "could not run ip netns exec")
    }
}
