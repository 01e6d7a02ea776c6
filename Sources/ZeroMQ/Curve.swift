import CZeroMQ

/// A CURVE key pair (libzmq's CurveZMQ, with libsodium), in Z85 text: 40 characters each.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    /// Whether this libzmq was built with CURVE (it needs libsodium).
    public static var isAvailable: Bool { zmq_has("curve") == 1 }

    /// A fresh key pair from libsodium's random source.
    public static func generate() throws(ZeroMQError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&publicText, &secretText) }
        return CurveKeyPair(publicKey: zmqText(publicText), secretKey: zmqText(secretText))
    }

    /// The pair of a secret key (its public half is derived, so a key file need hold only the secret).
    public init(secretKey: String) throws(ZeroMQError) {
        guard Z85.decodeKey(secretKey) != nil else { throw ZeroMQError(code: EINVAL, operation: "CURVE secret key is not 40 Z85 characters") }
        var publicText = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_public") { zmq_curve_public(&publicText, secretKey) }
        self.publicKey = zmqText(publicText)
        self.secretKey = secretKey
    }

    init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

/// ZeroMQ's Z85 text encoding of binary keys (RFC 32).
public enum Z85 {
    /// The 32 bytes of a 40-character Z85 key, or nil if the text is not one.
    public static func decodeKey(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 40 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&bytes, text) != nil else { return nil }
        return bytes
    }

    /// The 40-character Z85 text of a 32-byte key.
    public static func encodeKey(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else { return nil }
        return zmqText(text)
    }
}

extension Socket {
    /// Makes this socket a CURVE server: peers must know `keys.publicKey`, and each one is put
    /// to the context's ZAP handler under `zapDomain` before any of its messages is read
    /// (nil: any client key is accepted when the context has no ZAP handler). Call before bind.
    public func makeCurveServer(_ keys: CurveKeyPair, zapDomain: String?) throws(ZeroMQError) {
        try setOption(ZMQ_CURVE_SERVER, 1, "CURVE_SERVER")
        try setText(ZMQ_CURVE_SECRETKEY, keys.secretKey, "CURVE_SECRETKEY")
        if let zapDomain { try setText(ZMQ_ZAP_DOMAIN, zapDomain, "ZAP_DOMAIN") }
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`,
    /// presenting `keys`. Call before connect.
    public func makeCurveClient(_ keys: CurveKeyPair, serverKey: String) throws(ZeroMQError) {
        try setText(ZMQ_CURVE_SERVERKEY, serverKey, "CURVE_SERVERKEY")
        try setText(ZMQ_CURVE_PUBLICKEY, keys.publicKey, "CURVE_PUBLICKEY")
        try setText(ZMQ_CURVE_SECRETKEY, keys.secretKey, "CURVE_SECRETKEY")
    }

    /// Sets the ZAP domain of a socket that is not a CURVE server (a plaintext socket is then
    /// put to the ZAP handler too).
    public func setZAPDomain(_ domain: String) throws(ZeroMQError) {
        try setText(ZMQ_ZAP_DOMAIN, domain, "ZAP_DOMAIN")
    }

    private func setText(_ option: Int32, _ text: String, _ name: String) throws(ZeroMQError) {
        let bytes = Array(text.utf8)
        try zmqCall("zmq_setsockopt(\(name))") {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }
}
