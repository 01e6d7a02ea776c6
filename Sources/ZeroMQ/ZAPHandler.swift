import CZeroMQ
import Foundation
import Synchronization

/// What a ZAP handler is asked (RFC 27): a peer is completing its handshake with a socket of
/// `domain` and is not yet allowed to send anything.
public struct ZAPRequest: Sendable {
    public var domain: String
    /// The peer's IP address.
    public var address: String
    /// "CURVE", or "NULL" for a plaintext peer of a socket with a ZAP domain.
    public var mechanism: String
    /// The peer's public key (Z85) under CURVE.
    public var clientKey: String?

    public init(domain: String, address: String, mechanism: String, clientKey: String?) {
        self.domain = domain
        self.address = address
        self.mechanism = mechanism
        self.clientKey = clientKey
    }
}

public enum ZAPDecision: Sendable, Equatable {
    /// Admitted; `userID` is attached to every message from the peer (`receiveAuthenticated`).
    case admit(userID: String)
    /// Refused: the connection is closed before any message of the peer is read.
    case refuse(reason: String)
}

/// The ZAP handler of one context: a thread owning a REP socket at the well-known
/// `inproc://zeromq.zap.01`, answering libzmq's authentication requests with `decide`.
/// A context has at most one; every socket of the context with a ZAP domain (every CURVE
/// server) is put to it, so a process hosting several nodes serves all of them here,
/// telling them apart by domain.
public final class ZAPHandler: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the handler and returns once it is bound, so sockets made afterwards are covered.
    public init(context: Context, decide: @escaping @Sendable (ZAPRequest) -> ZAPDecision) throws {
        let bound = DispatchSemaphore(value: 0)
        let bindError = Mutex<ZeroMQError?>(nil)
        let thread = Thread { [self] in
            defer { finished.signal() }
            let socket: Socket
            do {
                socket = try context.socket(.rep)
                try socket.setLinger(milliseconds: 0)
                try socket.bind(ZAPHandler.endpoint)
            } catch {
                bindError.withLock { $0 = error as? ZeroMQError ?? ZeroMQError(code: EINVAL, operation: "ZAP handler") }
                bound.signal()
                return
            }
            bound.signal()
            var poller = Poller([socket])
            while !stopRequested.load(ordering: .relaxed) {
                // Wakes now and then to notice a stop; requests come only at connection time.
                guard let readable = try? poller.poll(timeoutMs: 200), readable[0],
                      let frames = try? socket.receive(wait: false) else { continue }
                _ = try? socket.send(ZAPHandler.reply(to: frames, decide: decide))
            }
            socket.close()
        }
        thread.name = "zap-handler"
        thread.start()
        bound.wait()
        if let error = bindError.withLock({ $0 }) {
            finished.wait()
            throw error
        }
    }

    /// Stops the handler and waits for its thread (its socket must be closed before the
    /// context can end).
    public func stop() {
        guard !stopRequested.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    /// RFC 27: version, request id, domain, address, identity, mechanism, credentials ->
    /// version, request id, status code, status text, user id, metadata.
    static func reply(to frames: [[UInt8]], decide: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        func text(_ index: Int) -> String { index < frames.count ? String(decoding: frames[index], as: UTF8.self) : "" }
        let requestID = frames.count > 1 ? frames[1] : []
        guard frames.count >= 6, text(0) == "1.0" else {
            return [Array("1.0".utf8), requestID, Array("500".utf8), Array("malformed ZAP request".utf8), [], []]
        }
        let mechanism = text(5)
        let clientKey = mechanism == "CURVE" && frames.count >= 7 ? Z85.encodeKey(frames[6]) : nil
        let request = ZAPRequest(domain: text(2), address: text(3), mechanism: mechanism, clientKey: clientKey)
        switch decide(request) {
        case .admit(let userID):
            return [Array("1.0".utf8), requestID, Array("200".utf8), Array("OK".utf8), Array(userID.utf8), []]
        case .refuse(let reason):
            return [Array("1.0".utf8), requestID, Array("400".utf8), Array(reason.utf8), [], []]
        }
    }
}
