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
        var request = WireRequest()
        let seen = eachFieldOnce(body, body.indices) { field, wireType, index in
            switch (field, wireType) {
            case (1...15, 2):
                guard let text = string(body, &index, end: body.count) else { return false }
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
                guard let value = WireCodec.readVarint(body, at: &index, end: body.count) else { return false }
                request.budgetMs = Int32(truncatingIfNeeded: value)
            case (21, 2):
                guard let range = WireCodec.skipValue(body, wireType: 2, at: &index, end: body.count),
                      let input = settlementInput(body, range) else { return false }
                request.settlement = input
            default:
                return false
            }
            return true
        }
        // A request without its input is some other shape: left to swift-protobuf.
        guard let seen, seen & (1 << 21) != 0 else { return nil }
        return request
    }

    private static func settlementInput(_ bytes: [UInt8], _ range: Range<Int>) -> Settlenet_V1_SettlementInput? {
        var input = Settlenet_V1_SettlementInput()
        let read = eachFieldOnce(bytes, range) { field, wireType, index in
            switch (field, wireType) {
            case (1...3, 2):
                guard let text = string(bytes, &index, end: range.upperBound) else { return false }
                switch field {
                case 1: input.psnNo = text
                case 2: input.mdtrtID = text
                default: input.medType = text
                }
            case (4...9, 0):
                guard let value = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return false }
                switch field {
                case 4: input.medfeeSumamt = Int64(bitPattern: value)
                case 5: input.fulamtOwnpayAmt = Int64(bitPattern: value)
                case 6: input.overlmtSelfpay = Int64(bitPattern: value)
                case 7: input.preselfpayAmt = Int64(bitPattern: value)
                case 8: input.inscpScpAmt = Int64(bitPattern: value)
                default: input.acctUsedFlag = value != 0
                }
            default:
                return false
            }
            return true
        }
        return read == nil ? nil : input
    }

    /// An answer with a settlement output, or one with no output at all (a refusal), or nil.
    static func response(_ body: [UInt8]) -> WireResponse? {
        var response = WireResponse()
        let read = eachFieldOnce(body, body.indices) { field, wireType, index in
            switch (field, wireType) {
            case (1, 0):
                guard let value = WireCodec.readVarint(body, at: &index, end: body.count) else { return false }
                response.infcode = Int32(truncatingIfNeeded: value)
            case (2...10, 2):
                guard let text = string(body, &index, end: body.count) else { return false }
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
                guard let range = WireCodec.skipValue(body, wireType: 2, at: &index, end: body.count),
                      let output = settlementOutput(body, range) else { return false }
                response.settlement = output
            default:
                return false
            }
            return true
        }
        return read == nil ? nil : response
    }

    private static func settlementOutput(_ bytes: [UInt8], _ range: Range<Int>) -> Settlenet_V1_SettlementOutput? {
        var output = Settlenet_V1_SettlementOutput()
        let read = eachFieldOnce(bytes, range) { field, wireType, index in
            switch (field, wireType) {
            case (1...5, 2), (24...26, 2):
                guard let text = string(bytes, &index, end: range.upperBound) else { return false }
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
                guard let value = WireCodec.readVarint(bytes, at: &index, end: range.upperBound) else { return false }
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
                return false
            }
            return true
        }
        return read == nil ? nil : output
    }

    /// Walks the fields of `bytes[range]`: `read` gets each one's number and wire type with
    /// `index` at its value, reads it past, and returns false to decline the message. A field
    /// seen twice is declined too (swift-protobuf keeps the last scalar but merges messages).
    /// Returns the field numbers seen, as bits; nil when declined or cut short.
    @inline(__always)
    private static func eachFieldOnce(_ bytes: [UInt8], _ range: Range<Int>,
                                      _ read: (_ field: UInt64, _ wireType: UInt64, _ index: inout Int) -> Bool) -> UInt32? {
        var seen: UInt32 = 0
        var index = range.lowerBound
        while index < range.upperBound {
            guard let tag = WireCodec.readVarint(bytes, at: &index, end: range.upperBound), case let field = tag >> 3,
                  field != 0, field < 32, seen & (1 << field) == 0 else { return nil }
            seen |= 1 << field
            guard read(field, tag & 7, &index) else { return nil }
        }
        return seen
    }

    /// A length-delimited field as text (`WireCodec.utf8`); nil when cut short or not UTF-8.
    private static func string(_ bytes: [UInt8], _ index: inout Int, end: Int) -> String? {
        guard let range = WireCodec.skipValue(bytes, wireType: 2, at: &index, end: end) else { return nil }
        return WireCodec.utf8(bytes, range)
    }
}
