import Foundation
import NetworkTopology
import SettlementModel
import Synchronization
import ZeroMQ

/// Hospitals' keys, for the clients acting as hospitals (`settle`, the scenario runner, the
/// benchmark, `cluster probe`): each institution connects to its county with its own pair.
public final class HospitalKeys: Sendable {
    public let directory: KeyDirectory
    private let topology: Topology
    private let cache = Mutex<[String: ClientCredentials]>([:])

    public init(topology: Topology, directory: KeyDirectory) {
        self.topology = topology
        self.directory = directory
    }

    /// The credentials `institution` presents to `county`.
    public func credentials(institution: String, county: DivisionCode) throws(KeyError) -> ClientCredentials {
        let cacheKey = institution + "@" + county.value
        if let known = cache.withLock({ $0[cacheKey] }) { return known }
        let credentials = ClientCredentials(keys: try directory.keyPair(institution), serverKey: try directory.publicKey(county.value))
        cache.withLock { $0[cacheKey] = credentials }
        return credentials
    }

    /// The institutions of `county` holding a key, in registration order.
    public func institutionsWithKeys(of county: DivisionCode) -> [String] {
        topology.institutions(of: county).filter { FileManager.default.fileExists(atPath: directory.secretKeyPath($0)) }
    }
}

/// What a CURVE client presents: its own pair, and the server's public key it expects.
public struct ClientCredentials: Sendable {
    public let keys: CurveKeyPair
    public let serverKey: String

    public init(keys: CurveKeyPair, serverKey: String) {
        self.keys = keys
        self.serverKey = serverKey
    }

    public func apply(to socket: Socket) throws(ZeroMQError) {
        try socket.makeCurveClient(keys, serverKey: serverKey)
    }
}
