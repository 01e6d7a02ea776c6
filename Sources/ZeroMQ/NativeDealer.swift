import CZeroMQ
import Glibc

/// A DEALER that speaks ZMTP 3 (NULL mechanism) itself, over one TCP connection it dials and
/// redials, on its owner's thread. libzmq hands every message to an I/O thread and back: on
/// this machine each of those hand-overs is a thread woken, and a client sending a thousand
/// requests a second spent a third of its CPU in them (a C probe at 1,000/s: 7.3-7.6 % of a
/// core through libzmq, 4.7-5.1 % over the bare socket). Here a send is one `write` and an
/// answer one `read`.
///
/// It behaves as a libzmq DEALER without ZMQ_IMMEDIATE towards one ROUTER: messages sent before
/// the connection is up, or while it is down, wait for it; a connection lost takes with it what
/// was already written to it; it is redialled every `redialMs`. Not thread-safe: one owner.
///
/// Its descriptor (`fileDescriptor()`) is an epoll of its own over the connection and a redial
/// timer, so that a poller sees one stable descriptor, as with libzmq's ZMQ_FD: readable
/// whenever something may have happened, after which `receive` or `hasInput` does the I/O.
public final class NativeDealer: PolledSocket {
    public let endpoint: String
    private let routingID: [UInt8]
    private let redialMs: Int
    private let maxFrameBytes: Int
    private let events: Int32        // the epoll a poller waits on
    private let redialTimer: Int32
    private var connection: Int32 = -1
    private var phase = Phase.waiting

    private enum Phase { case waiting, dialling, greeting, handshake, ready }

    /// Bytes to write; `written` of them are. `messageEnds`: where each unsent message ends, so a
    /// lost connection drops only the message it was in the middle of.
    private var outgoing: [UInt8] = []
    private var written = 0
    private var messageEnds: [Int] = []
    /// What has been read and not yet parsed (from `parsed` on).
    private var incoming: [UInt8] = []
    private var parsed = 0
    private var partial: [[UInt8]] = []
    /// What one `read` fills.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
    private var received: [[[UInt8]]] = []
    private var nextReceived = 0
    /// Why the last connection ended (for the owner's logs and the tests).
    public private(set) var lastProblem: String?
    /// Connections completed (greeting and READY both ways) so far.
    public private(set) var handshakes = 0

    private static let connectionTag: UInt64 = 1, timerTag: UInt64 = 2

    /// Dials `endpoint` (`tcp://host:port`) at once and whenever the connection is lost.
    /// `routingID`: the id the ROUTER names this peer by (empty: the ROUTER makes one up).
    public init(endpoint: String, routingID: [UInt8] = [], redialMs: Int = 100,
                maxMessageBytes: Int = 64 << 20) throws(ZeroMQError) {
        self.endpoint = endpoint
        self.routingID = routingID
        self.redialMs = redialMs
        self.maxFrameBytes = maxMessageBytes
        events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0 else { throw ZeroMQError(code: errno, operation: "epoll_create1") }
        redialTimer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard redialTimer >= 0 else {
            close(events)
            throw ZeroMQError(code: errno, operation: "timerfd_create")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.timerTag
        _ = epoll_ctl(events, EPOLL_CTL_ADD, redialTimer, &event)
        guard Self.address(of: endpoint) != nil else {
            close(events)
            close(redialTimer)
            throw ZeroMQError(code: EINVAL, operation: "connect(\(endpoint)): not tcp://host:port")
        }
        dial()
    }

    deinit {
        scratch.deallocate()
        if connection >= 0 { Glibc.close(connection) }
        Glibc.close(redialTimer)
        Glibc.close(events)
    }

    public func fileDescriptor() throws(ZeroMQError) -> Int32 { events }

    /// Queues one message and writes what the connection takes. Never blocks: with the
    /// connection down, messages wait for it (`wait` is accepted for `Socket`'s signature).
    public func send(_ frames: [[UInt8]], wait: Bool = true) throws(ZeroMQError) {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        ZMTPWire.appendMessage(frames, to: &outgoing)
        messageEnds.append(outgoing.count)
        if phase == .ready { flush() }
    }

    /// The next whole message received, or nil. Does the pending I/O first when none is queued.
    public func receive(wait: Bool = false) throws(ZeroMQError) -> [[UInt8]]? {
        if nextReceived == received.count { pump() }
        guard nextReceived < received.count else { return nil }
        let message = received[nextReceived]
        nextReceived += 1
        if nextReceived == received.count {
            received.removeAll(keepingCapacity: true)
            nextReceived = 0
        }
        return message
    }

    public func hasInput() throws(ZeroMQError) -> Bool {
        if nextReceived < received.count { return true }
        pump()
        return nextReceived < received.count
    }

    /// Whether the connection is up and both greetings and READYs are through.
    public var isConnected: Bool { phase == .ready }

    // MARK: I/O

    /// Everything that may have happened: the redial timer, the connect, bytes to read and room
    /// to write.
    private func pump() {
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
            if phase == .waiting { dial() }
        }
        guard connection >= 0 else { return }
        if phase == .dialling {
            // A connection in progress becomes writable, or fails, when it is through.
            guard connectionEvents & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else { return }
            var error: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(connection, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 { return lose("connect: \(String(cString: strerror(error)))") }
            connected()
        }
        readAvailable()
        if connection >= 0, written < outgoing.count { flush() }
    }

    private func dial() {
        guard var address = Self.address(of: endpoint) else { return }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return lose("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        connection = fd
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue
        event.data.u64 = Self.connectionTag
        _ = epoll_ctl(events, EPOLL_CTL_ADD, fd, &event)
        if result == 0 {
            connected()
        } else if errno == EINPROGRESS {
            phase = .dialling
        } else {
            lose("connect: \(String(cString: strerror(errno)))")
        }
    }

    /// The TCP connection is up: our greeting and READY go first, ahead of any message.
    private func connected() {
        phase = .greeting
        let handshake = ZMTPWire.greeting() + ZMTPWire.ready(socketType: "DEALER", routingID: routingID)
        outgoing.insert(contentsOf: handshake, at: 0)     // nothing of a message is written yet
        for index in messageEnds.indices { messageEnds[index] += handshake.count }
        // Until the peer's READY, only the handshake is written (`flush` stops at its end).
        handshakeEnd = handshake.count
        watchWrites(false)
        flush()
    }

    /// While handshaking, where our handshake's bytes end.
    private var handshakeEnd = 0

    /// Reads until the connection has nothing more, parsing as it goes.
    private func readAvailable() {
        while connection >= 0 {
            let count = read(connection, scratch.baseAddress!, scratch.count)
            if count > 0 {
                incoming.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
                parse()
                if count < scratch.count { break }
                continue
            }
            if count == 0 { return lose("the peer closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN { break }
            return lose("read: \(String(cString: strerror(errno)))")
        }
    }

    private func parse() {
        do {
            while connection >= 0 {
                let rest = incoming[parsed...]
                if phase == .greeting {
                    guard rest.count >= ZMTPWire.greetingBytes else { break }
                    try ZMTPWire.checkGreeting(rest)
                    parsed += ZMTPWire.greetingBytes
                    phase = .handshake
                    continue
                }
                guard let frame = try ZMTPWire.frame(in: rest, maxBytes: maxFrameBytes) else { break }
                parsed = frame.body.upperBound
                let body = incoming[frame.body]
                if frame.isCommand {
                    try command(body)
                } else if phase == .ready {
                    partial.append(Array(body))
                    if !frame.hasMore {
                        received.append(partial)
                        partial = []
                    }
                } else {
                    throw ZMTPWire.Problem.handshake("a message before the peer's READY")
                }
            }
        } catch {
            return lose("\(error)")
        }
        if parsed == incoming.count {
            incoming.removeAll(keepingCapacity: true)
            parsed = 0
        } else if parsed > 65_536 {
            incoming.removeFirst(parsed)
            parsed = 0
        }
    }

    private func command(_ body: ArraySlice<UInt8>) throws(ZMTPWire.Problem) {
        let (name, data) = try ZMTPWire.commandName(body)
        switch name {
        case "READY" where phase == .handshake:
            let properties = try ZMTPWire.properties(ofReady: data)
            let type = properties["Socket-Type"].map { String(decoding: $0, as: UTF8.self) } ?? "?"
            guard type == "ROUTER" else { throw .handshake("the peer is a \(type) socket, not a ROUTER") }
            phase = .ready
            handshakes += 1
            lastProblem = nil
            flush()
        case "ERROR":
            let reason = data.count > 1 ? String(decoding: data.dropFirst(), as: UTF8.self) : "no reason given"
            throw .handshake("the peer refused: \(reason)")
        case "PING" where phase == .ready:
            // A PONG between messages is written whole before the next message begins.
            outgoing.append(contentsOf: ZMTPWire.pong(forPing: data))
            messageEnds.append(outgoing.count)
            flush()
        default:
            break   // other commands (a PONG, a SUBSCRIBE) mean nothing to a DEALER
        }
    }

    /// Writes what is queued: before the peer's READY only our handshake.
    private func flush() {
        let end = phase == .ready ? outgoing.count : min(handshakeEnd, outgoing.count)
        while written < end {
            let count = outgoing.withUnsafeBytes { Glibc.write(connection, $0.baseAddress! + written, end - written) }
            if count > 0 {
                written += count
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN {
                watchWrites(true)
                return
            }
            return lose("write: \(String(cString: strerror(errno)))")
        }
        watchWrites(false)
        if written == outgoing.count {
            outgoing.removeAll(keepingCapacity: true)
            messageEnds.removeAll(keepingCapacity: true)
            written = 0
            handshakeEnd = 0
        } else if phase == .ready, written > 65_536 {
            outgoing.removeFirst(written)
            messageEnds = messageEnds.compactMap { $0 > written ? $0 - written : nil }
            handshakeEnd = max(0, handshakeEnd - written)
            written = 0
        }
    }

    private var watchingWrites = true

    private func watchWrites(_ on: Bool) {
        guard on != watchingWrites, connection >= 0 else { return }
        watchingWrites = on
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (on ? EPOLLOUT.rawValue : 0)
        event.data.u64 = Self.connectionTag
        _ = epoll_ctl(events, EPOLL_CTL_MOD, connection, &event)
    }

    /// The connection is gone: what was written to it is lost with it, what was not (but the rest
    /// of a message half written, which the peer drops) waits for the next; redial later.
    private func lose(_ problem: String) {
        lastProblem = problem
        if connection >= 0 {
            Glibc.close(connection)
            connection = -1
        }
        // Written messages went with the connection, and so does one half written (the peer
        // drops it); our handshake is never written twice.
        var cut = written == 0 ? 0 : (messageEnds.first { $0 >= written } ?? outgoing.count)
        cut = max(cut, handshakeEnd)
        outgoing.removeFirst(min(cut, outgoing.count))
        messageEnds = messageEnds.compactMap { $0 > cut ? $0 - cut : nil }
        written = 0
        handshakeEnd = 0
        incoming.removeAll(keepingCapacity: true)
        parsed = 0
        partial = []
        phase = .waiting
        watchingWrites = true
        var spec = itimerspec(it_interval: timespec(tv_sec: 0, tv_nsec: 0),
                              it_value: timespec(tv_sec: redialMs / 1_000, tv_nsec: (redialMs % 1_000) * 1_000_000))
        timerfd_settime(redialTimer, 0, &spec, nil)
    }

    /// `tcp://a.b.c.d:port` (or `tcp://localhost:port`) as a socket address.
    static func address(of endpoint: String) -> sockaddr_in? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        var host = String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        guard let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        return address
    }
}
