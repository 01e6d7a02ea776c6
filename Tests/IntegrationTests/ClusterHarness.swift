import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// The built settlenet binary: $SETTLENET_BIN, else beside the test bundle, else .build/debug.
let settlenetBinary: String = {
    if let path = ProcessInfo.processInfo.environment["SETTLENET_BIN"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("settlenet").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    return "\(repositoryRoot)/.build/debug/settlenet"
}()

struct CommandResult {
    var status: Int32
    var output: String
    var error: String
}

/// Runs the settlenet binary to completion from the repository root.
@discardableResult
func settlenet(_ arguments: [String]) throws -> CommandResult {
    try runProgram(settlenetBinary, arguments)
}

/// Runs any program to completion from the repository root, capturing its output.
@discardableResult
func runProgram(_ path: String, _ arguments: [String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
    // Files, not pipes: a pipe's reader would wait for every process holding its write end.
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-cli-\(UUID().uuidString)").path
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    try process.run()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus,
                         output: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                         error: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
}

/// A cluster of real node processes on free ports in a fresh directory. `shutDown` stops it;
/// it runs from `defer`, so the processes go also when a test fails.
final class TestCluster {
    let dataDirectory: String
    let topology: Topology

    /// `topologyFile`: relative to the repository, or an absolute path.
    init(topologyFile: String = "Topologies/minimal.yaml") throws {
        dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-it-\(UUID().uuidString)").path
        let loaded = try TopologyLoader.load(path: topologyFile.hasPrefix("/") ? topologyFile : "\(repositoryRoot)/\(topologyFile)")
        let port = try #require(Cluster.freeBasePort(for: loaded, preferOwn: false))
        topology = loaded.withBasePort(port)
    }

    func up() throws -> CommandResult {
        try settlenet(["cluster", "up", "--topology", topology.file, "--data-dir", dataDirectory,
                       "--base-port", String(topology.basePort)])
    }

    func endpoint(_ id: String) -> String { topology.endpoint(of: DivisionCode(id)!)! }

    /// Pids recorded at start, read before shutdown so the test can check they are gone.
    var recordedPids: [Int32] { (try? Cluster(dataDirectory: dataDirectory).record().nodes.map(\.pid)) ?? [] }

    func shutDown() {
        _ = try? settlenet(["cluster", "down", "--data-dir", dataDirectory, "--grace", "5"])
        // Last resort if the CLI itself failed: no process may outlive the test.
        for pid in recordedPids where isRunning(pid, of: dataDirectory) { kill(pid, SIGKILL) }
    }

    func removeFiles() { try? FileManager.default.removeItem(atPath: dataDirectory) }

    /// Every pid the cluster's record has named when asked (`noteProcesses`): a restarted node's
    /// old process must be gone too.
    private(set) var seenPids: Set<Int32> = []
    func noteProcesses() { seenPids.formUnion(recordedPids) }

    /// `cluster up` (with `extra` arguments), required to succeed, and its processes noted.
    func start(_ extra: [String] = []) throws {
        let result = try settlenet(["cluster", "up", "--topology", topology.file, "--data-dir", dataDirectory,
                                    "--base-port", String(topology.basePort)] + extra)
        try #require(result.status == 0, "cluster up failed: \(result.output) \(result.error)")
        noteProcesses()
    }

    /// From `defer`: stops the cluster, checks that no process it ever had is left, and removes
    /// its files (kept, and named, when `SETTLENET_KEEP_DATA` is set, to look into).
    func tearDown() {
        noteProcesses()
        shutDown()
        for pid in seenPids { #expect(!isRunning(pid, of: dataDirectory), "process \(pid) left behind") }
        if ProcessInfo.processInfo.environment["SETTLENET_KEEP_DATA"] == nil { removeFiles() } else { print("kept \(dataDirectory)") }
    }
}

/// True while `pid` is a node process of the cluster in `dataDirectory`. The pid alone is not
/// enough: once its process exited, the pid may go to another process, another test's node even,
/// which a cleanup must not kill (a node killed so at start-up leaves an empty log).
func isRunning(_ pid: Int32, of dataDirectory: String) -> Bool {
    Cluster(dataDirectory: dataDirectory).isRunningNode(pid: pid)
}
