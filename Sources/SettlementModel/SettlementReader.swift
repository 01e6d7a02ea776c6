/// Settlements (2207, 2304) and their answers read straight off protobuf's wire format.
///
/// Every node decodes every message it passes: a cross-province settlement is decoded fourteen
/// times on its way. swift-protobuf's generic decoder spent about 12,000 instructions on each
/// (callgrind), a sixth of what a relay does for a settlement. These readers know the two
/// shapes that make up nearly all traffic and fill the same generated structs in a third of that.
///
/// They read only what they can read exactly as swift-protobuf would: known fields with their
/// declared wire types, each at most once, strings valid UTF-8. Anything else (another
/// transaction's input, an unknown or repeated field, a damaged body) returns nil, and the
/// caller decodes the body with swift-protobuf, which decides what it is. A test holds the two
/// decoders to the same result over generated and mutated messages.
enum SettlementReader {
    /// A settlement request (envelope fields and a settlement input), or nil.
    static func request(_ body: [UInt8]) -> WireRequest? {
        body.withUnsafeBufferPointer { buffer -> WireRequest? in
            var scan = WireScan(buffer, 0..<buffer.count)
            var request = WireRequest()
            var seen: UInt32 = 0
            while scan.hasMore {
                guard let (field, wireType) = scan.tag(), field < 32, seen & (1 << field) == 0 else { return nil }
                seen |= 1 << field
                switch (field, wireType) {
                case (1...15, 2):
                    guard let text = scan.string() else { return nil }
                    switch field {
                    case 1: request.infno = text
                    case 2: request.msgid = text
                    case 3: request.mdtrtareaAdmvs = text
                    case 4: request.insuplcAdmdvs = text
                    case 5: request.recerSysCode = text
                    case 6: request.infver = text
                    case 7: request.opterType = text
                    case 8: request.opter = text
                    case 9: request.opterName = text
                    case 10: request.infTime = text
                    case 11: request.fixmedinsCode = text
                    case 12: request.fixmedinsName = text
                    case 13: request.signNo = text
                    case 14: request.signtype = text
                    default: request.cainfo = text
                    }
                case (16, 0):
                    guard let value = scan.varint() else { return nil }
                    request.budgetMs = Int32(truncatingIfNeeded: value)
                case (21, 2):
                    guard let range = scan.lengthDelimited(), let input = settlementInput(buffer, range) else { return nil }
                    request.settlement = input
                default:
                    return nil
                }
            }
            // A request without its input is some other shape: left to swift-protobuf.
            return seen & (1 << 21) != 0 ? request : nil
        }
    }

    private static func settlementInput(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Settlenet_V1_SettlementInput? {
        var scan = WireScan(buffer, range)
        var input = Settlenet_V1_SettlementInput()
        var seen: UInt32 = 0
        while scan.hasMore {
            guard let (field, wireType) = scan.tag(), field < 32, seen & (1 << field) == 0 else { return nil }
            seen |= 1 << field
            switch (field, wireType) {
            case (1...3, 2):
                guard let text = scan.string() else { return nil }
                switch field {
                case 1: input.psnNo = text
                case 2: input.mdtrtID = text
                default: input.medType = text
                }
            case (4...9, 0):
                guard let value = scan.varint() else { return nil }
                switch field {
                case 4: input.medfeeSumamt = Int64(bitPattern: value)
                case 5: input.fulamtOwnpayAmt = Int64(bitPattern: value)
                case 6: input.overlmtSelfpay = Int64(bitPattern: value)
                case 7: input.preselfpayAmt = Int64(bitPattern: value)
                case 8: input.inscpScpAmt = Int64(bitPattern: value)
                default: input.acctUsedFlag = value != 0
                }
            default:
                return nil
            }
        }
        return input
    }

    /// An answer with a settlement output, or one with no output at all (a refusal), or nil.
    static func response(_ body: [UInt8]) -> WireResponse? {
        body.withUnsafeBufferPointer { buffer -> WireResponse? in
            var scan = WireScan(buffer, 0..<buffer.count)
            var response = WireResponse()
            var seen: UInt32 = 0
            while scan.hasMore {
                guard let (field, wireType) = scan.tag(), field < 32, seen & (1 << field) == 0 else { return nil }
                seen |= 1 << field
                switch (field, wireType) {
                case (1, 0):
                    guard let value = scan.varint() else { return nil }
                    response.infcode = Int32(truncatingIfNeeded: value)
                case (2...10, 2):
                    guard let text = scan.string() else { return nil }
                    switch field {
                    case 2: response.infRefmsgid = text
                    case 3: response.refmsgTime = text
                    case 4: response.respondTime = text
                    case 5: response.errMsg = text
                    case 6: response.warnMsg = text
                    case 7: response.cainfo = text
                    case 8: response.signtype = text
                    case 9: response.reqMsgid = text
                    default: response.errCode = text
                    }
                case (21, 2):
                    guard let range = scan.lengthDelimited(), let output = settlementOutput(buffer, range) else { return nil }
                    response.settlement = output
                default:
                    return nil
                }
            }
            return response
        }
    }

    private static func settlementOutput(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Settlenet_V1_SettlementOutput? {
        var scan = WireScan(buffer, range)
        var output = Settlenet_V1_SettlementOutput()
        var seen: UInt32 = 0
        while scan.hasMore {
            guard let (field, wireType) = scan.tag(), field < 32, seen & (1 << field) == 0 else { return nil }
            seen |= 1 << field
            switch (field, wireType) {
            case (1...5, 2), (24...26, 2):
                guard let text = scan.string() else { return nil }
                switch field {
                case 1: output.setlID = text
                case 2: output.mdtrtID = text
                case 3: output.psnNo = text
                case 4: output.insutype = text
                case 5: output.setlTime = text
                case 24: output.clrOptins = text
                case 25: output.clrWay = text
                default: output.clrType = text
                }
            case (6...23, 0), (27, 0):
                guard let value = scan.varint() else { return nil }
                let amount = Int64(bitPattern: value)
                switch field {
                case 6: output.medfeeSumamt = amount
                case 7: output.fulamtOwnpayAmt = amount
                case 8: output.overlmtSelfpay = amount
                case 9: output.preselfpayAmt = amount
                case 10: output.inscpScpAmt = amount
                case 11: output.actPayDedc = amount
                case 12: output.hifpPay = amount
                case 13: output.hifmiPay = amount
                case 14: output.hifobPay = amount
                case 15: output.cvlservPay = amount
                case 16: output.mafPay = amount
                case 17: output.othPay = amount
                case 18: output.fundPaySumamt = amount
                case 19: output.psnPartAmt = amount
                case 20: output.acctPay = amount
                case 21: output.psnCashPay = amount
                case 22: output.hospPartAmt = amount
                case 23: output.balc = amount
                default: output.acctPayInFund = value != 0
                }
            default:
                return nil
            }
        }
        return output
    }
}

/// A cursor over protobuf's wire format within one buffer.
private struct WireScan {
    let bytes: UnsafeBufferPointer<UInt8>
    var index: Int
    let end: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        self.bytes = bytes
        index = range.lowerBound
        end = range.upperBound
    }

    var hasMore: Bool { index < end }

    /// A field's number and wire type; nil past the end or for field number 0.
    mutating func tag() -> (field: UInt64, wireType: UInt64)? {
        guard let key = varint(), key >> 3 != 0 else { return nil }
        return (key >> 3, key & 7)
    }

    /// At most ten bytes, the tenth carrying only the top bit; nil otherwise.
    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < end {
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { return nil }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    mutating func lengthDelimited() -> Range<Int>? {
        guard let length = varint(), length <= UInt64(end - index) else { return nil }
        let range = index..<(index + Int(length))
        index = range.upperBound
        return range
    }

    /// A length-delimited field as text; nil when it is not valid UTF-8.
    mutating func string() -> String? {
        guard let range = lengthDelimited() else { return nil }
        let text = UnsafeBufferPointer(rebasing: bytes[range])
        // ASCII (codes, ids, amounts' text) needs no validation beyond its top bits.
        if text.allSatisfy({ $0 < 0x80 }) { return String(decoding: text, as: UTF8.self) }
        return String(validating: text, as: UTF8.self)
    }
}
