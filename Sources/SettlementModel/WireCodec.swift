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
