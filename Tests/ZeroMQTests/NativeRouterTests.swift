import Glibc
import Testing
import ZeroMQ

/// `NativeRouter` against libzmq's DEALER and against `NativeDealer`: what a node's port relies on.
@Suite struct NativeRouterTests {
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

/// Microseconds on the monotonic clock, for the tests' deadlines.
func monotonicUs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}
