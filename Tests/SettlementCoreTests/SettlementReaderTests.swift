@testable import SettlementModel
import SwiftProtobuf
import Testing

/// The direct reader of settlements and their answers against swift-protobuf: for any body,
/// either the reader declines it or both give the same message, and `WireCodec.decode` gives
/// what swift-protobuf alone would.
@Suite struct SettlementReaderTests {
    /// A seeded generator (SplitMix64): the same cases on every machine.
    struct Seeded {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func amount() -> Int64 {
            switch below(4) {
            case 0: 0
            case 1: -Int64(below(1_000_000))
            case 2: Int64(bitPattern: next())
            default: Int64(below(10_000_000))
            }
        }
        mutating func text() -> String {
            ["", "2207", "H37021100001202611230000000001", "370211", "张三", "医院 Ünï", String(repeating: "9", count: 200)][below(7)]
        }
    }

    static func request(_ random: inout Seeded) -> WireRequest {
        var request = WireRequest()
        request.infno = random.below(2) == 0 ? "2207" : "2304"
        request.msgid = random.text(); request.mdtrtareaAdmvs = random.text(); request.insuplcAdmdvs = random.text()
        request.recerSysCode = random.text(); request.infver = random.text(); request.opterType = random.text()
        request.opter = random.text(); request.opterName = random.text(); request.infTime = random.text()
        request.fixmedinsCode = random.text(); request.fixmedinsName = random.text(); request.signNo = random.text()
        request.signtype = random.text(); request.cainfo = random.text()
        request.budgetMs = Int32(truncatingIfNeeded: random.amount())
        var input = SettlementInput()
        input.psnNo = random.text(); input.mdtrtID = random.text(); input.medType = random.text()
        input.medfeeSumamt = random.amount(); input.fulamtOwnpayAmt = random.amount(); input.overlmtSelfpay = random.amount()
        input.preselfpayAmt = random.amount(); input.inscpScpAmt = random.amount(); input.acctUsedFlag = random.below(2) == 0
        request.settlement = input
        return request
    }

    static func response(_ random: inout Seeded) -> WireResponse {
        var response = WireResponse()
        if random.below(4) != 0 { response.infcode = Int32(truncatingIfNeeded: random.amount()) }
        response.infRefmsgid = random.text(); response.refmsgTime = random.text(); response.respondTime = random.text()
        response.errMsg = random.text(); response.warnMsg = random.text(); response.cainfo = random.text()
        response.signtype = random.text(); response.reqMsgid = random.text(); response.errCode = random.text()
        guard random.below(3) != 0 else { return response }   // a refusal carries no output
        var output = SettlementOutput()
        output.setlID = random.text(); output.mdtrtID = random.text(); output.psnNo = random.text()
        output.insutype = random.text(); output.setlTime = random.text()
        output.medfeeSumamt = random.amount(); output.fulamtOwnpayAmt = random.amount(); output.overlmtSelfpay = random.amount()
        output.preselfpayAmt = random.amount(); output.inscpScpAmt = random.amount(); output.actPayDedc = random.amount()
        output.hifpPay = random.amount(); output.hifmiPay = random.amount(); output.hifobPay = random.amount()
        output.cvlservPay = random.amount(); output.mafPay = random.amount(); output.othPay = random.amount()
        output.fundPaySumamt = random.amount(); output.psnPartAmt = random.amount(); output.acctPay = random.amount()
        output.psnCashPay = random.amount(); output.hospPartAmt = random.amount(); output.balc = random.amount()
        output.clrOptins = random.text(); output.clrWay = random.text(); output.clrType = random.text()
        output.acctPayInFund = random.below(2) == 0
        response.settlement = output
        return response
    }

    /// A few bytes flipped, cut, inserted or duplicated.
    static func mutated(_ body: [UInt8], _ random: inout Seeded) -> [UInt8] {
        var bytes = body
        for _ in 0...random.below(3) {
            guard !bytes.isEmpty else { break }
            let at = random.below(bytes.count)
            switch random.below(5) {
            case 0: bytes[at] ^= UInt8(truncatingIfNeeded: 1 << random.below(8))
            case 1: bytes.removeSubrange(at...)
            case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
            case 3: bytes += bytes[at..<min(bytes.count, at + 1 + random.below(40))]   // a field again, or part of one
            default: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
        }
        return bytes
    }

    @Test func everySettlementAndAnswerIsReadDirectlyAsSwiftProtobufReadsIt() throws {
        var random = Seeded(state: 2207)
        for _ in 0..<2_000 {
            let request = Self.request(&random)
            let requestBody: [UInt8] = try request.serializedBytes()
            #expect(SettlementReader.request(requestBody) == request)
            let response = Self.response(&random)
            let responseBody: [UInt8] = try response.serializedBytes()
            #expect(SettlementReader.response(responseBody) == response)
        }
    }

    @Test func whateverTheBytesTheReaderAgreesWithSwiftProtobufOrDeclines() throws {
        var random = Seeded(state: 2304)
        var readDirectly = 0, declined = 0
        for round in 0..<20_000 {
            let original: [UInt8] = round.isMultiple(of: 2)
                ? try Self.request(&random).serializedBytes() : try Self.response(&random).serializedBytes()
            let body = Self.mutated(original, &random)
            let direct: (any Equatable)? = round.isMultiple(of: 2) ? SettlementReader.request(body) : SettlementReader.response(body)
            let full: (any Equatable)? = round.isMultiple(of: 2)
                ? try? WireRequest(serializedBytes: body) : try? WireResponse(serializedBytes: body)
            guard let direct else {
                declined += 1
                continue
            }
            readDirectly += 1
            if let request = direct as? WireRequest {
                #expect(request == full as? WireRequest, "body \(body)")
            } else {
                #expect(direct as? WireResponse == full as? WireResponse, "body \(body)")
            }
        }
        // Both kinds of outcome occur, or the test proves nothing.
        #expect(readDirectly > 1_000 && declined > 1_000, "read directly \(readDirectly), declined \(declined)")
    }

    @Test func theCodecDecodesExactlyWhatSwiftProtobufDecodes() throws {
        var random = Seeded(state: 4101)
        for round in 0..<4_000 {
            let isRequest = round.isMultiple(of: 2)
            let original: [UInt8] = isRequest ? try Self.request(&random).serializedBytes() : try Self.response(&random).serializedBytes()
            let body = round % 4 < 2 ? original : Self.mutated(original, &random)
            let decoded = WireCodec.decode([[], isRequest ? WireCodec.requestKind : WireCodec.responseKind, body][...])
            switch (decoded, isRequest) {
            case (.request(let request), true): #expect(request == (try? WireRequest(serializedBytes: body)))
            case (.response(let response), false): #expect(response == (try? WireResponse(serializedBytes: body)))
            case (.malformed, true): #expect((try? WireRequest(serializedBytes: body)) == nil)
            case (.malformed, false): #expect((try? WireResponse(serializedBytes: body)) == nil)
            default: Issue.record("a \(isRequest ? "request" : "response") body decoded as the other kind")
            }
        }
    }

    @Test func otherTransactionsAndUnknownFieldsAreLeftToSwiftProtobuf() throws {
        var reversal = WireRequest()
        reversal.infno = "2208"
        var input = ReversalInput()
        input.omsgid = "H37021100001202611230000000001"
        reversal.reversal = input
        #expect(SettlementReader.request(try reversal.serializedBytes()) == nil)
        var random = Seeded(state: 1)
        // Field 99, length-delimited, one byte: unknown to this version.
        let body: [UInt8] = try Self.request(&random).serializedBytes() + [0x9A, 0x06, 0x01, 0x78]
        #expect(SettlementReader.request(body) == nil)
        // ...and swift-protobuf keeps what it does not know, for whoever passes the message on.
        let settlement = try WireRequest(serializedBytes: body)
        #expect(!settlement.unknownFields.data.isEmpty)
        guard case .request(let decoded) = WireCodec.decode([[], WireCodec.requestKind, body][...]) else {
            Issue.record("a settlement with an unknown field did not decode")
            return
        }
        #expect(decoded == settlement)
    }
}
