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

    /// Bodies from this size on are tried as upload batches read directly (`uploadRequestReadDirectly`).
    public static let directReadBytes = 2_048

    /// Decodes the frames after the routing id (starting at the empty delimiter).
    /// `uploadRecords`: how much of an upload batch's records to decode.
    public static func decode(_ frames: ArraySlice<[UInt8]>, uploadRecords: UploadRecords = .full) -> Decoded {
        guard frames.count == 3, frames[frames.startIndex].isEmpty else {
            return .malformed(.malformedFrame, detail: "got \(frames.count) frames")
        }
        let kind = frames[frames.startIndex + 1]
        let body = frames[frames.startIndex + 2]
        if body.count > maxBodyBytes {
            return .malformed(.oversizeMessage, detail: "\(body.count) bytes, limit \(maxBodyBytes)")
        }
        do {
            if kind == requestKind {
                // A walk over a settlement's fields would only add to its decode: what is worth
                // reading directly is a batch of records, which is large.
                if body.count >= directReadBytes, let request = uploadRequestReadDirectly(body, keysOnly: uploadRecords == .keysOnly) {
                    return .request(request)
                }
                if let settlement = SettlementReader.request(body) { return .request(settlement) }
                return .request(try WireRequest(serializedBytes: body))
            }
            if kind == responseKind {
                if let answer = SettlementReader.response(body) { return .response(answer) }
                return .response(try WireResponse(serializedBytes: body))
            }
        } catch {
            return .malformed(.malformedMessage, detail: "\(body.count)-byte body does not parse")
        }
        return .malformed(.malformedFrame, detail: "kind frame is neither \"req\" nor \"rsp\"")
    }

    // MARK: Integrity between nodes

    /// Between nodes a fourth frame carries a checksum of the kind and body, so a frame damaged
    /// on the link is dropped like a lost one instead of being believed: XXH64 of the body, seeded
    /// with the FNV-1a (64 bits) of the kind, written little-endian (docs/PROTOCOL.md). XXH64 reads
    /// eight bytes a step; a relay checks and seals every message it passes. Hospitals' messages
    /// have three frames and no checksum.
    public static func checksum(kind: [UInt8], body: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: checksumValue(kind: kind, body: body).littleEndian, Array.init)
    }

    static func checksumValue(kind: [UInt8], body: [UInt8]) -> UInt64 {
        var seed: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in kind { seed = (seed ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return body.withUnsafeBytes { XXH64.hash($0, seed: seed) }
    }

    /// Whether `frame` is the checksum of kind and body, compared in place.
    static func isChecksum(_ frame: [UInt8], kind: [UInt8], body: [UInt8]) -> Bool {
        guard frame.count == 8 else { return false }
        let hash = checksumValue(kind: kind, body: body)
        return frame.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } == hash
    }

    /// The three frames of a message with the checksum frame added.
    public static func sealed(_ frames: [[UInt8]]) -> [[UInt8]] {
        guard frames.count == 3 else { return frames }
        var sealed = frames
        sealed.append(checksum(kind: frames[1], body: frames[2]))
        return sealed
    }

    /// A node's message checked and its checksum frame removed: nil when the checksum does not
    /// match (damaged on the link). Three frames (no checksum) pass unchanged.
    public static func unsealed(_ frames: ArraySlice<[UInt8]>) -> ArraySlice<[UInt8]>? {
        guard frames.count == 4 else { return frames }
        let start = frames.startIndex
        guard isChecksum(frames[start + 3], kind: frames[start + 1], body: frames[start + 2]) else { return nil }
        return frames.dropLast()
    }
    /// The byte ranges of the records of an upload request's body (4101: `input.upload.records`),
    /// in order, found without decoding them: a tier that stores records keeps them as they came
    /// instead of encoding each again. nil when the body is not protobuf or its upload input is
    /// not one field (two would be merged by a decoder).
    public static func uploadRecordRanges(in body: [UInt8]) -> [Range<Int>]? {
        let uploadField: UInt64 = 24, recordsField: UInt64 = 1
        guard let top = lengthDelimitedFields(in: body, body.indices) else { return nil }
        let uploads = top.filter { $0.number == uploadField }
        guard uploads.count == 1, let upload = uploads.first?.value, let inner = lengthDelimitedFields(in: body, upload) else {
            return nil
        }
        return inner.compactMap { $0.number == recordsField ? $0.value : nil }
    }

    /// The fields of `bytes[range]`, one level deep: each length-delimited field's number and the
    /// range of its payload (the other wire types are stepped over). nil if it is not protobuf.
    static func lengthDelimitedFields(in bytes: [UInt8], _ range: Range<Int>) -> [(number: UInt64, value: Range<Int>)]? {
        var fields: [(number: UInt64, value: Range<Int>)] = []
        var index = range.lowerBound
        while index < range.upperBound {
            guard let tag = readVarint(bytes, at: &index, end: range.upperBound), tag >> 3 != 0,
                  let value = skipValue(bytes, wireType: tag & 7, at: &index, end: range.upperBound) else { return nil }
            if tag & 7 == 2 { fields.append((tag >> 3, value)) }
        }
        return fields
    }

    /// A request's body with its `budget_ms` (field 16) set to `budgetMs` and every other field
    /// left as it was, byte for byte: a relay passes a request on with the budget it has left
    /// without encoding it again. Nil when the body is not well-formed protobuf at its top level.
    public static func replacingBudget(in body: [UInt8], with budgetMs: Int32) -> [UInt8]? {
        let budgetField: UInt64 = 16
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 11)
        var copyFrom = 0
        var index = 0
        func varint() -> UInt64? { readVarint(body, at: &index, end: body.count) }
        while index < body.count {
            let fieldStart = index
            guard let tag = varint(), skipValue(body, wireType: tag & 7, at: &index, end: body.count) != nil else { return nil }
            if tag >> 3 == budgetField {
                out.append(contentsOf: body[copyFrom..<fieldStart])
                copyFrom = index
            }
        }
        out.append(contentsOf: body[copyFrom...])
        if budgetMs != 0 {   // proto3 leaves a zero out
            out.append(UInt8(budgetField << 3))   // wire type 0: 0x80 0x01
            out.append(0x01)
            var value = UInt64(bitPattern: Int64(budgetMs))   // int32: negative values take ten bytes
            while value >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            out.append(UInt8(value))
        }
        return out
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

    /// An answer's `infcode` and `err_code` read off its frames (`[[], "rsp", body]`) without
    /// decoding the rest; nil for anything else. Only the two fields are looked at, so that the
    /// metrics of every answer cost a scan, not a decode.
    public static func answerOutcome(_ frames: [[UInt8]]) -> (infcode: Int32, errCode: String)? {
        guard frames.count >= 3, frames[1] == responseKind else { return nil }
        let body = frames[2]
        var index = 0
        var infcode: Int32 = 0
        var errCode = ""
        while index < body.count {
            guard let key = readVarint(body, at: &index, end: body.count) else { return nil }
            let field = key >> 3, wireType = key & 7
            if field == 1 && wireType == 0 {
                guard let value = readVarint(body, at: &index, end: body.count) else { return nil }
                infcode = Int32(truncatingIfNeeded: value)
            } else if field == 10 && wireType == 2 {
                guard let range = skipValue(body, wireType: 2, at: &index, end: body.count) else { return nil }
                errCode = String(decoding: body[range], as: UTF8.self)
            } else if field > 10 {
                break   // the outputs follow the envelope: nothing more to read
            } else {
                guard skipValue(body, wireType: wireType, at: &index, end: body.count) != nil else { return nil }
            }
        }
        return (infcode, errCode)
    }

    public static func frames(requestBody: [UInt8]) -> [[UInt8]] {
        [[], requestKind, requestBody]
    }

    /// The body of an upload request (4101): `envelope` (whose input is left out) with an upload
    /// input of `records`, each the encoded bytes of one record, spliced in as they are. A
    /// decoder reads it as the request with `input.upload.records` decoded from those bytes.
    public static func uploadRequestBody(envelope: WireRequest, records: [[UInt8]], catalogVersion: String) throws -> [UInt8] {
        try uploadRequestBody(envelope: envelope, input: uploadInput(records: records, catalogVersion: catalogVersion))
    }

    /// An encoded `UploadInput` of `records`, each already an encoded `UploadRecord`, spliced in
    /// as they are: what a tier passes up of the records it received, without encoding them again.
    /// `batchIndexes[i]`, when there is one, is appended to record i as its batch_index (field 15;
    /// a decoder keeps a scalar's last value), written straight into the input.
    ///
    /// Not generic: called across modules, a generic version looked up its type metadata for
    /// every record.
    public static func uploadInput(records: [ArraySlice<UInt8>], batchIndexes: [Int32?] = [], catalogVersion: String) -> [UInt8] {
        var size = 16 + catalogVersion.utf8.count
        for record in records { size += record.count + 16 }
        var input: [UInt8] = []
        input.reserveCapacity(size)
        for position in records.indices {
            let record = records[position]
            let batchIndex = position < batchIndexes.count ? batchIndexes[position].map { UInt64(bitPattern: Int64($0)) } : nil
            input.append(0x0A)   // field 1 (records), length-delimited
            appendVarint(UInt64(record.count + (batchIndex.map { 1 + varintSize($0) } ?? 0)), to: &input)
            record.withUnsafeBufferPointer { input.append(contentsOf: $0) }
            if let batchIndex {
                input.append(15 << 3)   // field 15 (batch_index), varint
                appendVarint(batchIndex, to: &input)
            }
        }
        if !catalogVersion.isEmpty {   // proto3 leaves an empty string out
            input.append(0x12)   // field 2 (catalog_version), length-delimited
            appendVarint(UInt64(catalogVersion.utf8.count), to: &input)
            input.append(contentsOf: catalogVersion.utf8)
        }
        return input
    }

    public static func uploadInput(records: [[UInt8]], catalogVersion: String) -> [UInt8] {
        uploadInput(records: records.map { $0[...] }, catalogVersion: catalogVersion)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1, rest = value >> 7
        while rest > 0 { size += 1; rest >>= 7 }
        return size
    }

    /// The body of an upload request: `envelope` (whose input is left out) with `input`, an
    /// encoded `UploadInput`, spliced in as it is (a tier that already encoded what it passes up
    /// for its own records does not encode it again).
    public static func uploadRequestBody(envelope: WireRequest, input: [UInt8]) throws -> [UInt8] {
        var bare = envelope
        bare.input = nil
        var body: [UInt8] = try bare.serializedBytes()
        body.reserveCapacity(body.count + input.count + 8)
        appendVarint(24 << 3 | 2, to: &body)   // field 24 (input.upload), length-delimited
        appendVarint(UInt64(input.count), to: &body)
        body.append(contentsOf: input)
        return body
    }

    /// Steps over one field's value of `wireType`; the range of a length-delimited payload (or
    /// an empty range for the others), nil if it runs past `end` or the wire type is unknown.
    static func skipValue(_ bytes: [UInt8], wireType: UInt64, at index: inout Int, end: Int) -> Range<Int>? {
        switch wireType {
        case 0: guard readVarint(bytes, at: &index, end: end) != nil else { return nil }
        case 1: index += 8
        case 2:
            guard let length = readVarint(bytes, at: &index, end: end), length <= UInt64(end - index) else { return nil }
            index += Int(length)
            return index - Int(length)..<index
        case 5: index += 4
        default: return nil   // groups are not in this schema
        }
        return index <= end ? index..<index : nil
    }

    /// The protobuf varint at `index` (moved past it), read no further than `end`; nil if it is
    /// cut short or longer than 64 bits.
    static func readVarint(_ bytes: [UInt8], at index: inout Int, end: Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < end && shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }
}
