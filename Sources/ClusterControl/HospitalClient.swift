import Foundation
import LinkSecurity
import SettlementModel
import ZeroMQ

/// A hospital's connection to its county node: a DEALER socket that can keep many requests
/// in flight and matches answers to requests by `req_msgid`.
public final class HospitalClient {
    private let context: Context
    private let socket: Socket
    public let endpoint: String

    /// `credentials`: the institution's CURVE keys, for a county of a secured topology.
    public init(endpoint: String, credentials: ClientCredentials? = nil) throws {
        self.endpoint = endpoint
        context = try Context()
        socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        try credentials?.apply(to: socket)
        try socket.setSendHighWaterMark(100_000)
        try socket.setReceiveHighWaterMark(100_000)
        try socket.connect(endpoint)
    }

    public func send(_ request: WireRequest) throws {
        try socket.send(WireCodec.frames(request))
    }

    /// Sends raw frames (tests of bad input).
    public func sendRaw(_ frames: [[UInt8]]) throws {
        try socket.send(frames)
    }

    /// The next answer, or nil if none arrives within `timeoutMs`.
    public func receive(timeoutMs: Int) throws -> WireResponse? {
        var poller = Poller([socket])
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while true {
            let left = Int(deadline.timeIntervalSinceNow * 1000)
            if left <= 0 { return nil }
            guard try poller.poll(timeoutMs: left)[0], let frames = try socket.receive(wait: false) else { continue }
            if case .response(let response) = WireCodec.decode(frames[...]) { return response }
        }
    }

    /// Sends `request` and waits for its answer (answers to other msgids are skipped).
    public func call(_ request: WireRequest, timeoutMs: Int = 15_000) throws -> WireResponse? {
        try send(request)
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while true {
            let left = Int(deadline.timeIntervalSinceNow * 1000)
            if left <= 0 { return nil }
            guard let response = try receive(timeoutMs: left) else { return nil }
            if response.reqMsgid == request.msgid { return response }
        }
    }
}
