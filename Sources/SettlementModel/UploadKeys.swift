import SwiftProtobuf

/// Above the county, a tier screens an upload batch by what identifies each record: its
/// setl_id, institution, place of treatment, batch_index and the setl_id it corrects. It
/// stores and passes up each record as the bytes that came, so decoding every other field
/// (amounts, dates, codes, fee details) only to drop it was a fifth of a relay's time under
/// uploads. These records are decoded with those five fields only; every other field is still
/// checked as protobuf (each string as UTF-8), so what is stored and passed on parses.
extension WireCodec {
    /// How the records of an upload request (4101) are decoded.
    public enum UploadRecords: Sendable {
        case full
        /// The identifying fields only (`UploadKeys`): the tier never encodes the records again.
        case keysOnly
    }

    /// An upload request decoded with its records' keys only (`keysOnly`), or every field read
    /// straight from the bytes; nil when `body` is not one, or is anything SwiftProtobuf's
    /// decode might read otherwise (the caller then decodes it with SwiftProtobuf). Its
    /// generic decoding of a record's sixteen fields and fee lines was most of a county's
    /// decode of a batch.
    static func uploadRequestReadDirectly(_ body: [UInt8], keysOnly: Bool) -> WireRequest? {
        let uploadField: UInt64 = 24
        var upload: (field: Range<Int>, value: Range<Int>)?
        var index = 0
        while index < body.count {
            let start = index
            guard let tag = readVarint(body, at: &index, end: body.count), tag >> 3 != 0,
                  let value = skipValue(body, wireType: tag & 7, at: &index, end: body.count) else { return nil }
            if tag >> 3 == uploadField {
                guard tag & 7 == 2, upload == nil else { return nil }   // two would be merged
                upload = (start..<index, value)
            }
        }
        guard let upload, var request = try? WireRequest(serializedBytes: Array(body[..<upload.field.lowerBound]) + body[upload.field.upperBound...]),
              request.input == nil else { return nil }
        var input = Settlenet_V1_UploadInput()
        index = upload.value.lowerBound
        while index < upload.value.upperBound {
            guard let tag = readVarint(body, at: &index, end: upload.value.upperBound), tag & 7 == 2,
                  let value = skipValue(body, wireType: 2, at: &index, end: upload.value.upperBound) else { return nil }
            switch tag >> 3 {
            case 1: guard let record = UploadKeys.record(body, value, keysOnly: keysOnly) else { return nil }; input.records.append(record)
            case 2: guard let text = utf8(body, value) else { return nil }; input.catalogVersion = text
            default: return nil
            }
        }
        request.input = .upload(input)
        return request
    }

    /// The text of `bytes[range]`, nil if it is not UTF-8 (as a full decode would refuse it).
    /// ASCII, what every key is, takes the quick way.
    static func utf8(_ bytes: [UInt8], _ range: Range<Int>) -> String? {
        bytes.withUnsafeBufferPointer { buffer in
            let text = UnsafeBufferPointer(rebasing: buffer[range])
            return isASCII(text) ? String(decoding: text, as: UTF8.self) : String(validating: text, as: UTF8.self)
        }
    }

    /// Whether `bytes[range]` is UTF-8, without making a string of it when it is ASCII.
    static func isUTF8(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            let text = UnsafeBufferPointer(rebasing: buffer[range])
            return isASCII(text) || String(validating: text, as: UTF8.self) != nil
        }
    }

    static func isASCII(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var high: UInt8 = 0
        for byte in text { high |= byte }
        return high < 0x80
    }
}

/// The identifying fields of an `UploadRecord` read from its bytes (`WireCodec.UploadRecords`).
enum UploadKeys {
    /// Field numbers of `UploadRecord` (proto/settlenet/v1/settlenet.proto).
    static let setlID: UInt64 = 1, fixmedinsCode: UInt64 = 3, mdtrtareaAdmvs: UInt64 = 4, details: UInt64 = 14,
               batchIndex: UInt64 = 15, correctsSetlID: UInt64 = 16
    /// The other fields by number, as bit masks (a Set's look-up cost more than the rest).
    static let otherStrings: UInt64 = 1 << 2 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10
    static let amounts: UInt64 = 1 << 11 | 1 << 12 | 1 << 13

    static func isIn(_ mask: UInt64, _ number: UInt64) -> Bool { number < 64 && mask & (1 << number) != 0 }

    /// nil when anything in the record is not what the schema says (a full decode decides then).
    /// `keysOnly`: the other fields are checked, not kept.
    static func record(_ bytes: [UInt8], _ range: Range<Int>, keysOnly: Bool = true) -> Settlenet_V1_UploadRecord? {
        var record = Settlenet_V1_UploadRecord()
        var index = range.lowerBound
        while index < range.upperBound {
            guard let tag = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return nil }
            let number = tag >> 3, wireType = tag & 7
            if wireType == 0 {
                guard let value = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return nil }
                switch number {
                case batchIndex: record.batchIndex = Int32(truncatingIfNeeded: value)
                case 11 where !keysOnly: record.medfeeSumamt = Int64(bitPattern: value)
                case 12 where !keysOnly: record.fundPaySumamt = Int64(bitPattern: value)
                case 13 where !keysOnly: record.psnPay = Int64(bitPattern: value)
                default: guard keysOnly, isIn(amounts, number) else { return nil }
                }
                continue
            }
            guard wireType == 2, let value = WireCodec.skipValue(bytes, wireType: 2, at: &index, end: range.upperBound) else { return nil }
            switch number {
            case setlID: guard let text = WireCodec.utf8(bytes, value) else { return nil }; record.setlID = text
            case fixmedinsCode: guard let text = WireCodec.utf8(bytes, value) else { return nil }; record.fixmedinsCode = text
            case mdtrtareaAdmvs: guard let text = WireCodec.utf8(bytes, value) else { return nil }; record.mdtrtareaAdmvs = text
            case correctsSetlID: guard let text = WireCodec.utf8(bytes, value) else { return nil }; record.correctsSetlID = text
            case details:
                guard let detail = feeDetail(bytes, value, keep: !keysOnly) else { return nil }
                if !keysOnly { record.details.append(detail) }
            default:
                guard isIn(otherStrings, number) else { return nil }
                if keysOnly {
                    guard WireCodec.isUTF8(bytes, value) else { return nil }
                    continue
                }
                guard let text = WireCodec.utf8(bytes, value) else { return nil }
                switch number {
                case 2: record.psnNo = text
                case 5: record.insuplcAdmdvs = text
                case 6: record.admDate = text
                case 7: record.dscgDate = text
                case 8: record.diseCodg = text
                case 9: record.atddrCode = text
                default: record.nursCode = text   // 10
                }
            }
        }
        return record
    }

    /// A `FeeDetail`: code and kind (strings), amount (a varint); nil if it is not one.
    /// Without `keep` its fields are checked, and an empty detail is returned.
    static func feeDetail(_ bytes: [UInt8], _ range: Range<Int>, keep: Bool) -> Settlenet_V1_FeeDetail? {
        var detail = Settlenet_V1_FeeDetail()
        var index = range.lowerBound
        while index < range.upperBound {
            guard let tag = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return nil }
            switch (tag >> 3, tag & 7) {
            case (1, 2), (2, 2):
                guard let value = WireCodec.skipValue(bytes, wireType: 2, at: &index, end: range.upperBound) else { return nil }
                guard keep else {
                    guard WireCodec.isUTF8(bytes, value) else { return nil }
                    continue
                }
                guard let text = WireCodec.utf8(bytes, value) else { return nil }
                if tag >> 3 == 1 { detail.code = text } else { detail.kind = text }
            case (3, 0):
                guard let amount = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return nil }
                if keep { detail.amount = Int64(bitPattern: amount) }
            default: return nil
            }
        }
        return detail
    }
}
