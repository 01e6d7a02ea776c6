import CZeroMQ
import Glibc

/// One TCP connection speaking ZMTP 3 with the NULL mechanism, for `NativeDealer` and
/// `NativeRouter`: our greeting and READY first, then the peer's checked, then whole messages
/// both ways. Writes that the connection does not take at once wait in `outgoing` until it is
/// writable again. Its owner polls the descriptor and closes it when `problem` is set.
final class ZMTPConnection {
    let fd: Int32
    /// The peer's routing id (READY's Identity) and socket type, once its READY has come.
    private(set) var peerIdentity: [UInt8] = []
    private(set) var isReady = false
    /// Why the connection cannot go on; its owner closes it.
    private(set) var problem: String?

    private let acceptedPeerTypes: Set<String>
    private let maxFrameBytes: Int
    private var greetingSeen = false

    /// Bytes to write, `written` of them already; `messageEnds`: where each message ends, so that
    /// a lost connection gives back only the messages it had not begun.
    private var outgoing: [UInt8] = []
    private var written = 0
    private var messageEnds: [Int] = []
    /// Where our greeting and READY end: until the peer's READY, nothing after them is written.
    private var handshakeEnd: Int
    private var incoming: [UInt8] = []
    private var parsed = 0
    /// The message being read: its frames so far, after the routing id's place when
    /// `leadingSlot`.
    private var partial: [[UInt8]] = []
    private var partialBytes = 0
    /// Each message delivered begins with one empty frame for the owner to fill in place (a
    /// ROUTER's peer id), so that naming the sender costs no copy of the message.
    let leadingSlot: Bool
    /// A message may have at most this many frames: a peer must not grow one without end by
    /// setting MORE on every frame (its bytes are bounded by `maxFrameBytes`, as one frame's).
    static let maxFramesPerMessage = 64

    init(fd: Int32, socketType: String, routingID: [UInt8], acceptedPeerTypes: Set<String>, maxFrameBytes: Int,
         leadingSlot: Bool = false) {
        self.fd = fd
        self.leadingSlot = leadingSlot
        self.acceptedPeerTypes = acceptedPeerTypes
        self.maxFrameBytes = maxFrameBytes
        outgoing = ZMTPWire.greeting() + ZMTPWire.ready(socketType: socketType, routingID: routingID)
        handshakeEnd = outgoing.count
    }

    /// Bytes queued and not yet written.
    var unwrittenBytes: Int { outgoing.count - written }

    /// Queues one message (written once the handshake is through).
    func enqueue(_ frames: ArraySlice<[UInt8]>) {
        ZMTPWire.appendMessage(frames, to: &outgoing)
        messageEnds.append(outgoing.count)
    }

    /// Queues messages already encoded (`ends` relative to `bytes`' start).
    func enqueue(encoded bytes: ArraySlice<UInt8>, ends: [Int]) {
        let base = outgoing.count
        outgoing.append(contentsOf: bytes)
        messageEnds.append(contentsOf: ends.map { $0 + base })
    }

    /// The messages not yet begun, encoded, with where each ends: what a lost connection gives
    /// back (one half written went with it: its peer drops it).
    func unsentMessages() -> (bytes: ArraySlice<UInt8>, ends: [Int]) {
        let start = written <= handshakeEnd ? handshakeEnd : (messageEnds.first { $0 >= written } ?? outgoing.count)
        let ends = messageEnds.filter { $0 > start }.map { $0 - start }
        return (outgoing[min(start, outgoing.count)...], ends)
    }

    /// Writes what is queued (before the peer's READY, only the handshake). True when everything
    /// it may write is written; false when the connection wants to be told it is writable.
    @discardableResult
    func flush() -> Bool {
        guard problem == nil else { return true }
        let end = isReady ? outgoing.count : min(handshakeEnd, outgoing.count)
        while written < end {
            // MSG_NOSIGNAL: a peer gone is an error to handle here, not a SIGPIPE for the process.
            let count = outgoing.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + written, end - written, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                written += count
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN { return false }
            fail("write: \(String(cString: strerror(errno)))")
            return true
        }
        if written == outgoing.count {
            outgoing.empty()
            messageEnds.removeAll(keepingCapacity: true)
            written = 0
            handshakeEnd = 0
        } else if isReady, written > 65_536 {
            outgoing.removeFirst(written)
            messageEnds = messageEnds.compactMap { $0 > written ? $0 - written : nil }
            handshakeEnd = max(0, handshakeEnd - written)
            written = 0
        }
        return true
    }

    /// Reads until the connection has nothing more (or fails), handing each whole message to
    /// `deliver` (which may change it in place, and keep it). `scratch`: the owner's read buffer.
    func readAvailable(into scratch: UnsafeMutableRawBufferPointer, deliver: (inout [[UInt8]]) -> Void) {
        while problem == nil {
            let count = read(fd, scratch.baseAddress!, scratch.count)
            if count > 0 {
                incoming.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
                parse(deliver)
                if count < scratch.count { return }
                continue
            }
            if count == 0 { return fail("the peer closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN { return }
            return fail("read: \(String(cString: strerror(errno)))")
        }
    }

    private func fail(_ text: String) {
        if problem == nil { problem = text }
    }

    private func parse(_ deliver: (inout [[UInt8]]) -> Void) {
        let slots = leadingSlot ? 1 : 0
        do {
            while problem == nil {
                let rest = incoming[parsed...]
                if !greetingSeen {
                    guard rest.count >= ZMTPWire.greetingBytes else { break }
                    try ZMTPWire.checkGreeting(rest)
                    parsed += ZMTPWire.greetingBytes
                    greetingSeen = true
                    continue
                }
                guard let frame = try ZMTPWire.frame(in: rest, maxBytes: maxFrameBytes) else { break }
                parsed = frame.body.upperBound
                if frame.isCommand {
                    try command(incoming[frame.body])
                } else if isReady {
                    if partial.isEmpty {
                        // A node's messages have three or four frames: one allocation each.
                        partial.reserveCapacity(slots + 4)
                        if slots > 0 { partial.append([]) }
                    }
                    partialBytes += frame.body.count
                    guard partialBytes <= maxFrameBytes, partial.count - slots < Self.maxFramesPerMessage else {
                        throw ZMTPWire.Problem.messageTooLarge(frames: partial.count - slots + 1, bytes: partialBytes)
                    }
                    partial.append(Array(incoming[frame.body]))
                    if !frame.hasMore {
                        deliver(&partial)
                        partial = []
                        partialBytes = 0
                    }
                } else {
                    throw ZMTPWire.Problem.handshake("a message before the peer's READY")
                }
            }
        } catch {
            return fail("\(error)")
        }
        if parsed == incoming.count {
            incoming.empty()
            parsed = 0
        } else if parsed > 65_536 {
            incoming.removeFirst(parsed)
            parsed = 0
        }
    }

    private func command(_ body: ArraySlice<UInt8>) throws(ZMTPWire.Problem) {
        let (name, data) = try ZMTPWire.commandName(body)
        switch name {
        case "READY" where !isReady:
            let properties = try ZMTPWire.properties(ofReady: data)
            let type = properties["Socket-Type"].map { String(decoding: $0, as: UTF8.self) } ?? "?"
            guard acceptedPeerTypes.contains(type) else {
                throw .handshake("the peer is a \(type) socket, which cannot talk to this one")
            }
            peerIdentity = properties["Identity"] ?? []
            isReady = true
        case "ERROR":
            let reason = data.count > 1 ? String(decoding: data.dropFirst(), as: UTF8.self) : "no reason given"
            throw .handshake("the peer refused: \(reason)")
        case "PING" where isReady:
            // A PONG between messages, whole, before the next message.
            outgoing.append(contentsOf: ZMTPWire.pong(forPing: data))
            messageEnds.append(outgoing.count)
        default:
            break   // PONG, SUBSCRIBE and the like mean nothing to a DEALER or a ROUTER
        }
    }
}

/// Whole messages read and not yet taken by the owner, in arrival order.
struct ReceivedMessages {
    private var messages: [[[UInt8]]] = []
    private var next = 0

    var isEmpty: Bool { next == messages.count }

    mutating func append(_ message: [[UInt8]]) { messages.append(message) }

    /// The oldest message, or nil; the storage is kept once emptied.
    mutating func pop() -> [[UInt8]]? {
        guard next < messages.count else { return nil }
        let message = messages[next]
        next += 1
        if next == messages.count {
            messages.removeAll(keepingCapacity: true)
            next = 0
        }
        return message
    }
}

extension Array where Element == UInt8 {
    /// Emptied, keeping its storage unless a burst made it large: a node holding hundreds of
    /// connections must not keep each one's largest burst for good.
    mutating func empty() {
        if capacity > 256 << 10 { self = [] } else { removeAll(keepingCapacity: true) }
    }
}

/// Where `tcp://host:port` is: an IP address, `*` (every interface), or a name looked up.
struct TCPAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0
    var family: Int32 = AF_INET

    init?(endpoint: String) {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        var host = String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
        let port = String(endpoint[endpoint.index(after: colon)...])
        guard let portNumber = UInt16(port == "*" ? "0" : port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "*" {
            var any = sockaddr_in()
            any.sin_family = sa_family_t(AF_INET)
            any.sin_port = portNumber.bigEndian
            withUnsafeMutableBytes(of: &storage) { target in withUnsafeBytes(of: any) { target.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            return
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(portNumber), &hints, &found) == 0, let first = found else { return nil }
        defer { freeaddrinfo(found) }
        family = first.pointee.ai_family
        length = first.pointee.ai_addrlen
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(length))) }
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

/// A non-blocking TCP socket with Nagle off (a settlement's frames must not wait for more).
func openTCPSocket(family: Int32) -> Int32 {
    let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return fd }
    setNoDelay(fd)
    return fd
}

func setNoDelay(_ fd: Int32) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

/// Registers (or changes) `fd` in `epoll` for input, and for output when `writable`.
func watch(_ epoll: Int32, _ fd: Int32, tag: UInt64, writable: Bool, add: Bool) {
    var event = epoll_event()
    event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (writable ? EPOLLOUT.rawValue : 0)
    event.data.u64 = tag
    _ = epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event)
}
