import CZeroMQ
import Glibc

/// A ROUTER that speaks ZMTP 3 itself, on its owner's thread: it listens,
/// accepts DEALER (and REQ, ROUTER) peers, and names each by the routing id its READY carries,
/// or one made up (five bytes, as libzmq makes them). A received message comes with its
/// sender's routing id as the first frame; a message sent goes to the peer its first frame
/// names. As libzmq's ROUTER with ROUTER_MANDATORY: sending to nobody fails (EHOSTUNREACH), and
/// so does sending to a peer that has stopped reading, once `sendLimitBytes` wait for it
/// (EAGAIN). With `handover`, a peer presenting a routing id in use takes it over and the
/// older connection is closed; without, the newcomer is refused. With `curve`, it is a CURVE
/// server (RFC 26): a peer must know its public key and be admitted by its `admit`, and every
/// message comes with the name it was admitted under (`receiveAuthenticated`).
///
/// libzmq's ROUTER hands every message to an I/O thread and back, a thread woken each way;
/// this one reads and writes its connections directly. Its descriptor is an epoll of its own
/// over the listener and the connections, stable for a poller. Not thread-safe: one owner.
public final class NativeRouter: PolledSocket {
    private let handover: Bool
    private let maxFrameBytes: Int
    private let sendLimitBytes: Int
    private let events: Int32
    private var listener: Int32 = -1
    private var connections: [ZMTPConnection?] = []
    /// Each connection's routing id, once its READY has come.
    private var routingIDs: [[UInt8]?] = []
    private var watchingWrites: [Bool] = []
    private var freeSlots: [Int] = []
    private var slotOf: [[UInt8]: Int] = [:]
    private var nextMadeUpID = UInt32.random(in: 0...UInt32.max)
    private var received: ReceivedMessages
    private let curve: CurveServerSecurity?
    /// Connections that ended before their handshake was through, counted by why (for the
    /// owner's log: a plaintext peer, a key refused, a scan). Bounded: past 64 reasons between
    /// two reports, the rest are counted under one.
    private var failedHandshakes: [String: Int] = [:]
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
    private var polled = [epoll_event](repeating: epoll_event(), count: 64)
    private var isClosed = false
    /// The last connection refused or lost, and why (for the owner's logs and the tests).
    public private(set) var lastProblem: String?
    /// With it, `send` only queues, and `flushHeld` writes each connection's queue at once: a
    /// reactor's round sends to a peer in one system call, not one a message. On loopback a
    /// write also delivers to the reader, about 8 us of the sender's CPU each on this machine.
    public var holdsWrites = false
    /// Connections with messages queued since the last `flushHeld`.
    private var held: [Int] = []
    /// Whether `send` queued messages that `flushHeld` has not written yet.
    public var hasHeldWrites: Bool { !held.isEmpty }

    private static let listenerTag: UInt64 = 0

    public init(handover: Bool, maxMessageBytes: Int = 64 << 20, sendLimitBytes: Int = 256 << 20,
                curve: CurveServerSecurity? = nil) throws(ZeroMQError) {
        self.handover = handover
        self.curve = curve
        received = ReceivedMessages(authenticated: curve != nil)
        if curve != nil { CurveZMQ.initialize() }
        self.maxFrameBytes = maxMessageBytes
        self.sendLimitBytes = sendLimitBytes
        events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0 else { throw ZeroMQError(code: errno, operation: "epoll_create1") }
    }

    deinit { close() }

    /// Closes the listener and every connection. Idempotent.
    public func close() {
        guard !isClosed else { return }
        flushHeld()
        isClosed = true
        if listener >= 0 { Glibc.close(listener) }
        for connection in connections { if let connection { Glibc.close(connection.fd) } }
        connections = []
        Glibc.close(events)
        scratch.deallocate()
    }

    /// Listens at `tcp://address:port` (`*` for every interface, port `*` or 0 for any free one).
    public func bind(_ endpoint: String) throws(ZeroMQError) {
        guard let address = TCPAddress(endpoint: endpoint) else {
            throw ZeroMQError(code: EINVAL, operation: "bind(\(endpoint)): not tcp://address:port")
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ZeroMQError(code: errno, operation: "socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard address.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0, listen(fd, 256) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw ZeroMQError(code: code, operation: "bind(\(endpoint))")
        }
        listener = fd
        watch(events, fd, tag: Self.listenerTag, writable: false, add: true)
    }

    /// The endpoint bound, with the actual port.
    public var lastEndpoint: String {
        let (host, port) = socketAddress(listener, peer: false) ?? ("?", 0)
        return "tcp://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    public func fileDescriptor() throws(ZeroMQError) -> Int32 { events }

    // `signalsLevels` stays false: its epoll also holds the listening socket and half-closed
    // connections, which a level-triggered watch must not spin on; not yet tried (README).

    /// Peers connected, with their handshake through.
    public var peerCount: Int { slotOf.count }

    /// Sends `frames` minus the first to the peer the first names. Never blocks.
    public func send(_ frames: [[UInt8]], wait: Bool = true) throws(ZeroMQError) {
        precondition(frames.count >= 2, "a ROUTER's message names its peer, then carries at least one frame")
        try send(to: frames[0], frames.dropFirst())
    }

    /// Sends `frames` to the peer `routingID` names, without a message that begins with it.
    public func send(to routingID: [UInt8], _ frames: [[UInt8]], wait: Bool = true) throws(ZeroMQError) {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        try send(to: routingID, frames[...])
    }

    private func send(to routingID: [UInt8], _ frames: ArraySlice<[UInt8]>) throws(ZeroMQError) {
        guard let slot = slotOf[routingID], let connection = connections[slot] else {
            throw ZeroMQError(code: EHOSTUNREACH, operation: "send: no peer with that routing id")
        }
        guard connection.unwrittenBytes < sendLimitBytes else {
            throw ZeroMQError(code: EAGAIN, operation: "send: the peer has \(connection.unwrittenBytes) bytes it has not read")
        }
        connection.enqueue(frames)
        guard holdsWrites else { return flush(slot) }
        if !held.contains(slot) { held.append(slot) }
    }

    /// Writes what `send` queued while `holdsWrites`.
    public func flushHeld() {
        guard !held.isEmpty else { return }
        for slot in held { flush(slot) }
        held.removeAll(keepingCapacity: true)
    }

    /// The next whole message from any peer, its routing id first, or nil.
    public func receive(wait: Bool = false) throws(ZeroMQError) -> [[UInt8]]? {
        if received.isEmpty { pump() }
        return received.pop()
    }

    /// The next whole message, its routing id first, with the name its sender's key was
    /// admitted under (nil without `curve`).
    public func receiveAuthenticated() -> (frames: [[UInt8]], userID: String?)? {
        if received.isEmpty { pump() }
        return received.popAuthenticated()
    }

    /// How many connections ended before their handshake was through since the last call, by why.
    public func takeFailedHandshakes() -> [String: Int] {
        defer { failedHandshakes.removeAll(keepingCapacity: true) }
        return failedHandshakes
    }

    /// Whether a message is buffered. What has not been read yet makes the descriptor fire.
    public func hasInput() throws(ZeroMQError) -> Bool { !received.isEmpty }

    // MARK: I/O

    private func pump() {
        guard !isClosed else { return }
        while true {
            let count = Int(epoll_wait(events, &polled, Int32(polled.count), 0))
            guard count > 0 else { return }
            for index in 0..<count {
                let tag = polled[index].data.u64
                if tag == Self.listenerTag { acceptAll() } else { serve(Int(tag) - 1, hungUp: polled[index].events & hangUpEvents != 0) }
            }
            if count < polled.count { return }
        }
    }

    private func acceptAll() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno != EAGAIN { lastProblem = "accept: \(String(cString: strerror(errno)))" }
                return
            }
            // Accepts are rare: two calls more than accept4 (which Glibc's module leaves out).
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            setNoDelay(fd)
            let connection = ZMTPConnection(fd: fd, socketType: "ROUTER", routingID: [],
                                            acceptedPeerTypes: ["DEALER", "REQ", "ROUTER"], maxFrameBytes: maxFrameBytes,
                                            leadingSlot: true, security: curve.map { .curveServer($0) } ?? .null)
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
                connections[slot] = connection
                routingIDs[slot] = nil
                watchingWrites[slot] = false
            } else {
                slot = connections.count
                connections.append(connection)
                routingIDs.append(nil)
                watchingWrites.append(false)
            }
            watch(events, fd, tag: UInt64(slot + 1), writable: false, add: true)
            flush(slot)    // our greeting and READY
        }
    }

    private func serve(_ slot: Int, hungUp: Bool) {
        guard let connection = connections[slot] else { return }
        var refused: String?
        connection.readAvailable(into: scratch, hungUp: hungUp) { message in
            guard refused == nil else { return }
            if routingIDs[slot] == nil { refused = identify(slot, connection) }
            if let id = routingIDs[slot] {
                message[0] = id   // the place the connection left for it (`leadingSlot`)
                received.append(message, userID: connection.userID)
            }
        }
        if refused == nil, connection.isReady, routingIDs[slot] == nil { refused = identify(slot, connection) }
        if let refused { return drop(slot, refused) }
        flush(slot)
    }

    /// Names a peer whose READY has come; nil, or why it is refused.
    private func identify(_ slot: Int, _ connection: ZMTPConnection) -> String? {
        var id = connection.peerIdentity
        if id.isEmpty || id[0] == 0 {
            // libzmq makes up ids that start with a zero byte; a peer may not claim one.
            nextMadeUpID &+= 1
            id = [0] + withUnsafeBytes(of: nextMadeUpID.bigEndian, Array.init)
        }
        if let holder = slotOf[id] {
            guard handover else { return "routing id \(String(decoding: id, as: UTF8.self)) is held by another connection" }
            drop(holder, "routing id \(String(decoding: id, as: UTF8.self)) handed over to a new connection")
        }
        routingIDs[slot] = id
        slotOf[id] = slot
        return nil
    }

    private func flush(_ slot: Int) {
        guard let connection = connections[slot] else { return }
        let done = connection.flush()
        if let problem = connection.problem { return drop(slot, problem) }
        if done == watchingWrites[slot] {
            watchingWrites[slot] = !done
            watch(events, connection.fd, tag: UInt64(slot + 1), writable: !done, add: false)
        }
    }

    /// Closes a connection; what was queued for it is lost with it, as with libzmq.
    private func drop(_ slot: Int, _ problem: String) {
        guard let connection = connections[slot] else { return }
        lastProblem = problem
        if routingIDs[slot] == nil {
            let reason = failedHandshakes.count < 64 || failedHandshakes[problem] != nil ? problem : "other reasons"
            failedHandshakes[reason, default: 0] += 1
        }
        Glibc.close(connection.fd)
        if let id = routingIDs[slot], slotOf[id] == slot { slotOf[id] = nil }
        connections[slot] = nil
        routingIDs[slot] = nil
        freeSlots.append(slot)
    }
}
