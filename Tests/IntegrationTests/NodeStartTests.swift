import ClusterControl
import Foundation
import Logging
import NetworkTopology
import NodeRuntime
import SettlementModel
import Testing
import ZeroMQ

/// How a node process starts beside other clusters on the same machine.
@Suite struct NodeStartTests {
    /// A node presents its routing id to its parent only when asked to dial, which its process
    /// does once every node it hosts has bound its port. A packed process that fails on its
    /// third node's port must not have taken over, meanwhile, the link of a node of the same id
    /// in another cluster (the parent's ROUTER hands an id over to the newest connection).
    @Test func aNodeDialsItsParentOnlyWhenAskedTo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-start-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loaded = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        let topology = loaded.withBasePort(try #require(Cluster.freeBasePort(for: loaded, preferOwn: false)))
        let city = DivisionCode("370100")!

        // The city's parent, as another cluster's province would be: it notes every handshake.
        let context = try Context()
        let parent = try context.socket(.router)
        defer { parent.close() }
        let handshakes = try parent.monitor(events: SocketEvent.handshakeSucceeded, name: "fake-province")
        defer { handshakes.close() }
        try parent.bind(topology.endpoint(of: DivisionCode("370000")!)!)

        let shell = try NodeShell(topology: topology, id: city, dataDirectory: directory,
                                  logger: Logger(label: "test.node-start") { _ in SwiftLogNoOpLogHandler() }, nowMs: 0)
        defer { shell.abort() }
        // The node's own sockets do their I/O when read, as its reactor reads them.
        var poller = Poller([handshakes])
        func handshakeSeen(withinMs timeoutMs: Int) throws -> Bool {
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1_000)
            while Date() < deadline {
                for socket in shell.sockets { _ = try socket.receive(wait: false) }
                if try poller.poll(timeoutMs: 20)[0] { return true }
            }
            return false
        }
        #expect(try !handshakeSeen(withinMs: 1_000), "the city dialled its parent before it was asked to")
        try shell.connectToParent()
        #expect(try handshakeSeen(withinMs: 30_000), "the city never dialled its parent")
        let frames = try #require(try handshakes.receive(wait: false))
        #expect(SocketEvent(frames: frames)?.event == SocketEvent.handshakeSucceeded)
    }

    /// A node port in the ephemeral range may be taken by any outgoing connection before its
    /// node binds it (the national topology at base port 30000 failed so): `cluster up` warns,
    /// and names a base port that keeps clear.
    @Test func nodePortsInTheEphemeralRangeAreWarnedAbout() {
        let range = 32_768...60_999
        #expect(Cluster.ephemeralOverlap(ports: Array(20_000..<23_226), basePort: 20_000, range: range) == nil)
        let warning = Cluster.ephemeralOverlap(ports: Array(30_000..<33_226), basePort: 30_000, range: range)
        #expect(warning?.contains("458 node ports (32768-33225)") == true, "\(warning ?? "no warning")")
        #expect(warning?.contains("a --base-port of at most 29542 keeps clear") == true, "\(warning ?? "no warning")")
    }
}
