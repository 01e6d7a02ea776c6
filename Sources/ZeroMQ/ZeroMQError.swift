import CZeroMQ

/// A libzmq call that failed, with the errno it reported and what was being done.
public struct ZeroMQError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let operation: String

    public var description: String {
        let text = String(cString: zmq_strerror(code))
        return "ZeroMQ \(operation) failed: \(text) (errno \(code))"
    }

    /// The call would block (non-blocking receive on an empty queue, full high-water mark).
    public var isWouldBlock: Bool { code == EAGAIN }
    /// The context was terminated while the call waited.
    public var isTerminated: Bool { code == ETERM }
    /// A ROUTER with ROUTER_MANDATORY could not route to the named peer.
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }
    /// A signal interrupted the call.
    public var isInterrupted: Bool { code == EINTR }
}

/// The one funnel for libzmq calls that return -1 on failure: it reads `zmq_errno()` at once,
/// before anything else can change it.
@inline(__always)
@discardableResult
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZeroMQError) -> Int32 {
    let result = body()
    if result == -1 {
        let code = zmq_errno()
        throw ZeroMQError(code: code, operation: operation())
    }
    return result
}

/// The text of a NUL-terminated buffer libzmq filled in (an endpoint, a Z85 key).
func zmqText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
