import Glibc
import Testing
import ZeroMQ

/// The ZMTP codec byte by byte, and `NativeDealer` against libzmq's own ROUTER: what a driver
/// relies on when it talks to a node without libzmq.
@Suite struct NativeDealerTests {
    // MARK: The wire

    @Test func aReadyCommandCarriesTheSocketTypeAndTheRoutingID() throws {
        let bytes = ZMTPWire.ready(socketType: "DEALER", routingID: Array("HOSP-1".utf8))
        let frame = try #require(try ZMTPWire.frame(in: bytes[...], maxBytes: 1_000))
        #expect(frame.isCommand && !frame.hasMore && frame.body.upperBound == bytes.count)
        let (name, data) = try ZMTPWire.commandName(bytes[frame.body])
        #expect(name == "READY")
        let properties = try ZMTPWire.properties(ofReady: data)
        #expect(properties == ["Socket-Type": Array("DEALER".utf8), "Identity": Array("HOSP-1".utf8)])
    }

    @Test func framesAreParsedOnlyWhenWholeAndLongOnesBySize() throws {
        var out: [UInt8] = []
        let long = [UInt8](repeating: 7, count: 300)
        ZMTPWire.appendMessage([[], Array("body".utf8), long], to: &out)
        #expect(out.count == 2 + 6 + 9 + 300, "two short headers, one long")
        var at = 0
        var frames: [[UInt8]] = []
        var more: [Bool] = []
        while let frame = try ZMTPWire.frame(in: out[at...], maxBytes: 1_000) {
            frames.append(Array(out[frame.body]))
            more.append(frame.hasMore)
            at = frame.body.upperBound
        }
        #expect(frames == [[], Array("body".utf8), long])
        #expect(more == [true, true, false])
        #expect(try ZMTPWire.frame(in: out[8..<(out.count - 1)], maxBytes: 1_000) == nil, "a frame one byte short waits")
        #expect(throws: ZMTPWire.Problem.frameTooLarge(300)) { try ZMTPWire.frame(in: out[8...], maxBytes: 299) }
    }

    @Test func aGreetingIsCheckedForSignatureVersionAndMechanism() throws {
        let ours = ZMTPWire.greeting()
        #expect(ours.count == 64)
        try ZMTPWire.checkGreeting(ours[...])
        var http = Array("GET / HTTP/1.1\r\n".utf8)
        http += [UInt8](repeating: 0, count: 64 - http.count)
        #expect(throws: ZMTPWire.Problem.notZMTP) { try ZMTPWire.checkGreeting(http[...]) }
        var curve = ours
        for (offset, byte) in "CURVE".utf8.enumerated() { curve[12 + offset] = byte }
        #expect(throws: ZMTPWire.Problem.mechanism("CURVE")) { try ZMTPWire.checkGreeting(curve[...]) }
    }

    // MARK: Against libzmq

    /// Waits on `dealer` until it has a message, up to 10 s (the machine may be busy with other
    /// tests).
    func next(_ dealer: NativeDealer) throws -> [[UInt8]]? {
        let poller = try EventPoller([dealer])
        let deadline = monotonicUs() + 10_000_000
        while monotonicUs() < deadline {
            if let message = try dealer.receive(wait: false) { return message }
            _ = try poller.wait(timeoutMs: 100)
        }
        return nil
    }

    /// The ROUTER's next message, up to 10 s, with the dealer served meanwhile (its owner's
    /// loop does its I/O: the handshake too).
    func next(_ router: Socket, serving dealer: NativeDealer) throws -> [[UInt8]]? {
        let poller = try EventPoller([router, dealer])
        let deadline = monotonicUs() + 10_000_000
        while monotonicUs() < deadline {
            if let message = try router.receive(wait: false) { return message }
            #expect(try dealer.receive(wait: false) == nil, "nothing was sent to the dealer")
            _ = try poller.wait(timeoutMs: 100)
        }
        return nil
    }

    @Test func aLibzmqRouterNamesTheDealerByItsIDAndAnswersIt() throws {
        let context = try Context()
        let router = try context.socket(.router)
        try router.setRouterMandatory(true)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try NativeDealer(endpoint: try router.lastEndpoint, routingID: Array("H001".utf8))
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        try dealer.send([[], Array("request".utf8)])
        try dealer.send([big])
        #expect(try next(router, serving: dealer) == [Array("H001".utf8), [], Array("request".utf8)])
        #expect(try next(router, serving: dealer) == [Array("H001".utf8), big], "a message longer than a read arrives whole")
        try router.send([Array("H001".utf8), [], Array("answer".utf8)])
        try router.send([Array("H001".utf8), big])
        #expect(try next(dealer) == [[], Array("answer".utf8)])
        #expect(try next(dealer) == [big])
        #expect(dealer.isConnected && dealer.handshakes == 1)
    }

    /// A dealer's descriptor is level-triggered: an answer that waits unread is reported by
    /// every wait until it is read, and then by none. Watched edge-triggered, the bench's upload
    /// loop now and then never heard of answers that had come, and waited 15 s for them.
    @Test func anAnswerWaitingUnreadIsReportedByEveryWaitUntilRead() throws {
        let context = try Context()
        let router = try context.socket(.router)
        try router.bind("tcp://127.0.0.1:*")
        let dealer = try NativeDealer(endpoint: try router.lastEndpoint, routingID: Array("H003".utf8))
        try dealer.send([Array("request".utf8)])
        #expect(try next(router, serving: dealer) == [Array("H003".utf8), Array("request".utf8)])
        let poller = try EventPoller([dealer])
        _ = try poller.wait(timeoutMs: 0)   // what the constructor marked to ask about first
        try router.send([Array("H003".utf8), Array("answer".utf8)])
        let deadline = monotonicUs() + 10_000_000
        var reported = false
        while !reported && monotonicUs() < deadline { reported = try poller.wait(timeoutMs: 100).contains(0) }
        #expect(reported, "the answer's arrival is reported")
        for _ in 0..<3 {
            #expect(try poller.wait(timeoutMs: 5_000) == [0], "unread, so reported again at once")
        }
        #expect(try dealer.receive(wait: false) == [Array("answer".utf8)])
        #expect(try dealer.receive(wait: false) == nil)
        #expect(try poller.wait(timeoutMs: 50) == [], "read to the end: nothing to report")
    }

    /// Sent while nobody listens, delivered when the ROUTER comes (and again after it restarts):
    /// what a driver's hospital link does while a county is down.
    @Test func messagesWaitForTheRouterAndTheLinkIsRedialledAfterARestart() throws {
        let endpoint = "tcp://127.0.0.1:\(freePort())"
        let dealer = try NativeDealer(endpoint: endpoint, routingID: Array("H002".utf8), redialMs: 20)
        try dealer.send([Array("queued".utf8)])
        // Nobody listens: the dial is refused, and the link says where and why.
        #expect(try firstProblem(of: dealer) == "connect to \(endpoint): Connection refused")
        let poller = try EventPoller([dealer])
        // A ROUTER in a context of its own, so that it can be stopped for good: dropping the
        // context waits until libzmq's I/O thread has closed the port.
        var incarnation: (context: Context, router: Socket)? = try routerOfItsOwn()
        try incarnation!.router.bind(endpoint)
        // Nothing but the dealer's own timer drives the redial.
        #expect(try next(incarnation!.router, serving: dealer) == [Array("H002".utf8), Array("queued".utf8)])

        incarnation!.router.close()
        incarnation = nil
        let lost = monotonicUs() + 10_000_000
        while dealer.isConnected && monotonicUs() < lost {
            _ = try poller.wait(timeoutMs: 50)
            _ = try dealer.receive(wait: false)
        }
        #expect(!dealer.isConnected, "the dealer saw the ROUTER go")
        try dealer.send([Array("after the restart".utf8)])
        let context = try Context()
        let router = try context.socket(.router)
        try router.bind(endpoint)
        #expect(try next(router, serving: dealer) == [Array("H002".utf8), Array("after the restart".utf8)])
        #expect(dealer.handshakes == 2)
    }

    func routerOfItsOwn() throws -> (context: Context, router: Socket) {
        let context = try Context()
        return (context, try context.socket(.router))
    }

    /// A TCP socket bound to a free loopback port, listening when asked, and the port.
    func loopbackSocket(listening: Bool) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        if listening { _ = listen(fd, 4) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A loopback port nobody listens on (bound and closed again, at once).
    func freePort() -> UInt16 {
        let (fd, port) = loopbackSocket(listening: false)
        close(fd)
        return port
    }

    /// Serves `dealer` until it reports a problem, up to 10 s.
    func firstProblem(of dealer: NativeDealer) throws -> String? {
        let poller = try EventPoller([dealer])
        let deadline = monotonicUs() + 10_000_000
        while dealer.lastProblem == nil && monotonicUs() < deadline {
            _ = try poller.wait(timeoutMs: 50)
            _ = try dealer.receive(wait: false)
        }
        return dealer.lastProblem
    }

    /// A listener that does not speak ZMTP: the link names what is wrong and keeps redialling,
    /// and the messages sent meanwhile are kept.
    @Test func aPeerThatIsNotZMTPIsRefusedWithAReason() throws {
        let (listener, port) = loopbackSocket(listening: true)
        defer { close(listener) }
        let dealer = try NativeDealer(endpoint: "tcp://127.0.0.1:\(port)", redialMs: 1_000)
        try dealer.send([Array("kept".utf8)])
        let peer = accept(listener, nil, nil)
        defer { close(peer) }
        let reply = Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8) + [UInt8](repeating: 0, count: 64)
        _ = reply.withUnsafeBytes { write(peer, $0.baseAddress, $0.count) }
        #expect(try firstProblem(of: dealer) == "\(ZMTPWire.Problem.notZMTP)")
        // What it wrote before giving up is its greeting and READY, never the message.
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = buffer.withUnsafeMutableBytes { read(peer, $0.baseAddress, $0.count) }
        #expect(count > 0 && buffer[0] == 0xFF, "the dealer's greeting starts with 0xFF")
        #expect(!String(decoding: buffer[0..<max(0, count)], as: UTF8.self).contains("kept"))
    }
}

