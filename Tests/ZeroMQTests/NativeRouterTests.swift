import Glibc
import Testing
import ZeroMQ

/// Tests that step sockets themselves, as a reactor does.
protocol ServesSockets {}

extension ServesSockets {
    /// Serves every socket until `done` holds, up to 10 s (the machine may be busy with other
    /// tests); false if it never did.
    func serve(_ sockets: [any PolledSocket], until done: () throws -> Bool) throws -> Bool {
        let poller = try EventPoller(sockets)
        let deadline = monotonicUs() + 10_000_000
        while monotonicUs() < deadline {
            if try done() { return true }
            _ = try poller.wait(timeoutMs: 50)
        }
        return try done()
    }

    /// The next message on `socket`, serving `others` meanwhile.
    func next(_ socket: any PolledSocket, serving others: [any PolledSocket] = []) throws -> [[UInt8]]? {
        var message: [[UInt8]]?
        _ = try serve([socket] + others) {
            for other in others where other !== socket { _ = try other.receive(wait: false) }
            message = try socket.receive(wait: false)
            return message != nil
        }
        return message
    }
}

/// `NativeRouter` against libzmq's DEALER and against `NativeDealer`: what a node's port relies on.
@Suite struct NativeRouterTests: ServesSockets {
    @Test func aLibzmqDealerIsNamedByItsRoutingIDAndAnswered() throws {
        let router = try NativeRouter(handover: true)
        try router.bind("tcp://127.0.0.1:*")
        let context = try Context()
        let dealer = try context.socket(.dealer)
        try dealer.setRoutingID(Array("370211".utf8))
        try dealer.connect(router.lastEndpoint)
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try dealer.send([[], Array("req".utf8), big])
        #expect(try next(router) == [Array("370211".utf8), [], Array("req".utf8), big])
        try router.send([Array("370211".utf8), [], Array("rsp".utf8), big])
        #expect(try next(dealer, serving: [router]) == [[], Array("rsp".utf8), big])
        #expect(router.peerCount == 1)
    }

    @Test func aNativeDealerAndANativeRouterTalk() throws {
        let router = try NativeRouter(handover: true)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370200".utf8), immediate: true)
        #expect(throws: ZeroMQError.self, "immediate: nothing queues for a link not yet up") { try dealer.send([Array("early".utf8)]) }
        #expect(try serve([router, dealer]) {
            _ = try router.receive(wait: false)
            _ = try dealer.receive(wait: false)
            return dealer.isConnected
        })
        for index in 0..<1_000 { try dealer.send([Array("request \(index)".utf8)]) }
        for index in 0..<1_000 {
            #expect(try next(router, serving: [dealer]) == [Array("370200".utf8), Array("request \(index)".utf8)])
        }
        try router.send([Array("370200".utf8), Array("answer".utf8)])
        #expect(try next(dealer, serving: [router]) == [Array("answer".utf8)])
        #expect(dealer.handshakes == 1)
    }

    /// A reactor holds a round's messages and writes them together before it waits: held
    /// messages stay queued until `flushHeld`, then arrive whole and in order both ways, and
    /// what is held when a socket closes still leaves (a node stopping after its last turn).
    @Test func heldWritesLeaveAtFlushInOrderAndOnClose() throws {
        let router = try NativeRouter(handover: true)
        router.holdsWrites = true
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370200".utf8), immediate: true)
        dealer.holdsWrites = true
        #expect(try serve([router, dealer]) {
            _ = try router.receive(wait: false)
            _ = try dealer.receive(wait: false)
            return dealer.isConnected && router.peerCount == 1
        })
        for index in 0..<100 { try dealer.send([Array("request \(index)".utf8)]) }
        #expect(dealer.hasHeldWrites)
        dealer.flushHeld()
        #expect(!dealer.hasHeldWrites)
        for index in 0..<100 {
            #expect(try next(router, serving: [dealer]) == [Array("370200".utf8), Array("request \(index)".utf8)])
        }
        for index in 0..<100 {
            // Both ways of naming the peer: in the message's first frame, or beside the message.
            if index.isMultiple(of: 2) {
                try router.send([Array("370200".utf8), Array("answer \(index)".utf8)])
            } else {
                try router.send(to: Array("370200".utf8), [Array("answer \(index)".utf8)])
            }
        }
        #expect(router.hasHeldWrites)
        router.flushHeld()
        #expect(!router.hasHeldWrites)
        for index in 0..<100 { #expect(try next(dealer, serving: [router]) == [Array("answer \(index)".utf8)]) }
        try dealer.send([Array("the last".utf8)])
        #expect(dealer.hasHeldWrites)
        dealer.close()
        #expect(try next(router) == [Array("370200".utf8), Array("the last".utf8)])
    }

    @Test func sendingToNobodyFailsAsRouterMandatoryDoes() throws {
        let router = try NativeRouter(handover: true)
        try router.bind("tcp://127.0.0.1:*")
        let error = #expect(throws: ZeroMQError.self) { try router.send([Array("nobody".utf8), Array("answer".utf8)]) }
        #expect(error?.isHostUnreachable == true)
    }

    /// A restarted child presents its id again: with handover it takes it over; without (secured
    /// links) the newcomer is refused and the first keeps it.
    @Test(arguments: [true, false]) func aSecondPeerWithTheSameIDTakesItOverOnlyWithHandover(handover: Bool) throws {
        let router = try NativeRouter(handover: handover)
        try router.bind("tcp://127.0.0.1:*")
        let first = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370100".utf8))
        try first.send([Array("from the first".utf8)])
        #expect(try next(router, serving: [first]) == [Array("370100".utf8), Array("from the first".utf8)])
        let second = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370100".utf8), redialMs: 60_000)
        try second.send([Array("from the second".utf8)])
        if handover {
            #expect(try next(router, serving: [first, second]) == [Array("370100".utf8), Array("from the second".utf8)])
            try router.send([Array("370100".utf8), Array("answer".utf8)])
            #expect(try next(second, serving: [router, first]) == [Array("answer".utf8)])
            #expect(try serve([router, first]) { _ = try first.receive(wait: false); return !first.isConnected },
                    "the first connection was closed")
        } else {
            var arrived: [[UInt8]]?
            let refused = try serve([router, second]) {
                arrived = try arrived ?? router.receive(wait: false)
                _ = try second.receive(wait: false)
                return router.lastProblem != nil
            }
            #expect(refused && arrived == nil, "the second's message never arrives")
            #expect(router.lastProblem == "routing id 370100 is held by another connection")
            try router.send([Array("370100".utf8), Array("answer".utf8)])
            #expect(try next(first, serving: [router]) == [Array("answer".utf8)])
        }
    }

    /// A peer without a routing id gets one made up, starting with a zero byte as libzmq's do,
    /// and is answered by it.
    @Test func aPeerWithoutAnIDIsNamedByOneMadeUp() throws {
        let router = try NativeRouter(handover: true)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try NativeDealer(endpoint: router.lastEndpoint)
        try dealer.send([Array("anonymous".utf8)])
        let message = try #require(try next(router, serving: [dealer]))
        #expect(message[0].count == 5 && message[0][0] == 0 && message[1] == Array("anonymous".utf8))
        try router.send([message[0], Array("answer".utf8)])
        #expect(try next(dealer, serving: [router]) == [Array("answer".utf8)])
    }
}

/// Hostile bytes on a node's port: each bad connection is dropped with the reason named, and the
/// port keeps serving a good peer.
@Suite struct NativeRouterHostileTests {
    let router: NativeRouter
    let good: NativeDealer
    let port: UInt16

    init() throws {
        router = try NativeRouter(handover: true, maxMessageBytes: 1 << 20)
        try router.bind("tcp://127.0.0.1:*")
        port = UInt16(router.lastEndpoint.split(separator: ":").last!)!
        good = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370102".utf8))
    }

    /// Opens a plain TCP connection to the router, writes `bytes`, and leaves it open (closed
    /// when the returned descriptor is).
    func hostile(_ bytes: [UInt8]) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return fd
    }

    /// The good peer still gets through: its message arrives whole, the port's answer returns.
    func goodPeerIsServed(_ text: String) throws -> Bool {
        try good.send([Array(text.utf8)])
        let poller = try EventPoller([router, good])
        let deadline = monotonicUs() + 10_000_000
        while monotonicUs() < deadline {
            while let message = try router.receive(wait: false) {
                if message == [Array("370102".utf8), Array(text.utf8)] {
                    try router.send([Array("370102".utf8), Array("answer to \(text)".utf8)])
                }
            }
            if let answer = try good.receive(wait: false) { return answer == [Array("answer to \(text)".utf8)] }
            _ = try poller.wait(timeoutMs: 50)
        }
        return false
    }

    /// Serves the router until it has dropped a connection for `problem`.
    func dropped(for problem: String) throws -> Bool {
        let poller = try EventPoller([router])
        let deadline = monotonicUs() + 10_000_000
        while monotonicUs() < deadline {
            while try router.receive(wait: false) != nil {}
            if router.lastProblem == problem { return true }
            _ = try poller.wait(timeoutMs: 50)
        }
        return false
    }

    var handshake: [UInt8] { ZMTPWire.greeting() + ZMTPWire.ready(socketType: "DEALER", routingID: []) }

    @Test func eachKindOfBadConnectionIsDroppedWithItsReason() throws {
        #expect(try goodPeerIsServed("before"))
        var http = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        http += [UInt8](repeating: 0x41, count: 64)
        let cases: [(bytes: [UInt8], problem: String)] = [
            (http, "\(ZMTPWire.Problem.notZMTP)"),
            (handshake + [0x00, 0xFF] + [UInt8](repeating: 0, count: 255) + [0x02, 0x40, 0, 0, 0, 0, 0, 0, 0],
             "\(ZMTPWire.Problem.frameTooLarge(1 << 62))"),
            (handshake + (0..<65).flatMap { _ in [UInt8(0x01), 3, 1, 2, 3] },
             "\(ZMTPWire.Problem.messageTooLarge(frames: 65, bytes: 195))"),
            (ZMTPWire.greeting() + [0x00, 1, 0x42], "handshake: a message before the peer's READY"),
            (ZMTPWire.greeting() + [0x04, 12, 5] + Array("READY".utf8) + [11] + Array("Socket-Type".utf8).prefix(5),
             "handshake: a READY property runs past the command"),
            (ZMTPWire.greeting() + ZMTPWire.ready(socketType: "PUB", routingID: []),
             "handshake: the peer is a PUB socket, which cannot talk to this one"),
        ]
        for (bytes, problem) in cases {
            let fd = hostile(bytes)
            defer { close(fd) }
            #expect(try dropped(for: problem), "expected \(problem), saw \(router.lastProblem ?? "nothing")")
        }
        #expect(try goodPeerIsServed("after"))
    }

    /// Seeded random bytes, raw and after a valid handshake, 600 connections: the port never
    /// fails and still serves its good peer.
    @Test func randomBytesNeverStopThePort() throws {
        var state: UInt64 = 0x5E77_1E4E
        func next() -> UInt64 {   // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for round in 0..<600 {
            var bytes = (0..<Int(next() % 600)).map { _ in UInt8(truncatingIfNeeded: next()) }
            if round % 2 == 1 { bytes = handshake + bytes }
            if round % 3 == 2, !bytes.isEmpty { bytes[Int(next() % UInt64(bytes.count))] ^= 0xFF }   // one bit flip in a valid start
            let fd = hostile(bytes)
            _ = try router.receive(wait: false)
            close(fd)
            if round % 100 == 99 { #expect(try goodPeerIsServed("round \(round)")) }
        }
    }
}

/// Microseconds on the monotonic clock, for the tests' deadlines.
func monotonicUs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}
