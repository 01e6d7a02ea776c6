import Foundation
import GRDB
import Persistence
import SettlementCore
import SettlementModel
import Testing

/// The writer keeps the latest image of each transit still unknown in memory, to write the
/// next image from it without reading the log back. Whatever it keeps must be what the log
/// holds: the same steps give the same log whether the ledger stays open (images from memory)
/// or is reopened before every step (images from the log).
@Suite struct TransitImageTests {
    func request(_ msgid: String, infno: String = "2207", omsgid: String = "") -> WireRequest {
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        var request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 12_345), inpatient: false, nowMs: 0)
        request.msgid = msgid
        request.infno = infno
        if !omsgid.isEmpty {
            var input = ReversalInput()
            input.omsgid = omsgid
            input.psnNo = "41010200000000000001"
            request.input = .reversal(input)
        }
        return request
    }

    func answer(infcode: Int32, errCode: String = "", setlID: String = "") -> WireResponse {
        var response = WireResponse()
        response.infcode = infcode
        response.errCode = errCode
        if infcode == 0 {
            var out = SettlementOutput()
            out.setlID = setlID
            out.medfeeSumamt = 12_345
            out.fundPaySumamt = 2_000
            out.acctPay = 345
            out.psnCashPay = 10_000
            response.output = .settlement(out)
        }
        return response
    }

    struct RolledBack: Error {}

    /// Journaled requests, answers for them (settled, refused, timed out and then settled), a
    /// reversal left unknown and the settlement it concerns resolved, and a journaled request
    /// rolled back (its seq is then used again by the next append).
    var steps: [(LedgerTransaction) throws -> Void] {
        let settled = answer(infcode: 0, setlID: "S1")
        let refused = answer(infcode: -1, errCode: ErrorCode.badAmount.rawValue)
        let timeout = answer(infcode: -1, errCode: ErrorCode.timeout.rawValue)
        return [
            { tx in
                for msgid in ["M1", "M2", "M3", "M4"] {
                    try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request(msgid)), nowMs: 1))
                }
            },
            { tx in
                try tx.recordTransit(TransitRecord(request: RequestMeta(request("M1")), response: settled, role: .origin, nowMs: 2))
                try tx.recordTransit(TransitRecord(request: RequestMeta(request("M2")), response: refused, role: .origin, nowMs: 2))
                try tx.recordTransit(TransitRecord(request: RequestMeta(request("M3")), response: timeout, role: .origin, nowMs: 2))
            },
            { tx in
                try tx.recordTransit(TransitRecord(request: RequestMeta(request("M3")), response: settled, role: .origin, nowMs: 3))
                try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request("R4", infno: "2208", omsgid: "M4")), nowMs: 3))
            },
            { tx in
                var final = TransitRecord(request: RequestMeta(request("M4")), response: self.answer(infcode: -1,
                                          errCode: ErrorCode.cancelledByCorrection.rawValue), role: .origin, nowMs: 4)
                final.state = .reversed
                try tx.recordTransit(final, resolution: true)
            },
            { tx in
                try tx.recordTransit(TransitRecord(inFlight: RequestMeta(self.request("X1")), nowMs: 5))
                throw RolledBack()
            },
            { tx in
                // Y1 takes X1's seq; its late timeout must find it settled and change nothing.
                try tx.recordTransit(TransitRecord(request: RequestMeta(self.request("Y1")), response: settled, role: .relay, nowMs: 6))
            },
            { tx in
                try tx.recordTransit(TransitRecord(request: RequestMeta(self.request("Y1")), response: timeout, role: .relay, nowMs: 7))
                try tx.recordTransit(TransitRecord(inFlight: RequestMeta(self.request("X2")), nowMs: 7))
            },
            { tx in
                try tx.recordTransit(TransitRecord(request: RequestMeta(self.request("X2")), response: settled, role: .origin, nowMs: 8))
            },
        ]
    }

    func log(of path: String) throws -> [Row] {
        try DatabaseQueue(path: path).read { try Row.fetchAll($0, sql: "SELECT * FROM transit_log ORDER BY seq") }
    }

    @Test func theImagesKeptInMemoryAreTheLogs() throws {
        let directory = try makeTemporaryDirectory("transit-images")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func run(_ step: (LedgerTransaction) throws -> Void, on ledger: Ledger) throws {
            do { try ledger.write(step) } catch is RolledBack {}
        }
        let open = try Ledger(path: "\(directory)/open.sqlite")
        for step in steps { try run(step, on: open) }
        let reopenedPath = "\(directory)/reopened.sqlite"
        for step in steps { try run(step, on: try Ledger(path: reopenedPath)) }
        let kept = try log(of: open.path), read = try log(of: reopenedPath)
        #expect(kept.count >= 10, "the steps append every image: \(kept.count)")
        #expect(kept == read)
        let states = try open.read { tx in
            try ["M1", "M2", "M3", "M4", "R4", "X1", "Y1", "X2"].map { try tx.transit(msgid: $0)?.state ?? "-" }
        }
        #expect(states == ["settled", "refused", "settled", "reversed", "reversed", "-", "settled", "settled"])
    }
}
