@testable import ClusterControl
import Foundation
import Testing

/// How `cluster up` and `cluster down` recognise their own node processes.
@Suite struct ProcessTests {
    /// Right after posix_spawn returns, a child shows an empty command line until the kernel has
    /// placed its arguments: `cluster up` took such a node for one that had died at start-up
    /// (CI: "node processes exited during start-up", with an empty log). Asked at once, every
    /// freshly spawned process is recognised, and one of another data directory is not.
    @Test func aNodeProcessIsRecognisedTheMomentItIsSpawned() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cluster = Cluster(dataDirectory: directory)
        var pids: [pid_t] = []
        defer {
            for pid in pids { kill(pid, SIGKILL); Processes.reap(pid) }
            try? FileManager.default.removeItem(atPath: directory)
        }
        // A stand-in with a node's command line: the shell stays, so its arguments stay.
        for _ in 0..<20 {
            let pid = try Processes.spawn(["/bin/sh", "-c", "sleep 30; true", "node", "--data-dir", cluster.absoluteRoot, "--id", "410302"],
                                          logPath: "\(directory)/spawn.log")
            pids.append(pid)
            #expect(cluster.isOurNode(pid, id: "410302"), "process \(pid) taken for a dead node")
            #expect(!cluster.isOurNode(pid, id: "410303"))
            #expect(!Cluster(dataDirectory: directory + "-other").isOurNode(pid, id: "410302"), "another cluster's node")
        }
        for pid in pids { kill(pid, SIGKILL) }
        for pid in pids {
            var stopped = false
            for _ in 0..<500 where !stopped { stopped = !cluster.isOurNode(pid, id: "410302"); if !stopped { usleep(2_000) } }
            #expect(stopped, "process \(pid) still taken for a node after SIGKILL")
        }
    }
}
