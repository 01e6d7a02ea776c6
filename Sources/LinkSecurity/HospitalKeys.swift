import NetworkTopology
import SettlementModel
import ZeroMQ

/// Hospitals' keys, for the clients acting as hospitals (`settle`, the scenario runner, the
/// benchmark, `cluster probe`): each institution connects to its county with its own pair.
public struct HospitalKeys: Sendable {
    public let directory: KeyDirectory

    public init(directory: KeyDirectory) {
        self.directory = directory
    }

    /// The hospitals' keys of a running cluster: `explicit` (`--keys`), else the directory the
    /// cluster recorded at `cluster up`, else the one the topology names; nil on plaintext links.
    public static func of(_ topology: Topology, explicit: String?, recorded: String?) throws(SettleNetError) -> HospitalKeys? {
        guard topology.isSecured else { return nil }
        guard let root = explicit ?? recorded ?? topology.security?.keysDirectory else {
            throw SettleNetError(.keys, "\(topology.file) is secured (security.curve) but no key directory is known: give --keys DIR, or the --data-dir of a cluster `cluster up` started from it")
        }
        return HospitalKeys(directory: KeyDirectory(root: root))
    }

    /// The credentials `institution` presents to `county`.
    public func credentials(institution: String, county: DivisionCode) throws(SettleNetError) -> ClientCredentials {
        ClientCredentials(keys: try directory.keyPair(institution), serverKey: try directory.publicKey(county.value))
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

    /// The same keys for a `NativeDealer`.
    public func nativeSecurity() throws(SettleNetError) -> CurveClientSecurity {
        guard let security = CurveClientSecurity(keys, serverKey: serverKey) else {
            throw SettleNetError(.keys, "hospital key \(keys.publicKey) or its county's server key \(serverKey) is not 40 Z85 characters: make the keys again (cluster up makes those missing from its key directory)")
        }
        return security
    }
}
