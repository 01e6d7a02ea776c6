/// ZMTP 3 (RFC 23/ZMTP, 37/ZMTP for 3.1), the wire protocol libzmq speaks over TCP: the
/// greeting, the NULL mechanism's READY command and message frames (CURVE's are `CurveZMQ`'s). Pure bytes in and out, so that
/// a peer that speaks it without libzmq (`NativeDealer`) is tested byte by byte.
public enum ZMTPWire {
    /// Every greeting is 64 bytes: signature (10), version (2), mechanism (20), as-server (1),
    /// filler (31).
    public static let greetingBytes = 64

    /// Frame flags.
    static let more: UInt8 = 0x01, long: UInt8 = 0x02, command: UInt8 = 0x04

    /// Our greeting: version 3.0 (no heartbeats asked for), the NULL mechanism as a client, or
    /// `mechanism` ("CURVE") on the side `asServer` says.
    public static func greeting(mechanism: String = "NULL", asServer: Bool = false) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: greetingBytes)
        bytes[0] = 0xFF
        bytes[8] = 1            // the signature's padding: a ZMTP 1.0 peer reads it as an empty identity
        bytes[9] = 0x7F
        bytes[10] = 3
        bytes[11] = 0
        for (offset, byte) in mechanism.utf8.enumerated() { bytes[12 + offset] = byte }
        bytes[32] = asServer ? 1 : 0
        return bytes
    }

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case notZMTP
        case version(major: UInt8)
        case mechanism(String)
        case handshake(String)
        case frameTooLarge(UInt64)
        case messageTooLarge(frames: Int, bytes: Int)

        public var description: String {
            switch self {
            case .notZMTP: "the peer's greeting is not ZMTP's (no 0xFF ... 0x7F signature)"
            case .version(let major): "the peer speaks ZMTP \(major), not 3"
            case .mechanism(let name): "the peer asks for the \(name) mechanism, which this side does not speak"
            case .handshake(let text): "handshake: \(text)"
            case .frameTooLarge(let size): "a frame of \(size) bytes, beyond the largest message allowed"
            case .messageTooLarge(let frames, let bytes): "a message of \(frames) frames and \(bytes) bytes so far, beyond the largest allowed"
            }
        }
    }

    /// Checks a peer's 64-byte greeting, and that it asks for `expected`.
    public static func checkGreeting(_ bytes: ArraySlice<UInt8>, mechanism expected: String = "NULL") throws(Problem) {
        let base = bytes.startIndex
        guard bytes.count >= greetingBytes, bytes[base] == 0xFF, bytes[base + 9] == 0x7F else { throw .notZMTP }
        guard bytes[base + 10] >= 3 else { throw .version(major: bytes[base + 10]) }
        let mechanism = String(decoding: bytes[(base + 12)..<(base + 32)].prefix { $0 != 0 }, as: UTF8.self)
        guard mechanism == expected else { throw .mechanism(mechanism) }
    }

    /// The NULL mechanism's READY command with our socket type and routing id (libzmq's ROUTER
    /// names the peer by it; empty lets the ROUTER make one up).
    public static func ready(socketType: String, routingID: [UInt8]) -> [UInt8] {
        commandFrame([5] + Array("READY".utf8) + metadata(socketType: socketType, routingID: routingID))
    }

    /// The properties a peer announces (READY's, or CURVE's INITIATE and READY boxes): its socket
    /// type and routing id.
    static func metadata(socketType: String, routingID: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        for (name, value) in [("Socket-Type", Array(socketType.utf8)), ("Identity", routingID)] {
            body.append(UInt8(name.utf8.count))
            body.append(contentsOf: name.utf8)
            appendBigEndian(UInt32(value.count), to: &body)
            body.append(contentsOf: value)
        }
        return body
    }

    /// A command frame around `body` (its name first).
    static func commandFrame(_ body: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        appendHeader(flags: command, size: body.count, to: &frame)
        frame.append(contentsOf: body)
        return frame
    }

    /// The properties of a READY command's body (after its name), by name.
    public static func properties(ofReady body: ArraySlice<UInt8>) throws(Problem) -> [String: [UInt8]] {
        var properties: [String: [UInt8]] = [:]
        var at = body.startIndex
        while at < body.endIndex {
            let nameSize = Int(body[at])
            guard at + 1 + nameSize + 4 <= body.endIndex else { throw .handshake("a READY property runs past the command") }
            let name = String(decoding: body[(at + 1)..<(at + 1 + nameSize)], as: UTF8.self)
            at += 1 + nameSize
            let valueSize = Int(readBigEndian(body, at: at, bytes: 4))
            at += 4
            guard at + valueSize <= body.endIndex else { throw .handshake("the value of READY's \(name) runs past the command") }
            properties[name] = Array(body[at..<(at + valueSize)])
            at += valueSize
        }
        return properties
    }

    /// Appends one message of `frames` to `out`.
    public static func appendMessage(_ frames: [[UInt8]], to out: inout [UInt8]) {
        appendMessage(frames[...], to: &out)
    }

    /// `appendMessage` of frames in place (a ROUTER's message without its routing id).
    public static func appendMessage(_ frames: ArraySlice<[UInt8]>, to out: inout [UInt8]) {
        let last = frames.endIndex - 1
        for index in frames.indices {
            appendHeader(flags: index < last ? more : 0, size: frames[index].count, to: &out)
            out.append(contentsOf: frames[index])
        }
    }

    static func appendHeader(flags: UInt8, size: Int, to out: inout [UInt8]) {
        if size <= 255 {
            out.append(flags)
            out.append(UInt8(size))
        } else {
            out.append(flags | long)
            appendBigEndian(UInt64(size), to: &out)
        }
    }

    /// One frame at the start of `bytes`: its flags, where its body lies, and where the next
    /// frame begins; nil if the frame has not all arrived.
    public struct Frame: Equatable {
        public var isCommand: Bool
        public var hasMore: Bool
        public var body: Range<Int>
    }

    public static func frame(in bytes: ArraySlice<UInt8>, maxBytes: Int) throws(Problem) -> Frame? {
        let at = bytes.startIndex
        guard bytes.count >= 2 else { return nil }
        let flags = bytes[at]
        let headerBytes = flags & long != 0 ? 9 : 2
        guard bytes.count >= headerBytes else { return nil }
        let size = flags & long != 0 ? readBigEndian(bytes, at: at + 1, bytes: 8) : UInt64(bytes[at + 1])
        guard size <= UInt64(maxBytes) else { throw .frameTooLarge(size) }
        let start = at + headerBytes
        guard bytes.endIndex - start >= Int(size) else { return nil }
        return Frame(isCommand: flags & command != 0, hasMore: flags & more != 0, body: start..<(start + Int(size)))
    }

    /// A command's name and where its data begins.
    public static func commandName(_ body: ArraySlice<UInt8>) throws(Problem) -> (name: String, data: ArraySlice<UInt8>) {
        guard let size = body.first, body.count >= 1 + Int(size) else { throw .handshake("a command without a name") }
        let nameEnd = body.startIndex + 1 + Int(size)
        return (String(decoding: body[(body.startIndex + 1)..<nameEnd], as: UTF8.self), body[nameEnd...])
    }

    /// ZMTP 3.1's PONG body for a PING's data (its TTL, 2 bytes, then a context echoed back).
    static func pongBody(forPing data: ArraySlice<UInt8>) -> [UInt8] {
        [4] + Array("PONG".utf8) + (data.count > 2 ? Array(data.dropFirst(2)) : [])
    }

    static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        var big = value.bigEndian
        withUnsafeBytes(of: &big) { out.append(contentsOf: $0) }
    }

    static func readBigEndian(_ bytes: ArraySlice<UInt8>, at: Int, bytes count: Int) -> UInt64 {
        var value: UInt64 = 0
        for offset in 0..<count { value = value << 8 | UInt64(bytes[at + offset]) }
        return value
    }
}
