import CZeroMQ
import Glibc

/// The side a connection takes in CURVE (RFC 26), or none (the NULL mechanism).
enum ZMTPSecurity {
    case null
    case curveClient(CurveClientSecurity)
    case curveServer(CurveServerSecurity)
}

/// A CURVE client's keys: its own long-term pair and the server's public key, 32 bytes each.
public struct CurveClientSecurity: Sendable {
    let publicKey: [UInt8], secretKey: [UInt8], serverKey: [UInt8]

    /// From Z85 text, as the key files hold them; nil if a key is not 40 Z85 characters.
    public init?(_ keys: CurveKeyPair, serverKey: String) {
        guard let publicKey = Z85.decodeKey(keys.publicKey), let secretKey = Z85.decodeKey(keys.secretKey),
              let serverKey = Z85.decodeKey(serverKey) else { return nil }
        (self.publicKey, self.secretKey, self.serverKey) = (publicKey, secretKey, serverKey)
    }
}

/// A CURVE server's keys, and who it admits: asked once per connection, when the client has
/// proved it holds the secret half of `clientKey` (Z85), from `address` (its IP). What ZAP asks
/// a handler in libzmq, asked here in the owner's thread.
public struct CurveServerSecurity: Sendable {
    let publicKey: [UInt8], secretKey: [UInt8]
    let admit: @Sendable (_ clientKey: String, _ address: String) -> ZAPDecision

    public init?(_ keys: CurveKeyPair, admit: @escaping @Sendable (_ clientKey: String, _ address: String) -> ZAPDecision) {
        guard let publicKey = Z85.decodeKey(keys.publicKey), let secretKey = Z85.decodeKey(keys.secretKey) else { return nil }
        (self.publicKey, self.secretKey, self.admit) = (publicKey, secretKey, admit)
    }
}

/// One TCP connection speaking ZMTP 3, for `NativeDealer` and `NativeRouter`. With the NULL
/// mechanism: our greeting and READY first, then the peer's checked, then whole messages both
/// ways. With CURVE: HELLO, WELCOME, INITIATE and READY (`CurveZMQ`), the server asking its
/// `admit` in between, then every frame sealed in a MESSAGE box. Writes that the connection
/// does not take at once wait in `outgoing` until it is writable again. Its owner polls the
/// descriptor and closes it when `problem` is set.
final class ZMTPConnection {
    let fd: Int32
    /// The peer's routing id (READY's Identity) and socket type, once its READY has come.
    private(set) var peerIdentity: [UInt8] = []
    private(set) var isReady = false
    /// Why the connection cannot go on; its owner closes it.
    private(set) var problem: String?
    /// CURVE server: the name the client's key was admitted under.
    private(set) var userID: String?

    private enum Handshake {
        case null
        case client(CurveClientHandshake, welcomed: Bool)
        case server(CurveServerHandshake, CurveServerSecurity, welcomed: Bool)
    }
    private var handshake: Handshake
    /// CURVE, once the handshake is through: seals what is sent and opens what comes.
    private var cipher: CurveCipher?
    /// Our socket type and routing id, as CURVE's INITIATE or READY box announces them.
    private let ownMetadata: [UInt8]
    /// A refused handshake: closed with this problem once its ERROR is written.
    private var closesWhenWritten: String?

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
         leadingSlot: Bool = false, security: ZMTPSecurity = .null) {
        self.fd = fd
        self.leadingSlot = leadingSlot
        self.acceptedPeerTypes = acceptedPeerTypes
        self.maxFrameBytes = maxFrameBytes
        ownMetadata = ZMTPWire.metadata(socketType: socketType, routingID: routingID)
        switch security {
        case .null:
            handshake = .null
            outgoing = ZMTPWire.greeting() + ZMTPWire.ready(socketType: socketType, routingID: routingID)
        case .curveClient(let keys):
            var client = CurveClientHandshake(publicKey: keys.publicKey, secretKey: keys.secretKey, serverKey: keys.serverKey)
            outgoing = ZMTPWire.greeting(mechanism: "CURVE") + ZMTPWire.commandFrame(client.hello())
            handshake = .client(client, welcomed: false)
        case .curveServer(let keys):
            handshake = .server(CurveServerHandshake(publicKey: keys.publicKey, secretKey: keys.secretKey), keys, welcomed: false)
            outgoing = ZMTPWire.greeting(mechanism: "CURVE", asServer: true)
        }
        handshakeEnd = outgoing.count
    }

    private var mechanismName: String {
        if case .null = handshake { return "NULL" }
        return "CURVE"
    }

    /// Bytes queued and not yet written.
    var unwrittenBytes: Int { outgoing.count - written }

    /// Queues one message (written once the handshake is through; sealed under CURVE, which
    /// only a connection through its handshake has).
    func enqueue(_ frames: ArraySlice<[UInt8]>) {
        if cipher != nil {
            let last = frames.endIndex - 1
            for index in frames.indices {
                cipher!.appendFrame(frames[index], flags: index < last ? CurveCipher.more : 0, to: &outgoing)
            }
        } else {
            ZMTPWire.appendMessage(frames, to: &outgoing)
        }
        messageEnds.append(outgoing.count)
    }

    /// Queues messages already encoded in plain ZMTP frames (`ends` relative to `bytes`' start).
    func enqueue(encoded bytes: ArraySlice<UInt8>, ends: [Int]) {
        guard cipher != nil else {
            let base = outgoing.count
            outgoing.append(contentsOf: bytes)
            messageEnds.append(contentsOf: ends.map { $0 + base })
            return
        }
        // Plain frames: a message ends at its frame without MORE.
        var at = bytes.startIndex
        while at < bytes.endIndex, let frame = try? ZMTPWire.frame(in: bytes[at...], maxBytes: Int.max) {
            cipher!.appendFrame(Array(bytes[frame.body]), flags: frame.hasMore ? CurveCipher.more : 0, to: &outgoing)
            at = frame.body.upperBound
            if !frame.hasMore { messageEnds.append(outgoing.count) }
        }
    }

    /// The messages not yet begun, encoded in plain ZMTP frames, with where each ends: what a
    /// lost connection gives back (one half written went with it: its peer drops it).
    func unsentMessages() -> (bytes: ArraySlice<UInt8>, ends: [Int]) {
        let start = written <= handshakeEnd ? handshakeEnd : (messageEnds.first { $0 >= written } ?? outgoing.count)
        guard cipher != nil else {
            return (outgoing[min(start, outgoing.count)...], messageEnds.filter { $0 > start }.map { $0 - start })
        }
        // Sealed for a connection that is gone: opened again with this side's own key, to be
        // sealed afresh for the next.
        var plain: [UInt8] = [], plainEnds: [Int] = []
        var at = start
        while at < outgoing.count, let frame = try? ZMTPWire.frame(in: outgoing[at...], maxBytes: Int.max),
              let opened = try? cipher!.open(&outgoing, frame.body, ownMessage: true) {
            at = frame.body.upperBound
            // A PONG was for the connection that is gone: sealed again as a message frame it
            // would reach the next peer as a message.
            guard opened.flags & CurveCipher.command == 0 else { continue }
            let hasMore = opened.flags & CurveCipher.more != 0
            ZMTPWire.appendHeader(flags: hasMore ? ZMTPWire.more : 0, size: opened.frame.count, to: &plain)
            plain.append(contentsOf: outgoing[opened.frame])
            if !hasMore { plainEnds.append(plain.count) }
        }
        return (plain[...], plainEnds)
    }

    /// Writes what is queued (before the peer's READY, only the handshake). True when everything
    /// it may write is written; false when the connection wants to be told it is writable.
    @discardableResult
    func flush() -> Bool {
        guard problem == nil else { return true }
        let end = isReady ? outgoing.count : min(handshakeEnd, outgoing.count)
        while written < end || (closesWhenWritten != nil && written == end) {
            if written == end, let reason = closesWhenWritten {
                fail(reason)
                return true
            }
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
    /// A read shorter than the buffer ends it, unless `hungUp` (the peer's FIN, or an error, came
    /// with the event): then it reads on to the end, which a poller watching the owner's epoll
    /// edge-triggered would not be woken for again.
    func readAvailable(into scratch: UnsafeMutableRawBufferPointer, hungUp: Bool = false, deliver: (inout [[UInt8]]) -> Void) {
        while problem == nil {
            let count = read(fd, scratch.baseAddress!, scratch.count)
            if count > 0 {
                incoming.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
                parse(deliver)
                if count < scratch.count && !hungUp { return }
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
                // No slice of `incoming` outlives its statement: a MESSAGE box is opened in place.
                if !greetingSeen {
                    guard incoming.count - parsed >= ZMTPWire.greetingBytes else { break }
                    try ZMTPWire.checkGreeting(incoming[parsed...], mechanism: mechanismName)
                    parsed += ZMTPWire.greetingBytes
                    greetingSeen = true
                    continue
                }
                guard let frame = try ZMTPWire.frame(in: incoming[parsed...], maxBytes: maxFrameBytes) else { break }
                parsed = frame.body.upperBound
                var body = frame.body
                var hasMore = frame.hasMore
                if isReady, cipher != nil {
                    // Every frame is a MESSAGE box (libzmq sends them as data frames).
                    let opened = try cipher!.open(&incoming, frame.body)
                    body = opened.frame
                    hasMore = opened.flags & CurveCipher.more != 0
                    if opened.flags & CurveCipher.command != 0 {
                        try command(incoming[body])
                        continue
                    }
                } else if frame.isCommand {
                    try command(incoming[frame.body])
                    continue
                }
                if isReady {
                    if partial.isEmpty {
                        // A node's messages have three or four frames: one allocation each.
                        partial.reserveCapacity(slots + 4)
                        if slots > 0 { partial.append([]) }
                    }
                    partialBytes += body.count
                    guard partialBytes <= maxFrameBytes, partial.count - slots < Self.maxFramesPerMessage else {
                        throw ZMTPWire.Problem.messageTooLarge(frames: partial.count - slots + 1, bytes: partialBytes)
                    }
                    partial.append(Array(incoming[body]))
                    if !hasMore {
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
        if !isReady {
            switch handshake {
            case .null:
                break
            case .client(var client, let welcomed):
                if !welcomed {
                    appendHandshake(try client.initiate(welcome: body, metadata: ownMetadata))
                    handshake = .client(client, welcomed: true)
                } else {
                    let (metadata, cipher) = try client.ready(body)
                    try peerReady(properties: ZMTPWire.properties(ofReady: metadata[...]))
                    self.cipher = cipher
                }
                return
            case .server(var server, let keys, let welcomed):
                if !welcomed {
                    appendHandshake(try server.welcome(hello: body))
                    handshake = .server(server, keys, welcomed: true)
                    return
                }
                let (clientKey, metadata) = try server.initiate(body)
                let properties = try ZMTPWire.properties(ofReady: metadata[...])
                switch keys.admit(Z85.encodeKey(clientKey) ?? "?", socketAddress(fd, peer: true)?.host ?? "?") {
                case .admit(let name):
                    let (ready, cipher) = server.ready(metadata: ownMetadata)
                    appendHandshake(ready)
                    handshake = .server(server, keys, welcomed: true)
                    try peerReady(properties: properties)
                    userID = name
                    self.cipher = cipher
                case .refuse(let reason):
                    // As libzmq answers a ZAP refusal: an ERROR with the status code, then the close.
                    appendHandshake([5] + Array("ERROR".utf8) + [3] + Array("400".utf8))
                    closesWhenWritten = "handshake: key refused: \(reason)"
                }
                return
            }
        }
        let (name, data) = try ZMTPWire.commandName(body)
        switch name {
        case "READY" where !isReady:
            try peerReady(properties: ZMTPWire.properties(ofReady: data))
        case "ERROR":
            let reason = data.count > 1 ? String(decoding: data.dropFirst(), as: UTF8.self) : "no reason given"
            throw .handshake("the peer refused: \(reason)")
        case "PING" where isReady:
            // A PONG between messages, whole, before the next message.
            let pong = ZMTPWire.pongBody(forPing: data)
            if cipher != nil {
                cipher!.appendFrame(pong, flags: CurveCipher.command, to: &outgoing)
            } else {
                outgoing.append(contentsOf: ZMTPWire.commandFrame(pong))
            }
            messageEnds.append(outgoing.count)
        default:
            break   // PONG, SUBSCRIBE and the like mean nothing to a DEALER or a ROUTER
        }
    }

    /// The peer's properties: its socket type must suit ours; its routing id names it.
    private func peerReady(properties: [String: [UInt8]]) throws(ZMTPWire.Problem) {
        let type = properties["Socket-Type"].map { String(decoding: $0, as: UTF8.self) } ?? "?"
        guard acceptedPeerTypes.contains(type) else {
            throw .handshake("the peer is a \(type) socket, which cannot talk to this one")
        }
        peerIdentity = properties["Identity"] ?? []
        isReady = true
    }

    /// A handshake command, written before any message.
    private func appendHandshake(_ body: [UInt8]) {
        outgoing.append(contentsOf: ZMTPWire.commandFrame(body))
        handshakeEnd = outgoing.count
    }
}

/// The address and port a socket is bound to, or (`peer`) the one it is connected to.
func socketAddress(_ fd: Int32, peer: Bool) -> (host: String, port: UInt16)? {
    var storage = sockaddr_storage()
    var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let found = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { peer ? getpeername(fd, $0, &size) : getsockname(fd, $0, &size) }
    }
    guard found == 0 else { return nil }
    var text = [CChar](repeating: 0, count: 64)
    let family = storage.ss_family
    let port = withUnsafePointer(to: &storage) { pointer -> UInt16 in
        if family == sa_family_t(AF_INET6) {
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                var address = $0.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &address, &text, 64)
                return UInt16(bigEndian: $0.pointee.sin6_port)
            }
        }
        return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
            var address = $0.pointee.sin_addr
            _ = inet_ntop(AF_INET, &address, &text, 64)
            return UInt16(bigEndian: $0.pointee.sin_port)
        }
    }
    return (zmqText(text), port)
}

/// Whole messages read and not yet taken by the owner, in arrival order, with the name each
/// sender's key was admitted under when `authenticated`.
struct ReceivedMessages {
    private var messages: [[[UInt8]]] = []
    private var userIDs: [String?] = []
    private var next = 0
    private let authenticated: Bool

    init(authenticated: Bool = false) { self.authenticated = authenticated }

    var isEmpty: Bool { next == messages.count }

    mutating func append(_ message: [[UInt8]], userID: String? = nil) {
        messages.append(message)
        if authenticated { userIDs.append(userID) }
    }

    /// The oldest message, or nil; the storage is kept once emptied.
    mutating func pop() -> [[UInt8]]? { popAuthenticated()?.frames }

    mutating func popAuthenticated() -> (frames: [[UInt8]], userID: String?)? {
        guard next < messages.count else { return nil }
        let message = messages[next]
        let userID = authenticated ? userIDs[next] : nil
        next += 1
        if next == messages.count {
            messages.removeAll(keepingCapacity: true)
            userIDs.removeAll(keepingCapacity: true)
            next = 0
        }
        return (message, userID)
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

/// The events of an epoll entry that say the peer hung up or the connection failed.
let hangUpEvents = EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue

/// Registers (or changes) `fd` in `epoll` for input, and for output when `writable`.
func watch(_ epoll: Int32, _ fd: Int32, tag: UInt64, writable: Bool, add: Bool) {
    var event = epoll_event()
    event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue | (writable ? EPOLLOUT.rawValue : 0)
    event.data.u64 = tag
    _ = epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event)
}
