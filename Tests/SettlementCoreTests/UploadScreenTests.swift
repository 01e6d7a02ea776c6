import Foundation
import SettlementCore
import SettlementModel
import SettlementTestKit
import Testing

/// Each tier's screen of upload batches, without a ledger or a process: the county's record
/// rules, each tier's refusal of duplicates, what is stored and handed on, and the tickets.
@Suite struct UploadScreenTests {
    struct Tier {
        var screen: UploadScreen
        var tickets: TicketDesk
        var responses: ResponseFactory
        let store = InMemoryUploadStore()

        init(_ id: String, _ tier: SettlementModel.Tier) {
            let node = DivisionCode(id)!
            screen = UploadScreen(node: node, tier: tier, institutions: id == "370211" ? Uploads.institutions : [],
                                  routing: Minimal.routing)
            tickets = TicketDesk(node: node, registry: DivisionCode("000000")!)
            responses = ResponseFactory(division: node)
        }

        mutating func screen(_ request: WireRequest, at nowMs: Int64 = 1_000,
                             recordsAsReceived: [ArraySlice<UInt8>]? = nil) throws -> UploadScreen.Screened {
            try screen.screen(request, receivedAtMs: nowMs, nowMs: nowMs, catalog: Uploads.catalog, responses: &responses,
                              tickets: &tickets, store: store, recordsAsReceived: recordsAsReceived)
        }
    }

    var hospital = RequestFactory(institution: "H37021100002", treatment: Uploads.county)

    mutating func batch(_ records: [UploadRecord]) -> WireRequest {
        var request = hospital.envelope(.upload, insured: Uploads.county, nowMs: 0)
        var input = UploadInput()
        input.records = records
        input.catalogVersion = Uploads.catalog.version
        request.input = .upload(input)
        return request
    }

    func record(_ setlID: String, _ change: (inout UploadRecord) -> Void = { _ in }) -> UploadRecord {
        var record = Uploads.clean
        record.setlID = setlID
        change(&record)
        return record
    }

    /// What goes up (as spliced into the request) and this tier's rejects.
    func passing(_ screened: UploadScreen.Screened) -> (records: [UploadRecord], rejects: [UploadReject])? {
        guard case .forward(let passing, let input, _, let rejects) = screened.outcome,
              let records = try? UploadInput(serializedBytes: input).records, records.count == passing else { return nil }
        return (records, rejects)
    }

    func passed(_ screened: UploadScreen.Screened) -> (records: [String], rejects: [String])? {
        passing(screened).map { ($0.records.map(\.setlID), $0.rejects.map { "\($0.setlID) \($0.ruleID)" }) }
    }

    func stored(_ screened: UploadScreen.Screened) throws -> UploadOutput? {
        guard case .answer(let body) = screened.outcome, case .upload(let out)? = try WireResponse(serializedBytes: body).output else { return nil }
        return out
    }

    @Test mutating func theCountyChecksEachRecordAndPassesTheCleanOnesUpNumberedAsSent() throws {
        var county = Tier("370211", .county)
        let screened = try county.screen(batch([record("S1"), record("S2") { $0.psnNo = "123" }, record("S3")]))
        let result = try #require(passed(screened))
        #expect(result.records == ["S1", "S3"])
        #expect(result.rejects == ["S2 \(UploadRules.badFormat.id)"])
        guard case .forward(_, let input, let received, let rejects) = screened.outcome else { return }
        #expect(received == 3 && rejects.first?.index == 1 && rejects.first?.tier == "county" && rejects.first?.admdvs == "370211")
        // What goes up is the records that passed, whole, each numbered by its place in the hospital's batch.
        let up = try UploadInput(serializedBytes: input)
        #expect(up.records == [record("S1") { $0.batchIndex = 0 }, record("S3") { $0.batchIndex = 2 }])
        #expect(up.catalogVersion == Uploads.catalog.version)
        #expect(county.store.counts == ["received": 3, "accepted": 2, "corrections": 0, UploadRules.badFormat.id: 1])
        #expect(county.store.rejects.map(\.setlID) == ["S2"])
        #expect(screened.tickets == TicketDesk.Effects(), "the county's own rejects are answered, not ticketed")
        #expect(county.store.storedBatches.isEmpty && county.store.claimed == ["S1", "S3"], "the county keeps only the claim")
    }

    @Test mutating func aBatchAskedAgainGetsTheSameDecisionCountedOnce() throws {
        var county = Tier("370211", .county)
        let request = batch([record("S1"), record("S2") { $0.psnNo = "123" }])
        let first = try county.screen(request)
        let again = try county.screen(request, at: 2_000)
        #expect(first.outcome == again.outcome)
        #expect(county.store.counts["received"] == 2)
        guard case .forward(let passing, let input, _, _) = again.outcome else { Issue.record("not passed up again"); return }
        #expect(passing == 1 && !input.isEmpty)
    }

    /// A county or city keeps no copy of what it passed up: a repeat of the batch is spliced
    /// again from the records that come with it, into the same bytes, none of them screened again.
    @Test mutating func aRepeatIsPassedUpAgainFromItsOwnRecordsIntoTheSameBytes() throws {
        for (id, tier) in [("370211", SettlementModel.Tier.county), ("370200", .city)] {
            var screening = Tier(id, tier)
            let records = [record("S1"), record("S2") { $0.psnNo = "123" }, record("S3"), record("S4")]
            _ = try screening.screen(batch([record("S3")]))   // S3 is a duplicate when the batch comes
            // Marked so that a spliced copy can be told from one encoded afresh (an unknown field).
            let asReceived: [ArraySlice<UInt8>] = try records.map { ArraySlice(try $0.serializedBytes() + [0xF8, 0x07, 0x01]) }
            let request = batch(records)
            let first = try screening.screen(request, recordsAsReceived: asReceived)
            let again = try screening.screen(request, at: 2_000, recordsAsReceived: asReceived)
            #expect(again.outcome == first.outcome, "\(tier)")
            guard case .forward(let passing, let input, let received, let rejects) = again.outcome else {
                Issue.record("\(tier): not passed up again"); continue
            }
            let expected = tier == .county ? ["S1", "S4"] : ["S1", "S2", "S4"]
            #expect(try UploadInput(serializedBytes: input).records.map(\.setlID) == expected && passing == expected.count, "\(tier)")
            #expect(received == 4 && rejects.count == 4 - expected.count, "\(tier)")
            #expect(screening.store.counts["received"] == 5, "\(tier): the repeat is not counted")
            let stored = try #require(screening.store.batches[request.msgid]?.passedUp)
            #expect(stored.bytes == nil && stored.rejectedPositions == (tier == .county ? [1, 2] : [2]), "\(tier): no copy of the records kept")
        }
    }

    /// The same msgid with other records is not a repeat: refused, definitely, and nothing of it
    /// passes up or is counted.
    @Test mutating func otherRecordsUnderAMsgidAlreadyScreenedAreRefused() throws {
        for (id, tier) in [("370211", SettlementModel.Tier.county), ("370200", .city)] {
            var screening = Tier(id, tier)
            let request = batch([record("S1"), record("S2")])
            _ = try screening.screen(request)
            let s3 = record("S3")
            var changes: [(String, WireRequest)] = []
            for (name, change) in [("another amount", { (records: inout [UploadRecord]) in records[1].medfeeSumamt += 1 }),
                                   ("a record more", { $0.append(s3) }),
                                   ("a record fewer", { $0.removeLast() })] as [(String, (inout [UploadRecord]) -> Void)] {
                var other = request
                guard case .upload(var input)? = other.input else { return }
                change(&input.records)
                other.input = .upload(input)
                changes.append((name, other))
            }
            for (name, other) in changes {
                let screened = try screening.screen(other, at: 2_000)
                guard case .answer(let body) = screened.outcome else { Issue.record("\(tier), \(name): passed up"); continue }
                let refusal = try WireResponse(serializedBytes: body)
                #expect(refusal.errCode == ErrorCode.settlementMismatch.rawValue && refusal.reqMsgid == request.msgid, "\(tier), \(name)")
            }
            #expect(screening.store.counts["received"] == 2 && screening.store.claimed == ["S1", "S2"], "\(tier)")
        }
    }

    @Test mutating func everyTierRefusesARecordItAlreadyHasWithItsOwnRule() throws {
        var county = Tier("370211", .county)
        _ = try county.screen(batch([record("S1")]))
        let twice = try #require(passed(try county.screen(batch([record("S1")]))))
        #expect(twice.rejects == ["S1 \(UploadRules.duplicate(at: .county).id)"])

        var city = Tier("370200", .city)
        _ = try city.screen(batch([record("S9")]))
        #expect(try #require(passed(try city.screen(batch([record("S9")])))).rejects == ["S9 \(UploadRules.duplicate(at: .city).id)"])

        // The tiers that store answer with the reject, and their rule names the tier.
        for (id, tier, dataTier) in [("370000", SettlementModel.Tier.province, DataTier.provincial), ("000000", .national, .national)] {
            var storing = Tier(id, tier)
            _ = try storing.screen(batch([record("S7")]))
            let again = try #require(try stored(try storing.screen(batch([record("S7")]))))
            #expect(again.accepted == 0 && again.rejects.map(\.ruleID) == [UploadRules.duplicate(at: dataTier).id])
            #expect(again.rejects.first?.tier == dataTier.rawValue && again.rejects.first?.admdvs == id)
        }
    }

    /// The tiers that store records keep the bytes that came, as long as there is one per record,
    /// a batch's together; the county, which numbers the records, never does.
    @Test mutating func aStoringTierKeepsEachRecordAsItCame() throws {
        let records = [record("S1"), record("S2"), record("S3")]
        // Marked so that a stored copy can be told from one encoded afresh (an unknown field).
        let asReceived: [ArraySlice<UInt8>] = try records.map { ArraySlice(try $0.serializedBytes() + [0xF8, 0x07, 0x01]) }
        var province = Tier("370000", .province)
        _ = try province.screen(batch([record("S2")]))   // S2 is a duplicate when the batch comes
        let request = batch(records)
        #expect(try stored(try province.screen(request, recordsAsReceived: asReceived))?.accepted == 2)
        #expect(province.store.storedBatches[request.msgid] == WireCodec.uploadInput(records: [asReceived[0], asReceived[2]], catalogVersion: ""),
                "the records that passed, as they came")

        var national = Tier("000000", .national)
        let again = batch(records)
        _ = try national.screen(again, recordsAsReceived: Array(asReceived.prefix(1)))
        #expect(national.store.storedBatches[again.msgid] == WireCodec.uploadInput(records: try records.map { try $0.serializedBytes() as [UInt8] }, catalogVersion: ""),
                "one slice for three records: encoded")

        var county = Tier("370211", .county)
        _ = try county.screen(batch(records), recordsAsReceived: asReceived)
        #expect(county.store.storedBatches.isEmpty)
    }

    /// A city passes up each record that passed as the bytes that came, and only those.
    @Test mutating func aCityPassesUpTheRecordsThatPassedAsTheyCame() throws {
        var city = Tier("370200", .city)
        _ = try city.screen(batch([record("S2")]))   // S2 is a duplicate when the batch comes
        let records = [record("S1"), record("S2"), record("S3")]
        // Marked so that a spliced copy can be told from one encoded afresh (an unknown field).
        let asReceived: [ArraySlice<UInt8>] = try records.map { ArraySlice(try $0.serializedBytes() + [0xF8, 0x07, 0x01]) }
        let screened = try city.screen(batch(records), recordsAsReceived: asReceived)
        #expect(try #require(passed(screened)).records == ["S1", "S3"])
        let expected = WireCodec.uploadInput(records: [asReceived[0], asReceived[2]], catalogVersion: Uploads.catalog.version)
        guard case .forward(let passing, let input, _, _) = screened.outcome else { return }
        #expect(input == expected && passing == 2)
    }

    /// The county passes its records up as they came too, with its batch_index added to their
    /// bytes: what the city decodes is each record numbered by its place in the hospital's batch,
    /// whatever number the hospital gave it.
    @Test mutating func aCountyPassesUpTheRecordsAsTheyCameNumbered() throws {
        var county = Tier("370211", .county)
        let records = [record("S0"), record("S1") { $0.batchIndex = 9 }, record("S2") { $0.fixmedinsCode = "" }, record("S3")]
        let asReceived: [ArraySlice<UInt8>] = try records.map { ArraySlice(try $0.serializedBytes() + [0xF8, 0x07, 0x01]) }
        let screened = try county.screen(batch(records), recordsAsReceived: asReceived)
        #expect(try #require(passed(screened)).records == ["S0", "S1", "S3"], "S2 breaks a rule")
        let forwarded = try #require(passing(screened)).records
        #expect(forwarded.map(\.batchIndex) == [0, 1, 3])
        #expect(forwarded.allSatisfy { $0.unknownFields.data == Data([0xF8, 0x07, 0x01]) }, "spliced, not encoded afresh")
        var unmarked = forwarded
        for index in unmarked.indices { unmarked[index].unknownFields = .init() }
        #expect(unmarked == [0, 1, 3].map { position in
            var numbered = records[position]
            numbered.batchIndex = Int32(position)
            return numbered
        }, "each record whole, numbered by its place")
    }

    /// A duplicate the province finds is the uploading county's to fix: an upload_reject ticket
    /// for its institution, one per cause, closed once it corrected and re-uploaded everything.
    @Test mutating func aRejectAboveTheCountyOpensATicketThatTheCorrectionCloses() throws {
        var province = Tier("370000", .province)
        let first = try #require(try stored(try province.screen(batch([record("S1"), record("S2")]))))
        #expect(first.accepted == 2 && first.rejected == 0)
        let queued = try #require(province.store.nationalOutbox.first, "what the province stored goes on to the national store")
        #expect(province.store.nationalOutbox.count == 1 && queued.records == 2)
        let storedInput = try UploadInput(serializedBytes: try #require(province.store.storedBatches[queued.msgid]))
        #expect(storedInput.records.map(\.setlID) == ["S1", "S2"])

        let duplicates = try province.screen(batch([record("S1"), record("S2")]))
        #expect(try stored(duplicates)?.rejected == 2)
        let ticket = try #require(province.store.tickets.values.first)
        #expect(province.store.tickets.count == 1 && ticket.kind == .uploadReject && ticket.occurrences == 2)
        #expect(ticket.subject == "H37021100002" && ticket.responsible == "370211" && ticket.code == UploadRules.duplicate(at: .provincial).id)
        #expect(duplicates.tickets.notes.count == 1 && duplicates.tickets.queuedMessages)
        let sentRecords = province.store.outbox.compactMap { $0.input }.filter { $0.event != "opened" }.flatMap(\.setlIds)
        #expect(sentRecords == ["S1", "S2"], "the county learns which records to have corrected")

        // One corrected record: the ticket stays open while the other waits.
        let fixOne = try province.screen(batch([record("S1-FIX") { $0.correctsSetlID = "S1" }]))
        #expect(fixOne.tickets.notes.isEmpty && province.store.tickets[ticket.ticketID]?.state == .open)
        let fixTwo = try province.screen(batch([record("S2-FIX") { $0.correctsSetlID = "S2" }]))
        #expect(fixTwo.tickets.notes == [.closed(ticketID: ticket.ticketID, kind: .uploadReject, responsible: "370211")])
        #expect(province.store.tickets[ticket.ticketID]?.state == .closed && province.store.counts["corrections"] == 2)
    }

    @Test mutating func theNationalStoreKeepsWhatPassedAndQueuesNothingFurther() throws {
        var national = Tier("000000", .national)
        let screened = try national.screen(batch([record("S1")]))
        #expect(try stored(screened)?.accepted == 1 && !screened.queuedForNational && national.store.nationalOutbox.isEmpty)
    }

    @Test mutating func aBatchWithoutItsInputIsRefused() throws {
        var county = Tier("370211", .county)
        var request = batch([])
        request.input = nil
        guard case .answer(let body) = try county.screen(request).outcome else { Issue.record("not answered"); return }
        #expect(try WireResponse(serializedBytes: body).errCode == ErrorCode.missingField.rawValue)
    }
}
