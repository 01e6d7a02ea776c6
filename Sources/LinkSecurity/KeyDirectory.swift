import Foundation
import NetworkTopology
import SettlementModel
import ZeroMQ

/// A directory of CURVE keys, one pair per node and per hospital client:
///
///     DIR/public/<name>.key   the Z85 public key (mode 0644): what peers need to admit <name>
///     DIR/secret/<name>.key   the Z85 secret key (mode 0600, directory 0700): only <name> reads it
///
/// `<name>` is a node's division code (370211) or an institution code (H37021100001). The
/// public half can be handed to every host; each host needs only its own nodes' secrets.
public struct KeyDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
    }

    public var publicDirectory: String { "\(root)/public" }
    public var secretDirectory: String { "\(root)/secret" }
    public func publicKeyPath(_ name: String) -> String { "\(publicDirectory)/\(name).key" }
    public func secretKeyPath(_ name: String) -> String { "\(secretDirectory)/\(name).key" }

    /// Everyone who holds a key under a topology: every node, and the first `hospitalsPerCounty`
    /// registered institutions of each county (all of them when nil).
    public static func names(in topology: Topology, hospitalsPerCounty: Int? = nil) -> [String] {
        var names = topology.nodes.map(\.id.value)
        for county in topology.counties {
            let institutions = topology.institutions(of: county.id)
            names += institutions.prefix(hospitalsPerCounty ?? institutions.count)
        }
        return names
    }

    /// Creates a key pair for every name without one; existing pairs are kept (a key that
    /// changed would lock its owner out of every peer that admitted the old one).
    @discardableResult
    public func generate(for names: [String]) throws -> (created: Int, kept: Int) {
        guard CurveKeyPair.isAvailable else {
            throw SettleNetError(.keys, "this libzmq has no CURVE (it is built without libsodium): install libzmq3-dev from Debian")
        }
        let files = FileManager.default
        try files.createDirectory(atPath: publicDirectory, withIntermediateDirectories: true,
                                  attributes: [.posixPermissions: 0o755])
        try files.createDirectory(atPath: secretDirectory, withIntermediateDirectories: true,
                                  attributes: [.posixPermissions: 0o700])
        // An existing directory keeps its mode through createDirectory: tighten it.
        guard chmod(secretDirectory, 0o700) == 0 else { throw SettleNetError(.keys, "cannot restrict \(secretDirectory): \(String(cString: strerror(errno)))") }
        var created = 0, kept = 0
        for name in names {
            if files.fileExists(atPath: secretKeyPath(name)) && files.fileExists(atPath: publicKeyPath(name)) {
                kept += 1
                continue
            }
            let pair = try CurveKeyPair.generate()
            // The secret is created with its final mode, never briefly readable by others.
            try write(pair.secretKey + "\n", to: secretKeyPath(name), mode: 0o600)
            try write(pair.publicKey + "\n", to: publicKeyPath(name), mode: 0o644)
            created += 1
        }
        return (created, kept)
    }

    /// The public key of `name`.
    public func publicKey(_ name: String) throws(SettleNetError) -> String {
        let path = publicKeyPath(name)
        let text = try read(path, of: name)
        guard Z85.decodeKey(text) != nil else { throw SettleNetError(.keys, "\(path): not a 40-character Z85 CURVE public key") }
        return text
    }

    /// The key pair of `name`, from its secret key file; refused when others can read it.
    public func keyPair(_ name: String) throws(SettleNetError) -> CurveKeyPair {
        let path = secretKeyPath(name)
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw SettleNetError(.keys, "\(path): secret key of \(name) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 \(path)")
        }
        let text = try read(path, of: name)
        do {
            return try CurveKeyPair(secretKey: text)
        } catch {
            throw SettleNetError(.keys, "\(path): not a 40-character Z85 CURVE secret key")
        }
    }

    private func read(_ path: String, of name: String) throws(SettleNetError) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT {
                throw SettleNetError(.keys, "no key for \(name): \(path) is missing (make keys with: settlenet keys generate --topology FILE --out \(root))")
            }
            // Not "missing": out of descriptors (EMFILE) or permissions say something else entirely.
            throw SettleNetError(.keys, "cannot read the key of \(name), \(path): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)   // a Z85 key and a newline; more is not a key file
        let count = Foundation.read(fd, &buffer, buffer.count)
        guard count >= 0 else { throw SettleNetError(.keys, "cannot read the key of \(name), \(path): \(String(cString: strerror(errno)))") }
        return String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw SettleNetError(.keys, "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Foundation.write(fd, bytes, bytes.count) == bytes.count, fchmod(fd, mode) == 0 else {
            throw SettleNetError(.keys, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Where a cluster's keys are: `--keys DIR` when given, else the directory the topology
    /// names, else DATA_DIR/keys (which `cluster up` fills when it is empty).
    public static func location(topology: Topology, explicit: String?, dataDirectory: String) -> KeyDirectory {
        if let explicit { return KeyDirectory(root: explicit) }
        if let named = topology.security?.keysDirectory { return KeyDirectory(root: named) }
        return KeyDirectory(root: DataLayout(root: dataDirectory).keysDirectory)
    }
}

