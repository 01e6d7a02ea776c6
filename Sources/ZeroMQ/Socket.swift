import CZeroMQ

public enum SocketType: Sendable {
    case pair, pub, sub, req, rep, dealer, router, pull, push

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        }
    }
}

/// A ZeroMQ socket. Not thread-safe (libzmq sockets are not): give each socket one owner,
/// and do every call from that owner's thread.
public final class Socket {
    let handle: UnsafeMutableRawPointer
    public let type: SocketType
    // Keeps the context alive while the socket is open: zmq_ctx_term waits for open sockets.
    let context: Context
    private var isClosed = false

    init(context: Context, type: SocketType) throws(ZeroMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZeroMQError(code: zmq_errno(), operation: "zmq_socket")
        }
        self.handle = handle
        self.type = type
        self.context = context
        // A bounded linger: pending messages get a chance to leave on close, but closing never hangs.
        try setOption(ZMQ_LINGER, Int32(500), "LINGER")
    }

    deinit { close() }

    /// Closes the socket; further calls fail with ENOTSOCK. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        zmq_close(handle)
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws(ZeroMQError) {
        try zmqCall("zmq_bind(\(endpoint))") { zmq_bind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZeroMQError) {
        try zmqCall("zmq_connect(\(endpoint))") { zmq_connect(handle, endpoint) }
    }

    public func disconnect(_ endpoint: String) throws(ZeroMQError) {
        try zmqCall("zmq_disconnect(\(endpoint))") { zmq_disconnect(handle, endpoint) }
    }

    public func unbind(_ endpoint: String) throws(ZeroMQError) {
        try zmqCall("zmq_unbind(\(endpoint))") { zmq_unbind(handle, endpoint) }
    }

    /// The endpoint last bound, with the actual port when bound to `tcp://host:*`.
    public var lastEndpoint: String {
        get throws(ZeroMQError) {
            var buffer = [CChar](repeating: 0, count: 256)
            var size = buffer.count
            try zmqCall("zmq_getsockopt(LAST_ENDPOINT)") {
                buffer.withUnsafeMutableBytes { zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, $0.baseAddress, &size) }
            }
            return zmqText(buffer)
        }
    }

    // MARK: Sending

    /// Sends one message made of `frames` (a multipart message). With `wait: false` a full
    /// queue throws an error whose `isWouldBlock` is true and nothing is sent.
    public func send(_ frames: [[UInt8]], wait: Bool = true) throws(ZeroMQError) {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = wait ? 0 : ZMQ_DONTWAIT
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            try sendFrame(frame, flags: flags)
        }
    }

    private func sendFrame(_ frame: [UInt8], flags: Int32) throws(ZeroMQError) {
        while true {
            let result = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if result >= 0 { return }
            let code = zmq_errno()
            if code == EINTR { continue }
            throw ZeroMQError(code: code, operation: "zmq_send")
        }
    }

    // MARK: Receiving

    /// Receives one whole multipart message. With `wait: false` returns nil when none is queued.
    public func receive(wait: Bool = true) throws(ZeroMQError) -> [[UInt8]]? {
        try receiveMessage(wait: wait, readUserID: false)?.frames
    }

    /// Receives one whole multipart message with the user id the ZAP handler gave its sender
    /// (nil on a link that was not authenticated).
    public func receiveAuthenticated(wait: Bool = true) throws(ZeroMQError) -> (frames: [[UInt8]], userID: String?)? {
        try receiveMessage(wait: wait, readUserID: true)
    }

    /// `readUserID`: look up the metadata only when asked; plain receives are the hot path.
    private func receiveMessage(wait: Bool, readUserID: Bool) throws(ZeroMQError) -> (frames: [[UInt8]], userID: String?)? {
        var userID: String?
        var frames: [[UInt8]] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        repeat {
            // Only the first frame may be absent; the rest of a multipart message arrives at once.
            let flags: Int32 = (wait || !frames.isEmpty) ? 0 : ZMQ_DONTWAIT
            let result = zmq_msg_recv(&message, handle, flags)
            if result < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                if code == EAGAIN && frames.isEmpty { return nil }
                throw ZeroMQError(code: code, operation: "zmq_msg_recv")
            }
            // Every frame of a message comes over the same link; the routing-id frame a ROUTER
            // makes up carries no metadata, so any frame that has it will do.
            if readUserID, userID == nil, let property = zmq_msg_gets(&message, "User-Id") { userID = String(cString: property) }
            let size = zmq_msg_size(&message)
            if let data = zmq_msg_data(&message), size > 0 {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
        } while zmq_msg_more(&message) == 1
        return (frames, userID)
    }

    // MARK: Options

    /// Sets the routing id this socket presents to a ROUTER peer (before connect).
    public func setRoutingID(_ id: [UInt8]) throws(ZeroMQError) {
        try zmqCall("zmq_setsockopt(ROUTING_ID)") {
            id.withUnsafeBytes { zmq_setsockopt(handle, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        }
    }

    /// How long close waits for unsent messages, in milliseconds (-1 forever, 0 drop at once).
    public func setLinger(milliseconds: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_LINGER, milliseconds, "LINGER")
    }

    public func setSendHighWaterMark(_ messages: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_SNDHWM, messages, "SNDHWM")
    }

    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_RCVHWM, messages, "RCVHWM")
    }

    /// Blocking receive gives up after this long (-1 waits forever).
    public func setReceiveTimeout(milliseconds: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_RCVTIMEO, milliseconds, "RCVTIMEO")
    }

    public func setSendTimeout(milliseconds: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_SNDTIMEO, milliseconds, "SNDTIMEO")
    }

    /// ROUTER: sending to an unknown routing id fails with EHOSTUNREACH instead of dropping.
    public func setRouterMandatory(_ on: Bool) throws(ZeroMQError) {
        try setOption(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, "ROUTER_MANDATORY")
    }

    /// ROUTER: a peer reconnecting with a routing id already in use takes it over
    /// (a restarted node keeps its identity).
    public func setRouterHandover(_ on: Bool) throws(ZeroMQError) {
        try setOption(ZMQ_ROUTER_HANDOVER, on ? 1 : 0, "ROUTER_HANDOVER")
    }

    /// Peers sending a message larger than this many bytes are disconnected (-1 no limit).
    public func setMaxMessageSize(bytes: Int64) throws(ZeroMQError) {
        var value = bytes
        try zmqCall("zmq_setsockopt(MAXMSGSIZE)") {
            zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size)
        }
    }

    /// Queue messages only to completed connections (no queueing to a peer not yet there).
    public func setImmediate(_ on: Bool) throws(ZeroMQError) {
        try setOption(ZMQ_IMMEDIATE, on ? 1 : 0, "IMMEDIATE")
    }

    public func setReconnectInterval(milliseconds: Int32) throws(ZeroMQError) {
        try setOption(ZMQ_RECONNECT_IVL, milliseconds, "RECONNECT_IVL")
    }

    /// SUB: receive messages whose first frame starts with `prefix` (empty: all).
    public func subscribe(_ prefix: [UInt8] = []) throws(ZeroMQError) {
        try zmqCall("zmq_setsockopt(SUBSCRIBE)") {
            prefix.withUnsafeBytes { zmq_setsockopt(handle, ZMQ_SUBSCRIBE, $0.baseAddress, $0.count) }
        }
    }

    func setOption(_ option: Int32, _ value: Int32, _ name: String) throws(ZeroMQError) {
        var value = value
        try zmqCall("zmq_setsockopt(\(name))") {
            zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size)
        }
    }
}

/// Waits until one of several sockets (or file descriptors) has something to read.
public struct Poller {
    private let sockets: [Socket]
    private var items: [zmq_pollitem_t]

    /// `fds`: plain file descriptors polled after the sockets (an eventfd, a pipe).
    public init(_ sockets: [Socket], fds: [Int32] = []) {
        self.sockets = sockets
        self.items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
            + fds.map { zmq_pollitem_t(socket: nil, fd: $0, events: Int16(ZMQ_POLLIN), revents: 0) }
    }

    /// Waits up to `timeoutMs` (-1 forever, 0 not at all) and returns, per socket in the order
    /// given and then per descriptor, whether it is readable. A signal interrupting the wait
    /// counts as a timeout.
    public mutating func poll(timeoutMs: Int) throws(ZeroMQError) -> [Bool] {
        let count = Int32(items.count)
        let result = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, timeoutMs) }
        if result < 0 {
            let code = zmq_errno()
            if code == EINTR { return Array(repeating: false, count: items.count) }
            throw ZeroMQError(code: code, operation: "zmq_poll")
        }
        return items.map { ($0.revents & Int16(ZMQ_POLLIN)) != 0 }
    }
}
