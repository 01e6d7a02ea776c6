import Foundation
@testable import Persistence
import SettlementCore
import SettlementModel
import Testing

/// The transit index keys msgids by a 64-bit hash and checks every hit against the log, so two
/// msgids with the same hash must still be two transits. Real collisions are too rare to meet,
/// so here every msgid hashes alike.
@Suite struct TransitIndexTests {
    func meta(_ msgid: String, reversing omsgid: String = "") -> RequestMeta {
        var meta = RequestMeta(omsgid: msgid, infno: omsgid.isEmpty ? "2207" : "2208", treatment: "370211", insured: "410102",
                               fixmedinsCode: "H37021100001")
        meta.omsgid = omsgid
        meta.isReversal = !omsgid.isEmpty
        meta.psnNo = "P1"
        return meta
    }

    func answer(setlID: String = "") -> WireResponse {
        var response = WireResponse()
        response.infcode = 0
        if !setlID.isEmpty {
            var out = SettlementOutput()
            out.setlID = setlID
            response.output = .settlement(out)
        }
        return response
    }

    @Test(arguments: [true, false])
    func msgidsWhoseHashesCollideAreStillTransitsOfTheirOwn(collide: Bool) throws {
        let directory = try makeTemporaryDirectory("index")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key: (String) -> UInt64 = collide ? { (_: String) -> UInt64 in 7 } : { TransitIndex.xxh64($0) }
        let ledger = try Ledger(path: "\(directory)/ledger.sqlite", transitKey: key)
        try ledger.write { tx in
            try tx.recordTransit(TransitRecord(inFlight: meta("M1"), nowMs: 1))
            try tx.recordTransit(TransitRecord(request: meta("M2"), response: answer(setlID: "S2"), role: .origin, nowMs: 1))
            try tx.recordTransit(TransitRecord(inFlight: meta("M3"), nowMs: 1))
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try ledger.write { tx in
                try tx.recordTransit(TransitRecord(inFlight: meta("M4"), nowMs: 2))
                throw Boom()
            }
        }
        try ledger.write { tx in
            // M1's answer replaces its journaled unknown; M2's reversal marks M2 and nothing else.
            try tx.recordTransit(TransitRecord(request: meta("M1"), response: answer(setlID: "S1"), role: .origin, nowMs: 3))
            try tx.recordTransit(TransitRecord(request: meta("R2", reversing: "M2"), response: answer(), role: .origin, nowMs: 3))
            try tx.recordTransit(TransitRecord(request: meta("M4"), response: answer(setlID: "S4"), role: .origin, nowMs: 3))
        }
        for reopened in [false, true] {
            let view: Ledger = reopened ? try Ledger(path: ledger.path, transitKey: key) : ledger
            var states: [String?] = []
            for msgid in ["M1", "M2", "M3", "M4", "R2"] { states.append(try view.read { try $0.transit(msgid: msgid) }?.state) }
            // M3's answer lands at the end of the first pass.
            #expect(states == ["settled", "reversed", reopened ? "settled" : "unknown", "settled", "reversed"], "reopened: \(reopened)")
            // The reopened index tells the transits apart too: a late timeout of M1 replaces nothing, M3's answer lands.
            var timeout = WireResponse()
            timeout.infcode = -1
            timeout.errCode = ErrorCode.timeout.rawValue
            try view.write { tx in
                try tx.recordTransit(TransitRecord(request: meta("M1"), response: timeout, role: .origin, nowMs: 4))
                try tx.recordTransit(TransitRecord(request: meta("M3"), response: answer(setlID: "S3"), role: .origin, nowMs: 4))
            }
            #expect(try view.read { try $0.transit(msgid: "M1") }?.setlID == "S1")
            #expect(try view.read { try $0.transit(msgid: "M3") }?.setlID == "S3")
        }
    }
}
