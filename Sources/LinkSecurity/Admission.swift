import Foundation
import Logging
import NetworkTopology
import SettlementModel
import Synchronization
import ZeroMQ

/// Who may open a link to a node: its children, its parent and, at county tier, the
/// institutions registered there. Nobody else, whatever id they claim.
public enum Admission {
    public static func peers(of id: DivisionCode, in topology: Topology) -> [String] {
        var names = topology.children(of: id).map(\.id.value)
        if let parent = topology.node(id)?.parent { names.append(parent.value) }
        return names + topology.institutions(of: id)
    }
}

/// The keys one node works with: its own pair (as server to its children and hospitals, and
/// as client of its parent), its parent's public key, and the public keys it admits.
public struct NodeKeys: Sendable {
    public let id: DivisionCode
    public let own: CurveKeyPair
    public let parentKey: String?
    /// Public key (Z85) to the name it authenticates: a node id or an institution code.
    public let admitted: [String: String]
    /// Registered institutions with no key in the directory (`keys generate --hospitals N`):
    /// they cannot connect.
    public let institutionsWithoutKeys: Int

    public init(id: DivisionCode, topology: Topology, keys: KeyDirectory) throws(SettleNetError) {
        self.id = id
        own = try keys.keyPair(id.value)
        parentKey = try topology.node(id)?.parent.map { parent throws(SettleNetError) in try keys.publicKey(parent.value) }
        var admitted: [String: String] = [:]
        var missing = 0
        let institutions = Set(topology.institutions(of: id))
        for name in Admission.peers(of: id, in: topology) {
            // An institution may have no key (`keys generate --hospitals N`): it cannot connect.
            // A node without one, or any key file that is unreadable, breaks the tree: say so.
            if institutions.contains(name) && !FileManager.default.fileExists(atPath: keys.publicKeyPath(name)) {
                missing += 1
                continue
            }
            admitted[try keys.publicKey(name)] = name
        }
        self.admitted = admitted
        institutionsWithoutKeys = missing
    }
}

/// Who is let through a secured node's port: each node's ROUTER is a CURVE server, and a peer
/// completing its handshake is admitted only if its public key is one the node admits (the
/// question ZAP puts to a handler in libzmq, asked here on the node's own thread). A refusal
/// is logged to the node's log with the peer's address and key id, never anything it sent (it
/// sent nothing yet: the handshake is not over).
public enum AdmissionGate {
    /// Refusals of one key at one node are logged once, then at most every 10 s with a count,
    /// so a peer reconnecting in a loop cannot flood the log.
    static let refusalLogIntervalMs: Int64 = 10_000

    /// The admission check of one node's port, logging its refusals.
    public static func admitting(_ keys: NodeKeys, logger: Logger) -> @Sendable (_ clientKey: String, _ address: String) -> ZAPDecision {
        let tables = [keys.id.value: keys.admitted]
        let refusals = RefusalLog()
        return { clientKey, address in
            let request = ZAPRequest(domain: keys.id.value, address: address, mechanism: "CURVE", clientKey: clientKey)
            let decision = decide(request, tables: tables)
            if case .refuse(let reason) = decision { refusals.note(request, reason: reason, logger: logger) }
            return decision
        }
    }

    /// The pure decision: admitted under its name, or refused with why.
    public static func decide(_ request: ZAPRequest, tables: [String: [String: String]]) -> ZAPDecision {
        guard let table = tables[request.domain] else { return .refuse(reason: "no node \(request.domain) here") }
        guard request.mechanism == "CURVE", let key = request.clientKey else {
            return .refuse(reason: "plaintext (\(request.mechanism)) link to a secured node")
        }
        guard let name = table[key] else { return .refuse(reason: "key not admitted") }
        return .admit(userID: name)
    }
}

/// Rate-limited refusal logging (called only on its node's thread; the lock is for Sendable).
final class RefusalLog: Sendable {
    private struct Entry { var lastLoggedMs: Int64; var suppressed: Int }
    private let entries = Mutex<[String: Entry]>([:])

    func note(_ request: ZAPRequest, reason: String, logger: Logger) {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let id = "\(request.domain)|\(request.clientKey ?? request.address)"
        let suppressed: Int? = entries.withLock { entries in
            if var entry = entries[id] {
                guard now - entry.lastLoggedMs >= AdmissionGate.refusalLogIntervalMs else {
                    entry.suppressed += 1
                    entries[id] = entry
                    return nil
                }
                let count = entry.suppressed
                entries[id] = Entry(lastLoggedMs: now, suppressed: 0)
                return count
            }
            if entries.count > 10_000 { entries.removeAll() }   // bounded: a scan with fresh keys cannot grow it forever
            entries[id] = Entry(lastLoggedMs: now, suppressed: 0)
            return 0
        }
        guard let suppressed else { return }
        // The key id is the public key itself: not secret, and what an operator greps the key directory for.
        logger.warning("peer refused", metadata: ["key.id": "\(request.clientKey ?? "none")",
                                                  "peer.address": "\(request.address)",
                                                  "mechanism": "\(request.mechanism)", "reason": "\(reason)",
                                                  "refusals.since_last": "\(suppressed)"])
    }
}
