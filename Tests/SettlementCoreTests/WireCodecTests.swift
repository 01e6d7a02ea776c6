import SettlementCore
import SettlementModel
import SettlementTestKit
import SwiftProtobuf
import Testing

@Suite struct WireCodecTests {
    /// Every code reads back as its case, and nothing else reads as a code.
    @Test func transactionCodesReadExactly() {
        for code in TransactionCode.allCases { #expect(TransactionCode(rawValue: code.rawValue) == code) }
        #expect(Set(TransactionCode.allCases.map(\.rawValue)).count == TransactionCode.allCases.count)
        for text in ["", "2206", "22070", "207", " 2207", "2207 ", "２２０７", "9999", "4101\u{0}"] {
            #expect(TransactionCode(rawValue: text) == nil, "\(text.debugDescription)")
        }
    }

    /// The metrics read an answer's infcode and err_code off its bytes: the same as a decode
    /// reads, whatever else the answer holds; nothing for a request.
    @Test func anAnswersOutcomeIsReadOffItsBytes() throws {
        var refused = WireResponse()
        refused.infcode = -1
        refused.errCode = "SN-E2002"
        refused.errMsg = "FSI-not filed[SN-E2002]"
        refused.reqMsgid = "H37021100001202612070000000001"
        var settled = WireResponse()
        settled.infcode = 0
        settled.warnMsg = "ok"
        settled.settlement = Settlenet_V1_SettlementOutput()
        settled.settlement.setlID = "4101022026120700000001"
        settled.settlement.medfeeSumamt = 48_800
        for response in [refused, settled, WireResponse()] {
            let outcome = try #require(WireCodec.answerOutcome(WireCodec.frames(response)))
            #expect(outcome.infcode == response.infcode && outcome.errCode == response.errCode)
        }
        #expect(WireCodec.answerOutcome(WireCodec.frames(SampleRequests.settlement(budgetMs: 1))) == nil)
        #expect(WireCodec.answerOutcome([[], WireCodec.responseKind, [0x0A, 0x05, 0x01]]) == nil, "a length beyond the body")
    }

    @Test(arguments: [Int32(0), 1, 127, 128, 9_400, 60_000, -5])
    func aRelayedBodyHasTheNewBudgetAndEveryOtherFieldAsItWas(budgetMs: Int32) throws {
        let original = SampleRequests.settlement(budgetMs: 30_000)
        let encoded: [UInt8] = try original.serializedBytes()
        let body = try #require(WireCodec.replacingBudget(in: encoded, with: budgetMs))
        var expected = original
        expected.budgetMs = budgetMs
        #expect(try WireRequest(serializedBytes: body) == expected)
        // Replaced, not appended: the body stays the size of the request encoded afresh.
        let encodedAfresh: [UInt8] = try expected.serializedBytes()
        #expect(body.count == encodedAfresh.count)
    }

    @Test func aBudgetIsAddedToABodyWithoutOneAndEveryCopyOfItIsReplaced() throws {
        let noBudget: [UInt8] = try SampleRequests.settlement(budgetMs: 0).serializedBytes()
        let added = try #require(WireCodec.replacingBudget(in: noBudget, with: 500))
        #expect(try WireRequest(serializedBytes: added).budgetMs == 500)
        // A hostile sender repeating the field: the last would win in a parser, so none may stay.
        let repeated = noBudget + [0x80, 0x01, 0x05] + noBudget + [0x80, 0x01, 0x07]
        let replaced = try #require(WireCodec.replacingBudget(in: repeated, with: 9))
        #expect(try WireRequest(serializedBytes: replaced).budgetMs == 9)
        #expect(replaced.count == repeated.count - 6 + 3)
    }

    @Test func aBodyThatIsNotProtobufIsNotRelayedAsIs() throws {
        let body: [UInt8] = try SampleRequests.settlement(budgetMs: 30_000).serializedBytes()
        #expect(WireCodec.replacingBudget(in: Array(body.dropLast(3)), with: 1) == nil, "a truncated string field")
        #expect(WireCodec.replacingBudget(in: [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], with: 1) == nil, "a length past the end")
        #expect(WireCodec.replacingBudget(in: [0x0B], with: 1) == nil, "a group (wire type 3)")
        #expect(WireCodec.replacingBudget(in: [0x80], with: 1) == nil, "a tag cut short")
    }

    static func uploadRecord(_ setlID: String) -> UploadRecord {
        var record = UploadRecord()
        record.setlID = setlID
        record.fixmedinsCode = "H37021100001"
        var detail = FeeDetail()
        detail.amount = 1_234
        record.details = [detail, detail]
        return record
    }

    static func uploadRequest(_ setlIDs: [String], catalogVersion: String = "V1") -> WireRequest {
        var request = SampleRequests.settlement(budgetMs: 9_000)
        request.infno = "4101"
        var input = UploadInput()
        input.records = setlIDs.map(uploadRecord)
        input.catalogVersion = catalogVersion
        request.input = .upload(input)
        return request
    }

    @Test func theRecordsOfAnUploadAreFoundInItsBodyInOrderWithoutDecodingIt() throws {
        let request = Self.uploadRequest(["S1", "S2", "S3"])
        let body: [UInt8] = try request.serializedBytes()
        let ranges = try #require(WireCodec.uploadRecordRanges(in: body))
        #expect(try ranges.map { try UploadRecord(serializedBytes: body[$0]) } == ["S1", "S2", "S3"].map(Self.uploadRecord))
        #expect(WireCodec.uploadRecordRanges(in: try Self.uploadRequest([]).serializedBytes()) == [])
        #expect(WireCodec.uploadRecordRanges(in: try SampleRequests.settlement(budgetMs: 1).serializedBytes()) == nil, "no upload input")
        #expect(WireCodec.uploadRecordRanges(in: Array(body.dropLast(2))) == nil, "cut short")
        // A second upload field would be merged into the first by a decoder: not taken apart.
        let second: [UInt8] = try Self.uploadRequest(["S4"]).serializedBytes()
        #expect(WireCodec.uploadRecordRanges(in: body + second) == nil)
    }

    @Test(arguments: ["V1", ""])
    func anUploadBodySplicedFromEncodedRecordsDecodesAsTheRequest(catalogVersion: String) throws {
        let expected = Self.uploadRequest(["S1", "S2"], catalogVersion: catalogVersion)
        let records: [[UInt8]] = try ["S1", "S2"].map { try Self.uploadRecord($0).serializedBytes() }
        let body = try WireCodec.uploadRequestBody(envelope: expected, records: records, catalogVersion: catalogVersion)
        #expect(try WireRequest(serializedBytes: body) == expected)
        guard case .upload(let input)? = expected.input else { Issue.record("no upload input"); return }
        let spliced = try WireCodec.uploadRequestBody(envelope: expected, input: try input.serializedBytes())
        #expect(try WireRequest(serializedBytes: spliced) == expected, "an encoded input spliced in whole")
        let empty = try WireCodec.uploadRequestBody(envelope: expected, records: [], catalogVersion: catalogVersion)
        #expect(try WireRequest(serializedBytes: empty) == Self.uploadRequest([], catalogVersion: catalogVersion))
    }

    /// XXH64 as its specification defines it (values from the reference implementation).
    @Test func xxh64GivesTheReferenceValues() {
        #expect(XXH64.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash(Array("Nobody inspects the spammish repetition".utf8)) == 0xFBCE_A83C_8A37_8BF1)
        #expect(XXH64.hash((0..<100).map { UInt8($0) }) == 0x6AC1_E580_3216_6597)
        #expect(XXH64.hash((0..<100).map { UInt8($0) }, seed: 12_345) == 0x028B_A1AE_2DE4_DE27)
    }

    /// The checksum between nodes is XXH64 of the body seeded with the FNV-1a 64 of the kind,
    /// little-endian (docs/PROTOCOL.md): other implementations compute it from that description.
    @Test func theChecksumIsXXH64OfTheBodySeededByTheKind() throws {
        let body: [UInt8] = try SampleRequests.settlement(budgetMs: 30_000).serializedBytes()
        var seed: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in Array("req".utf8) {
            seed ^= UInt64(byte)
            seed = seed &* 0x0000_0100_0000_01B3
        }
        let hash = XXH64.hash(body, seed: seed)
        let expected = (0..<8).map { UInt8(truncatingIfNeeded: hash >> (8 * $0)) }
        #expect(WireCodec.checksum(kind: WireCodec.requestKind, body: body) == expected)
        #expect(WireCodec.sealed([[], WireCodec.requestKind, body]).last == expected)
        #expect(WireCodec.checksum(kind: WireCodec.responseKind, body: body) != expected, "the kind is part of it")
    }

    // MARK: Upload records by their keys

    static func uploadBody(_ records: [UploadRecord], catalogVersion: String = "V2026.11") throws -> [UInt8] {
        var request = SampleRequests.settlement(budgetMs: 900)
        request.infno = "4101"
        var input = UploadInput()
        input.records = records
        input.catalogVersion = catalogVersion
        request.input = .upload(input)
        return try request.serializedBytes()
    }

    /// Clean records enough to make a batch read directly (`WireCodec.directReadBytes`).
    static var fillers: [UploadRecord] {
        (10..<30).map { serial in
            var record = Uploads.clean
            record.setlID = "410102000000000000\(serial)"
            return record
        }
    }

    static func decoded(_ body: [UInt8], _ records: WireCodec.UploadRecords) -> WireRequest? {
        guard case .request(let request) = WireCodec.decode([[], WireCodec.requestKind, body][...], uploadRecords: records) else { return nil }
        return request
    }

    /// Above the county a batch is decoded with each record's keys only: the envelope and the
    /// keys are what a full decode gives, and nothing else of the record is read.
    @Test func uploadRecordsDecodedByTheirKeysCarryTheKeysOfAFullDecode() throws {
        var corrected = Uploads.clean
        corrected.setlID = "41010200000000000002"
        corrected.correctsSetlID = "41010200000000000001"
        corrected.batchIndex = 7
        var unicode = Uploads.clean
        unicode.setlID = "41010200000000000003"
        unicode.psnNo = "人员编号"   // not ASCII: validated as UTF-8, as a full decode would
        var negative = Uploads.clean
        negative.setlID = "41010200000000000004"
        negative.psnPay = -5   // refused by the rules, read as sent
        negative.details.append(Uploads.detail("人", "药", -1))
        let body = try Self.uploadBody([Uploads.clean, corrected, unicode, negative] + Self.fillers)
        #expect(body.count >= WireCodec.directReadBytes)
        let full = try #require(Self.decoded(body, .full))
        #expect(full == (try WireRequest(serializedBytes: body)), "read directly, every field as SwiftProtobuf reads it")
        let keys = try #require(Self.decoded(body, .keysOnly))
        guard case .upload(let fullInput)? = full.input, case .upload(let keyInput)? = keys.input else {
            Issue.record("not an upload"); return
        }
        var envelope = keys, fullEnvelope = full
        envelope.input = nil
        fullEnvelope.input = nil
        #expect(envelope == fullEnvelope)
        #expect(keyInput.catalogVersion == fullInput.catalogVersion)
        let expected = fullInput.records.map { record in
            var key = UploadRecord()
            key.setlID = record.setlID
            key.fixmedinsCode = record.fixmedinsCode
            key.mdtrtareaAdmvs = record.mdtrtareaAdmvs
            key.batchIndex = record.batchIndex
            key.correctsSetlID = record.correctsSetlID
            return key
        }
        #expect(keyInput.records == expected)
        #expect(keyInput.records[1].batchIndex == 7 && keyInput.records[1].correctsSetlID == "41010200000000000001")
    }

    /// Whatever the keys-only reading would take differently from a full decode is decoded in
    /// full: a record with a field the schema lacks keeps it, and one that is not protobuf (a
    /// string that is not UTF-8 deep in a fee line) is refused as a full decode refuses it.
    @Test func whatTheKeysOnlyReadingCannotVouchForIsDecodedInFull() throws {
        let unknownField = try Uploads.clean.serializedBytes() + [0xF8, 0x07, 0x01]   // field 127
        let withUnknown = try UploadRecord(serializedBytes: unknownField)
        let body = try Self.uploadBody([withUnknown] + Self.fillers)
        for mode in [WireCodec.UploadRecords.keysOnly, .full] {
            let decoded = try #require(Self.decoded(body, mode))
            guard case .upload(let input)? = decoded.input else { Issue.record("not an upload"); return }
            #expect(input.records.first == withUnknown, "decoded by SwiftProtobuf, its unknown field kept")
        }

        var badDetail = Uploads.clean
        badDetail.details[1].code = "XXXX"
        var bytes = try Self.uploadBody([badDetail] + Self.fillers)
        let at = try #require(WireCodecTests.offset(of: Array("XXXX".utf8), in: bytes))
        bytes[at + 1] = 0xFF   // no UTF-8 byte
        #expect(Self.decoded(bytes, .keysOnly) == nil && Self.decoded(bytes, .full) == nil)
        // A settlement is decoded as it always is.
        let settlement: [UInt8] = try SampleRequests.settlement(budgetMs: 5).serializedBytes()
        #expect(Self.decoded(settlement, .keysOnly) == Self.decoded(settlement, .full))
    }

    static func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        (0...(haystack.count - needle.count)).first { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}
