import SwiftProtobuf

/// The frames of a SettleNet message after the routing envelope (docs/PROTOCOL.md):
///
///     [empty delimiter] ["req" | "rsp"] [protobuf body]
///
/// A ROUTER sees the peer's routing id in front of these; a REQ socket adds and strips the
/// empty delimiter by itself, so a REQ client sends and receives just [kind, body].
public enum WireCodec {
    public static let requestKind: [UInt8] = Array("req".utf8)
    public static let responseKind: [UInt8] = Array("rsp".utf8)
    /// Bodies above this many bytes are answered with SN-E1007 and not parsed. Sized for an
    /// upload batch (4101) of up to 5,000 settlement lists; a settlement needs a few hundred bytes.
    public static let maxBodyBytes = 2 * 1024 * 1024
    /// Peers sending a single message above this many bytes are disconnected by libzmq itself.
    public static let maxMessageBytes: Int64 = 4 * 1024 * 1024

    public enum Decoded {
        case request(WireRequest)
        case response(WireResponse)
        /// Something arrived that is not a SettleNet message; answer with this code if possible.
        case malformed(ErrorCode, detail: String)
    }

    /// Decodes the frames after the routing id (starting at the empty delimiter).
    public static func decode(_ frames: ArraySlice<[UInt8]>) -> Decoded {
        guard frames.count == 3, frames[frames.startIndex].isEmpty else {
            return .malformed(.malformedFrame, detail: "got \(frames.count) frames")
        }
        let kind = frames[frames.startIndex + 1]
        let body = frames[frames.startIndex + 2]
        if body.count > maxBodyBytes {
            return .malformed(.oversizeMessage, detail: "\(body.count) bytes, limit \(maxBodyBytes)")
        }
        do {
            if kind == requestKind { return .request(try WireRequest(serializedBytes: body)) }
            if kind == responseKind { return .response(try WireResponse(serializedBytes: body)) }
        } catch {
            return .malformed(.malformedMessage, detail: "\(body.count)-byte body does not parse")
        }
        return .malformed(.malformedFrame, detail: "kind frame is neither \"req\" nor \"rsp\"")
    }

    // MARK: Integrity between nodes

    /// Between nodes a fourth frame carries a checksum of the kind and body (FNV-1a, 64 bits: any
    /// one changed byte changes it), so a frame damaged on the link is dropped like a lost one
    /// instead of being believed. Hospitals' messages have three frames and no checksum.
    public static func checksum(kind: [UInt8], body: [UInt8]) -> [UInt8] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in kind + [0] + body {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return (0..<8).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) }
    }

    /// The three frames of a message with the checksum frame added.
    public static func sealed(_ frames: [[UInt8]]) -> [[UInt8]] {
        guard frames.count == 3 else { return frames }
        return frames + [checksum(kind: frames[1], body: frames[2])]
    }

    /// A node's message checked and its checksum frame removed: nil when the checksum does not
    /// match (damaged on the link). Three frames (no checksum) pass unchanged.
    public static func unsealed(_ frames: ArraySlice<[UInt8]>) -> ArraySlice<[UInt8]>? {
        guard frames.count == 4 else { return frames }
        let start = frames.startIndex
        guard frames[start + 3] == checksum(kind: frames[start + 1], body: frames[start + 2]) else { return nil }
        return frames.dropLast()
    }

    public static func frames(_ request: WireRequest) -> [[UInt8]] {
        [[], requestKind, (try? request.serializedBytes()) ?? []]
    }

    public static func frames(_ response: WireResponse) -> [[UInt8]] {
        [[], responseKind, (try? response.serializedBytes()) ?? []]
    }

    public static func frames(responseBody: [UInt8]) -> [[UInt8]] {
        [[], responseKind, responseBody]
    }
}
