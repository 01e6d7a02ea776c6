import CZeroMQ
import Glibc

/// A DEALER that speaks ZMTP 3 itself (NULL, or CURVE as a client), over one TCP connection it dials and
/// redials, on its owner's thread. libzmq hands every message to an I/O thread and back: on
/// this machine each of those hand-overs is a thread woken, and a client sending a thousand
/// requests a second spent a third of its CPU in them (a C probe at 1,000/s: 7.3-7.6 % of a
/// core through libzmq, 4.7-5.1 % over the bare socket). Here a send is one `write` and an
/// answer one `read`.
///
/// It behaves as a libzmq DEALER towards one ROUTER. Without `immediate`, messages sent before
/// the connection is up, or while it is down, wait for it; with it, such a send fails at once
/// (EAGAIN), as ZMQ_IMMEDIATE does. A lost connection takes with it what was already written to
/// it; it is redialled every `redialMs`. Not thread-safe: one owner.
///
/// Its descriptor (`fileDescriptor()`) is an epoll of its own over the connection and a redial
/// timer, so that a poller sees one stable descriptor, as with libzmq's ZMQ_FD: readable
/// whenever something may have happened, after which `receive` or `hasInput` does the I/O.
public final class NativeDealer: PolledSocket {
    public private(set) var endpoint: String
    private let routingID: [UInt8]
    private let redialMs: Int
    private let immediate: Bool
    private let maxFrameBytes: Int
    private let curve: CurveClientSecurity?
    private let events: Int32        // the epoll a poller waits on
    private let redialTimer: Int32
    private var connection: ZMTPConnection?
    /// A connect in progress (its descriptor), not yet a connection.
    private var dialling: Int32 = -1
    private var watchingWrites = false
    /// Messages waiting for a connection, encoded, with where each ends.
    private var waiting: [UInt8] = []
    private var waitingEnds: [Int] = []
    private var received = ReceivedMessages()
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
    private var isClosed = false
    /// Why the last connection ended or a dial failed (for the owner's logs and the tests).
    public private(set) var lastProblem: String?
    /// Connections completed (greeting and READY both ways) so far: a new one means the peer
    /// knows this link afresh (a node signs in to its parent again).
    public private(set) var handshakes = 0
    /// Connections lost (closed by the peer, reset, redialled) so far.
    public private(set) var connectionsLost = 0
    /// With it, `send` only queues and `flushHeld` writes (see `NativeRouter.holdsWrites`).
    public var holdsWrites = false
    /// Whether `send` queued messages that `flushHeld` has not written yet.
    public private(set) var hasHeldWrites = false

    private static let connectionTag: UInt64 = 1, timerTag: UInt64 = 2

    /// Dials `endpoint` (`tcp://host:port`), at once unless `dialNow` is false (then at
    /// `connect()`), and again whenever the connection is lost. `routingID`: the id the ROUTER
    /// names this peer by (empty: the ROUTER makes one up).
    /// `curve`: a CURVE client of the server it names (each connection a fresh short-term key).
    public init(endpoint: String, routingID: [UInt8] = [], redialMs: Int = 100, immediate: Bool = false,
                maxMessageBytes: Int = 64 << 20, dialNow: Bool = true, curve: CurveClientSecurity? = nil) throws(ZeroMQError) {
        self.endpoint = endpoint
        self.curve = curve
        if curve != nil { CurveZMQ.initialize() }
        self.routingID = routingID
        self.redialMs = redialMs
        self.immediate = immediate
        self.maxFrameBytes = maxMessageBytes
        events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0 else { throw ZeroMQError(code: errno, operation: "epoll_create1") }
        redialTimer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard redialTimer >= 0 else {
            Glibc.close(events)
            throw ZeroMQError(code: errno, operation: "timerfd_create")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.timerTag
        _ = epoll_ctl(events, EPOLL_CTL_ADD, redialTimer, &event)
        guard TCPAddress(endpoint: endpoint) != nil else {
            Glibc.close(events)
            Glibc.close(redialTimer)
            throw ZeroMQError(code: EINVAL, operation: "connect(\(endpoint)): not tcp://host:port")
        }
        if dialNow { dial() }
    }

    /// Dials, unless connected or dialling already.
    public func connect() {
        guard !isClosed, connection == nil, dialling < 0 else { return }
        dial()
    }

    deinit { close() }

    /// Closes the connection; nothing more is sent or received. Idempotent.
    public func close() {
        guard !isClosed else { return }
        flushHeld()
        isClosed = true
        if let connection { Glibc.close(connection.fd) }
        if dialling >= 0 { Glibc.close(dialling) }
        connection = nil
        Glibc.close(redialTimer)
        Glibc.close(events)
        scratch.deallocate()
    }

    public func fileDescriptor() throws(ZeroMQError) -> Int32 { events }

    /// Its epoll is readable while a connection has bytes unread: watched edge-triggered from
    /// outside, it missed an answer now and then (a bench loop waited 15 s for answers that had
    /// come), so it is watched level-triggered.
    public var signalsLevels: Bool { true }

    /// Queues one message and writes what the connection takes. Never blocks. With the
    /// connection down it waits for the next, or, `immediate`, fails with EAGAIN.
    public func send(_ frames: [[UInt8]], wait: Bool = true) throws(ZeroMQError) {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        guard let connection, connection.isReady else {
            if immediate { throw ZeroMQError(code: EAGAIN, operation: "send to \(endpoint): not connected") }
            ZMTPWire.appendMessage(frames, to: &waiting)
            waitingEnds.append(waiting.count)
            return
        }
        connection.enqueue(frames[...])
        if holdsWrites { hasHeldWrites = true } else { flush(connection) }
    }

    /// Writes what `send` queued while `holdsWrites`.
    public func flushHeld() {
        guard hasHeldWrites else { return }
        hasHeldWrites = false
        if let connection { flush(connection) }
    }

    /// The next whole message received, or nil. Does the pending I/O first when none is queued.
    public func receive(wait: Bool = false) throws(ZeroMQError) -> [[UInt8]]? {
        if received.isEmpty { pump() }
        return received.pop()
    }

    /// Whether a message is buffered. What has not been read yet makes the descriptor fire.
    public func hasInput() throws(ZeroMQError) -> Bool { !received.isEmpty }

    /// The connection, for the tests of what it gives back when lost.
    var connectionForTests: ZMTPConnection? { connection }

    /// Whether the connection is up and both greetings and READYs are through.
    public var isConnected: Bool { connection?.isReady == true }

    /// Drops the connection (what was written to it is lost with it) and dials `endpoint` again
    /// at once: a link that went silent.
    public func redial(_ endpoint: String? = nil) {
        if let endpoint { self.endpoint = endpoint }
        lose("redialled by its owner", redialNow: true)
    }

    // MARK: I/O

    /// Everything that may have happened: the redial timer, the connect, bytes to read and room
    /// to write.
    private func pump() {
        guard !isClosed else { return }
        var ready = (epoll_event(), epoll_event())
        let count = withUnsafeMutableBytes(of: &ready) {
            epoll_wait(events, $0.baseAddress!.assumingMemoryBound(to: epoll_event.self), 2, 0)
        }
        var timerFired = false
        var connectionEvents: UInt32 = 0
        for event in [ready.0, ready.1].prefix(Int(max(0, count))) {
            if event.data.u64 == Self.timerTag { timerFired = true } else { connectionEvents = event.events }
        }
        if timerFired {
            var expirations: UInt64 = 0
            _ = read(redialTimer, &expirations, 8)
            if connection == nil && dialling < 0 { dial() }
        }
        if dialling >= 0 {
            // A connect in progress becomes writable, or fails, when it is through.
            guard connectionEvents & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else { return }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(dialling, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 { return lose("connect to \(endpoint): \(String(cString: strerror(error)))") }
            connected()
        }
        guard let connection else { return }
        let wasReady = connection.isReady
        connection.readAvailable(into: scratch, hungUp: connectionEvents & hangUpEvents != 0) { received.append($0) }
        if !wasReady && connection.isReady { handshakeDone(connection) }
        flush(connection)
    }

    private func dial() {
        guard let address = TCPAddress(endpoint: endpoint) else { return lose("\(endpoint): no such host") }
        let fd = openTCPSocket(family: address.family)
        guard fd >= 0 else { return lose("socket: \(String(cString: strerror(errno)))") }
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        let failure = errno
        dialling = fd
        watch(events, fd, tag: Self.connectionTag, writable: true, add: true)
        watchingWrites = true
        if result == 0 {
            connected()
        } else if failure != EINPROGRESS {
            lose("connect to \(endpoint): \(String(cString: strerror(failure)))")
        }
    }

    /// The TCP connection is up: our greeting and READY go first; messages after the peer's READY.
    private func connected() {
        let connection = ZMTPConnection(fd: dialling, socketType: "DEALER", routingID: routingID,
                                        acceptedPeerTypes: ["ROUTER"], maxFrameBytes: maxFrameBytes,
                                        security: curve.map { .curveClient($0) } ?? .null)
        dialling = -1
        self.connection = connection
        flush(connection)
    }

    private func handshakeDone(_ connection: ZMTPConnection) {
        handshakes += 1
        lastProblem = nil
        if !waiting.isEmpty {
            connection.enqueue(encoded: waiting[...], ends: waitingEnds)
            waiting.empty()
            waitingEnds.removeAll(keepingCapacity: true)
        }
    }

    private func flush(_ connection: ZMTPConnection) {
        let done = connection.flush()
        if let problem = connection.problem { return lose(problem) }
        if done == watchingWrites {
            watchingWrites = !done
            watch(events, connection.fd, tag: Self.connectionTag, writable: !done, add: false)
        }
    }

    /// The connection is gone: what was written to it is lost with it; the messages it had not
    /// begun wait for the next (but for `immediate`, which queues nothing for a link down).
    private func lose(_ problem: String, redialNow: Bool = false) {
        lastProblem = problem
        if let connection {
            connectionsLost += 1
            if !immediate {
                let unsent = connection.unsentMessages()
                let base = unsent.bytes.count
                // Ahead of what waited meanwhile (nothing waits while connected).
                waiting.insert(contentsOf: unsent.bytes, at: 0)
                waitingEnds = unsent.ends + waitingEnds.map { $0 + base }
            }
            Glibc.close(connection.fd)
            self.connection = nil
        }
        if dialling >= 0 {
            Glibc.close(dialling)
            dialling = -1
        }
        if redialNow { return dial() }
        var spec = itimerspec(it_interval: timespec(tv_sec: 0, tv_nsec: 0),
                              it_value: timespec(tv_sec: redialMs / 1_000, tv_nsec: (redialMs % 1_000) * 1_000_000))
        timerfd_settime(redialTimer, 0, &spec, nil)
    }
}
