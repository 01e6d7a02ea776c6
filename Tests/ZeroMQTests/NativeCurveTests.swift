import CSodium
import Glibc
import Synchronization
import Testing
@testable import ZeroMQ

/// CURVE on the native transport: `NativeRouter` and `NativeDealer` against libzmq's CURVE on
/// the other end (which is what hospitals and older nodes run), and against each other; who is
/// refused and why; and the MESSAGE boxes refusing what was tampered with or replayed.
@Suite struct NativeCurveTests: ServesSockets {
    let serverKeys: CurveKeyPair
    let clientKeys: CurveKeyPair

    init() throws {
        serverKeys = try CurveKeyPair.generate()
        clientKeys = try CurveKeyPair.generate()
    }

    final class Asked: Sendable {
        private let list = Mutex<[(key: String, address: String)]>([])
        func append(_ key: String, _ address: String) { list.withLock { $0.append((key, address)) } }
        var all: [(key: String, address: String)] { list.withLock { $0 } }
    }

    /// A native CURVE server that admits `clientKeys` as "hospital-1", and the keys it was asked.
    func secureRouter() throws -> (router: NativeRouter, asked: Asked) {
        let asked = Asked()
        let known = clientKeys.publicKey
        let security = try #require(CurveServerSecurity(serverKeys) { key, address in
            asked.append(key, address)
            return key == known ? .admit(userID: "hospital-1") : .refuse(reason: "unknown key")
        })
        let router = try NativeRouter(handover: false, curve: security)
        try router.bind("tcp://127.0.0.1:*")
        return (router, asked)
    }

    func nextAuthenticated(_ router: NativeRouter, serving others: [any PolledSocket] = []) throws -> (frames: [[UInt8]], userID: String?)? {
        var message: (frames: [[UInt8]], userID: String?)?
        _ = try serve([router] + others) {
            for other in others { _ = try other.receive(wait: false) }
            message = router.receiveAuthenticated()
            return message != nil
        }
        return message
    }

    /// Serves until the router has seen a handshake fail; the reasons.
    func failedHandshakes(_ router: NativeRouter, serving others: [any PolledSocket]) throws -> [String] {
        var reasons: [String] = []
        _ = try serve([router] + others) {
            for other in others { _ = try other.receive(wait: false) }
            _ = router.receiveAuthenticated()
            reasons += router.takeFailedHandshakes().keys
            return !reasons.isEmpty
        }
        return reasons
    }

    @Test func aLibzmqCurveClientIsAdmittedByANativeRouterUnderItsName() throws {
        let (router, asked) = try secureRouter()
        let context = try Context()
        let dealer = try context.socket(.dealer)
        try dealer.setLinger(milliseconds: 0)
        try dealer.setRoutingID(Array("H1".utf8))
        try dealer.makeCurveClient(clientKeys, serverKey: serverKeys.publicKey)
        try dealer.connect(router.lastEndpoint)
        let big = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try dealer.send([[], Array("req".utf8), big])
        let received = try #require(try nextAuthenticated(router))
        #expect(received.frames == [Array("H1".utf8), [], Array("req".utf8), big])
        #expect(received.userID == "hospital-1")
        #expect(asked.all.map(\.key) == [clientKeys.publicKey])
        #expect(asked.all.map(\.address) == ["127.0.0.1"])
        for index in 0..<300 { try router.send([Array("H1".utf8), [], Array("rsp \(index)".utf8)]) }
        for index in 0..<300 { #expect(try next(dealer, serving: [router]) == [[], Array("rsp \(index)".utf8)]) }
    }

    @Test func aNativeCurveDealerIsAdmittedByALibzmqCurveServerThroughZAP() throws {
        let context = try Context()
        let known = clientKeys.publicKey
        let zap = try ZAPHandler(context: context) { request in
            request.clientKey == known ? .admit(userID: "370200") : .refuse(reason: "unknown key")
        }
        defer { zap.stop() }
        let router = try context.socket(.router)
        try router.setLinger(milliseconds: 0)
        try router.makeCurveServer(serverKeys, zapDomain: "370000")
        try router.bind("tcp://127.0.0.1:*")
        defer { router.close() }
        let dealer = try NativeDealer(endpoint: try router.lastEndpoint, routingID: Array("370200".utf8),
                                      curve: try #require(CurveClientSecurity(clientKeys, serverKey: serverKeys.publicKey)))
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 13) }
        for index in 0..<500 { try dealer.send([[], Array("request \(index)".utf8)]) }
        try dealer.send([[], big])
        for index in 0..<500 {
            var received: (frames: [[UInt8]], userID: String?)?
            _ = try serve([router, dealer]) {
                _ = try dealer.receive(wait: false)
                received = try router.receiveAuthenticated(wait: false)
                return received != nil
            }
            #expect(received?.frames == [Array("370200".utf8), [], Array("request \(index)".utf8)])
            #expect(received?.userID == "370200")
        }
        #expect(try next(router, serving: [dealer]) == [Array("370200".utf8), [], big])
        try router.send([Array("370200".utf8), [], Array("answer".utf8)])
        #expect(try next(dealer, serving: [router]) == [[], Array("answer".utf8)])
        #expect(dealer.handshakes == 1)
    }

    @Test func nativeCurvePeersTalkInBothDirectionsWithHeldWrites() throws {
        let (router, _) = try secureRouter()
        router.holdsWrites = true
        let dealer = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370200".utf8), immediate: true,
                                      curve: try #require(CurveClientSecurity(clientKeys, serverKey: serverKeys.publicKey)))
        dealer.holdsWrites = true
        #expect(try serve([router, dealer]) {
            _ = router.receiveAuthenticated()
            _ = try dealer.receive(wait: false)
            return dealer.isConnected && router.peerCount == 1
        })
        for index in 0..<1_000 { try dealer.send([Array("request \(index)".utf8), Array(repeating: UInt8(index % 256), count: index)]) }
        dealer.flushHeld()
        for index in 0..<1_000 {
            let received = try nextAuthenticated(router, serving: [dealer])
            #expect(received?.frames == [Array("370200".utf8), Array("request \(index)".utf8), Array(repeating: UInt8(index % 256), count: index)])
            #expect(received?.userID == "hospital-1")
        }
        for index in 0..<1_000 { try router.send(to: Array("370200".utf8), [Array("answer \(index)".utf8)]) }
        router.flushHeld()
        for index in 0..<1_000 { #expect(try next(dealer, serving: [router]) == [Array("answer \(index)".utf8)]) }
    }

    @Test func aKeyNotAdmittedIsRefusedAndHearsWhy() throws {
        let (router, asked) = try secureRouter()
        let stranger = try CurveKeyPair.generate()
        let dealer = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370200".utf8), redialMs: 60_000,
                                      curve: try #require(CurveClientSecurity(stranger, serverKey: serverKeys.publicKey)))
        try dealer.send([Array("from a stranger".utf8)])
        let reasons = try failedHandshakes(router, serving: [dealer])
        #expect(reasons.contains { $0.contains("key refused: unknown key") })
        #expect(asked.all.map(\.key) == [stranger.publicKey])
        _ = try serve([router, dealer]) {
            _ = router.receiveAuthenticated()
            _ = try dealer.receive(wait: false)
            return dealer.lastProblem != nil
        }
        #expect(dealer.lastProblem?.contains("the peer refused: 400") == true)
        #expect(router.receiveAuthenticated() == nil)
    }

    @Test func aPlaintextPeerAndAClientWithTheWrongServerKeyNeverGetThrough() throws {
        let (router, asked) = try secureRouter()
        let plaintext = try NativeDealer(endpoint: router.lastEndpoint, redialMs: 60_000)
        try plaintext.send([Array("in clear".utf8)])
        #expect(try failedHandshakes(router, serving: [plaintext]).contains { $0.contains("NULL mechanism") })
        let misled = try NativeDealer(endpoint: router.lastEndpoint, redialMs: 60_000,
                                      curve: try #require(CurveClientSecurity(clientKeys, serverKey: try CurveKeyPair.generate().publicKey)))
        try misled.send([Array("to an impostor".utf8)])
        #expect(try failedHandshakes(router, serving: [misled]).contains { $0.contains("HELLO does not open") })
        #expect(asked.all.isEmpty, "neither got as far as asking who it is")
        #expect(router.receiveAuthenticated() == nil)
    }

    /// A peer that sends the start of a greeting and hangs up before the port has read
    /// anything: both the bytes and the hang-up wait when the port first reads. A reactor wakes
    /// only when the port's descriptor fires (edge-triggered), so the port must notice the
    /// hang-up in that one read, not at some later event that may never come.
    @Test func aPeerHangingUpMidGreetingIsNoticedOnTheWakeThatReadsIt() throws {
        let (router, _) = try secureRouter()
        let poller = try EventPoller([router])
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(router.lastEndpoint.split(separator: ":").last!)!.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        let start = Array(ZMTPWire.greeting().prefix(11))   // signature and major version, as libzmq sends first
        #expect(send(fd, start, start.count, 0) == start.count)
        Glibc.close(fd)
        var reasons: [String: Int] = [:]
        let deadline = monotonicUs() + 10_000_000
        while reasons.isEmpty && monotonicUs() < deadline {
            // As the reactor does: the port is read only when the poller says so.
            guard try !poller.wait(timeoutMs: 100).isEmpty else { continue }
            while router.receiveAuthenticated() != nil {}
            reasons = router.takeFailedHandshakes()
        }
        #expect(reasons == ["the peer closed the connection": 1])
    }

    /// Two ends of one connection, handshaken in memory.
    func handshaken() throws -> (client: CurveCipher, server: CurveCipher) {
        let client = try #require(CurveClientSecurity(clientKeys, serverKey: serverKeys.publicKey))
        let server = try #require(CurveServerSecurity(serverKeys) { _, _ in .admit(userID: "x") })
        var clientSide = CurveClientHandshake(publicKey: client.publicKey, secretKey: client.secretKey, serverKey: client.serverKey)
        var serverSide = CurveServerHandshake(publicKey: server.publicKey, secretKey: server.secretKey)
        let welcome = try serverSide.welcome(hello: clientSide.hello()[...])
        let initiate = try clientSide.initiate(welcome: welcome[...], metadata: ZMTPWire.metadata(socketType: "DEALER", routingID: [1]))
        let (clientKey, metadata) = try serverSide.initiate(initiate[...])
        #expect(clientKey == client.publicKey)
        #expect(try ZMTPWire.properties(ofReady: metadata[...])["Identity"] == [1])
        let (ready, serverCipher) = serverSide.ready(metadata: ZMTPWire.metadata(socketType: "ROUTER", routingID: []))
        let (_, clientCipher) = try clientSide.ready(ready[...])
        return (clientCipher, serverCipher)
    }

    @Test func aMessageBoxTamperedWithOrReplayedIsRefused() throws {
        var (client, server) = try handshaken()
        var wire: [UInt8] = []
        client.appendFrame(Array("pay 100 fen".utf8), flags: 0, to: &wire)
        let header = 2   // a short frame's flags and size
        var first = wire
        let opened = try server.open(&first, header..<first.count)
        #expect(Array(first[opened.frame]) == Array("pay 100 fen".utf8))
        var replayed = wire
        #expect(throws: ZMTPWire.Problem.self, "the same counter again") { try server.open(&replayed, header..<replayed.count) }

        var second: [UInt8] = []
        client.appendFrame(Array("pay 100 fen".utf8), flags: 0, to: &second)
        second[second.count - 3] ^= 0x01
        #expect(throws: ZMTPWire.Problem.self, "one bit flipped") { try server.open(&second, header..<second.count) }

        var third: [UInt8] = []
        client.appendFrame(Array("more".utf8), flags: CurveCipher.more, to: &third)
        let more = try server.open(&third, header..<third.count)
        #expect(more.flags == CurveCipher.more && Array(third[more.frame]) == Array("more".utf8))
    }

    /// The boxes sealed with each direction's subkey derived once are libsodium's own
    /// `crypto_box_afternm` boxes, byte for byte, at every length a frame may have; and each
    /// side opens what the other seals.
    @Test func boxesWithTheSubkeyDerivedOnceAreLibsodiumsBoxes() throws {
        var key = [UInt8](repeating: 0, count: 32), subkey = [UInt8](repeating: 0, count: 32)
        let peer = CurveZMQ.keyPair(), own = CurveZMQ.keyPair()
        crypto_box_beforenm(&key, peer.publicKey, own.secretKey)
        crypto_core_hsalsa20(&subkey, Array("CurveZMQMESSAGEC".utf8), key, nil)
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...200) + [1_000, 65_537] {
            let plain = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let counter = CurveZMQ.counter(UInt64(length) &* 7 &+ 3)
            var expected = [UInt8](repeating: 0, count: length), expectedMAC = [UInt8](repeating: 0, count: 16)
            crypto_box_detached_afternm(&expected, &expectedMAC, plain, UInt64(length), Array("CurveZMQMESSAGEC".utf8) + counter, key)
            var sealed = plain, mac = [UInt8](repeating: 0, count: 16)
            sealed.withUnsafeMutableBufferPointer { text in
                CurveCipher.seal(text.baseAddress ?? UnsafeMutablePointer(&mac), count: length, mac: &mac, counter: counter, subkey: subkey)
            }
            #expect(sealed == expected && mac == expectedMAC, "length \(length)")
            var opened = expected
            let ok = opened.withUnsafeMutableBufferPointer { text in
                CurveCipher.open(text.baseAddress ?? UnsafeMutablePointer(&mac), count: length, mac: expectedMAC, counter: counter, subkey: subkey)
            }
            #expect(ok && opened == plain, "length \(length)")
        }
    }

    /// A dealer that queues while its link is down gives its unsent messages back after a loss,
    /// under CURVE as in clear: they were sealed for the lost connection and are sealed afresh.
    @Test func messagesSealedForALostConnectionAreSentAgainOnTheNext() throws {
        let (router, _) = try secureRouter()
        let dealer = try NativeDealer(endpoint: router.lastEndpoint, routingID: Array("370200".utf8),
                                      curve: try #require(CurveClientSecurity(clientKeys, serverKey: serverKeys.publicKey)))
        #expect(try serve([router, dealer]) {
            _ = router.receiveAuthenticated()
            _ = try dealer.receive(wait: false)
            return dealer.isConnected && router.peerCount == 1
        })
        let connection = try #require(dealer.connectionForTests)
        connection.enqueue([Array("unsent 1".utf8), Array("two frames".utf8)][...])
        connection.enqueue([Array("unsent 2".utf8)][...])
        let unsent = connection.unsentMessages()
        var frames: [[UInt8]] = []
        var at = unsent.bytes.startIndex
        while let frame = try ZMTPWire.frame(in: unsent.bytes[at...], maxBytes: 1 << 20) {
            frames.append(Array(unsent.bytes[frame.body]))
            at = frame.body.upperBound
        }
        #expect(frames == [Array("unsent 1".utf8), Array("two frames".utf8), Array("unsent 2".utf8)])
        #expect(unsent.ends.count == 2 && unsent.ends.last == unsent.bytes.count)
    }
}
