import CZeroMQ

/// One event a monitored socket reported (zmq_socket_monitor): what happened, its value (an
/// errno, a file descriptor or a protocol error code, by event) and the socket's endpoint.
public struct SocketEvent: Sendable, Equatable {
    public var event: Int32
    public var value: UInt32
    public var endpoint: String

    /// A peer's handshake failed on the protocol: plaintext against CURVE, or a CURVE client
    /// that does not hold the server's key. (ZAP refusals are `handshakeFailedAuth`.)
    public static let handshakeFailedProtocol = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
    public static let handshakeFailedNoDetail = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
    public static let handshakeFailedAuth = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
    /// A connection's handshake completed (any mechanism): the peer can be sent to.
    public static let handshakeSucceeded = ZMQ_EVENT_HANDSHAKE_SUCCEEDED

    /// Why a handshake failed on the protocol, in words an operator can act on.
    public var protocolErrorText: String {
        switch Int32(bitPattern: value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "plaintext peer (security mechanism mismatch)"
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "CURVE handshake failed (the peer does not hold this node's public key)"
        default: "protocol error 0x\(String(value, radix: 16))"
        }
    }

    /// Frame one: the event (2 bytes) and its value (4 bytes), little-endian; frame two: the endpoint.
    public init?(frames: [[UInt8]]) {
        guard frames.count >= 2, frames[0].count >= 6 else { return nil }
        let bytes = frames[0]
        event = Int32(UInt16(bytes[0]) | UInt16(bytes[1]) << 8)
        value = UInt32(bytes[2]) | UInt32(bytes[3]) << 8 | UInt32(bytes[4]) << 16 | UInt32(bytes[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension Socket {
    /// Starts reporting `events` of this socket and returns the PAIR socket they arrive on,
    /// owned by the caller like this one (close it before this socket's context ends).
    /// `name` makes the inproc endpoint unique within the context.
    public func monitor(events: Int32, name: String) throws(ZeroMQError) -> Socket {
        let endpoint = "inproc://monitor-\(name)"
        try zmqCall("zmq_socket_monitor(\(endpoint))") { zmq_socket_monitor(handle, endpoint, events) }
        let pair = try context.socket(.pair)
        try pair.setLinger(milliseconds: 0)
        try pair.connect(endpoint)
        return pair
    }
}
