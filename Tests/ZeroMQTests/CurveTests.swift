import Foundation
import Synchronization
import Testing
import ZeroMQ

/// CURVE encryption with ZAP authentication, as libzmq does it: a server admits only the keys
/// its handler knows, and every admitted message carries the user id the handler gave.
@Suite struct CurveTests {
    @Test func libzmqHasCurveAndKeysRoundTripThroughZ85() throws {
        #expect(CurveKeyPair.isAvailable)
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.utf8.count == 40 && pair.secretKey.utf8.count == 40)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
        let bytes = try #require(Z85.decodeKey(pair.publicKey))
        #expect(Z85.encodeKey(bytes) == pair.publicKey)
        #expect(Z85.decodeKey("not a key") == nil)
        #expect(throws: ZeroMQError.self) { try CurveKeyPair(secretKey: "short") }
    }

    /// A server with a handler that admits `known` as "hospital-1"; the requests it was asked.
    final class Server {
        let context: Context
        let zap: ZAPHandler
        let router: Socket
        let endpoint: String
        let keys: CurveKeyPair
        let asked = Requests()

        final class Requests: Sendable {
            private let list = Mutex<[ZAPRequest]>([])
            func append(_ request: ZAPRequest) { list.withLock { $0.append(request) } }
            var all: [ZAPRequest] { list.withLock { $0 } }
        }

        init(admitting known: String) throws {
            context = try Context()
            let asked = self.asked
            zap = try ZAPHandler(context: context) { request in
                asked.append(request)
                return request.clientKey == known ? .admit(userID: "hospital-1") : .refuse(reason: "unknown key")
            }
            keys = try CurveKeyPair.generate()
            router = try context.socket(.router)
            try router.makeCurveServer(keys, zapDomain: "370211")
            try router.bind("tcp://127.0.0.1:*")
            endpoint = try router.lastEndpoint
        }

        func receive(timeoutMs: Int) throws -> (frames: [[UInt8]], userID: String?)? {
            var poller = Poller([router])
            guard try poller.poll(timeoutMs: timeoutMs)[0] else { return nil }
            return try router.receiveAuthenticated(wait: false)
        }

        /// Waits until the handler has been asked `count` times (the refusal happens then).
        func waitForRequests(_ count: Int, timeoutMs: Int) -> [ZAPRequest] {
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
            while Date() < deadline {
                let seen = asked.all
                if seen.count >= count { return seen }
                Thread.sleep(forTimeInterval: 0.01)
            }
            return asked.all
        }

        deinit {
            router.close()
            zap.stop()
        }
    }

    @Test func anAdmittedKeyIsHeardWithItsUserIDAndAnUnknownKeyIsNot() throws {
        let client = try CurveKeyPair.generate()
        let server = try Server(admitting: client.publicKey)
        let context = try Context()

        let stranger = try context.socket(.dealer)
        try stranger.setLinger(milliseconds: 0)
        try stranger.makeCurveClient(try CurveKeyPair.generate(), serverKey: server.keys.publicKey)
        try stranger.connect(server.endpoint)
        try stranger.send([Array("from a stranger".utf8)])

        let known = try context.socket(.dealer)
        try known.setLinger(milliseconds: 0)
        try known.makeCurveClient(client, serverKey: server.keys.publicKey)
        try known.connect(server.endpoint)
        try known.send([Array("from hospital 1".utf8)])

        // Both were put to the handler; only the known key's message is ever read.
        let asked = server.waitForRequests(2, timeoutMs: 5_000)
        #expect(asked.count == 2)
        #expect(asked.allSatisfy { $0.domain == "370211" && $0.mechanism == "CURVE" && $0.address == "127.0.0.1" })
        let received = try #require(try server.receive(timeoutMs: 5_000))
        #expect(received.frames.last == Array("from hospital 1".utf8))
        #expect(received.userID == "hospital-1")
        #expect(try server.receive(timeoutMs: 300) == nil)
    }

    @Test func aPlaintextClientIsNeverHeard() throws {
        let server = try Server(admitting: try CurveKeyPair.generate().publicKey)
        let context = try Context()
        let plain = try context.socket(.dealer)
        try plain.setLinger(milliseconds: 0)
        try plain.connect(server.endpoint)
        try plain.send([Array("in clear".utf8)])
        // The handshake fails on the mechanism, before the handler or the socket sees anything.
        #expect(try server.receive(timeoutMs: 1_000) == nil)
        #expect(server.asked.all.isEmpty)
    }

    @Test func aClientWithTheWrongServerKeyIsNeverHeard() throws {
        let client = try CurveKeyPair.generate()
        let server = try Server(admitting: client.publicKey)
        let context = try Context()
        let dealer = try context.socket(.dealer)
        try dealer.setLinger(milliseconds: 0)
        try dealer.makeCurveClient(client, serverKey: try CurveKeyPair.generate().publicKey)
        try dealer.connect(server.endpoint)
        try dealer.send([Array("to an impostor".utf8)])
        #expect(try server.receive(timeoutMs: 1_000) == nil)
    }

    @Test func aSecondHandlerInOneContextIsRefused() throws {
        let context = try Context()
        let first = try ZAPHandler(context: context) { _ in .refuse(reason: "none") }
        defer { first.stop() }
        #expect(throws: ZeroMQError.self) { _ = try ZAPHandler(context: context) { _ in .refuse(reason: "none") } }
    }
}
