import SettlementModel

/// A node's answers: each gets this node's response envelope (`inf_refmsgid` numbered in turn,
/// the request's receive time and the answer time). One per node, shared by its machine and
/// its desks, so that no two answers of a node carry the same `inf_refmsgid`.
///
/// `inf_refmsgid` is the division, the second and a 10-digit serial. The serial starts each
/// second at the millisecond of its first answer times 10^7, and counts on from there. A node
/// restarted within the same second (faster than a second, as `cluster restart` can be) starts
/// at a later millisecond, above every serial it gave before the restart: no serial is given
/// twice, with nothing to remember across the restart. (Counting from 1 per process gave the
/// same `inf_refmsgid` again after such a restart; `RestartTests` found it in CI.)
public struct ResponseFactory: Sendable {
    public let division: DivisionCode
    private var serial: UInt64 = 0
    /// The second the last answer was numbered in.
    private var second: Int64 = .min

    public init(division: DivisionCode) { self.division = division }

    /// A success answer.
    public mutating func success(requestMsgid: String, receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        var response = envelope(requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.infcode = 0
        return response
    }

    /// A failure answer: infcode -1, err_msg in the interface's FSI format.
    public mutating func error(_ code: ErrorCode, detail: String? = nil, requestMsgid: String,
                               receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        var response = envelope(requestMsgid: requestMsgid, receivedAtMs: receivedAtMs, nowMs: nowMs)
        response.infcode = -1
        response.errMsg = code.errMsg(detail: detail)
        response.errCode = code.rawValue
        return response
    }

    private mutating func envelope(requestMsgid: String, receivedAtMs: Int64, nowMs: Int64) -> WireResponse {
        let thisSecond = nowMs.floorDividedBySecond
        if thisSecond > second {
            second = thisSecond
            serial = UInt64(nowMs - thisSecond * 1_000) * 10_000_000   // 10^7 answers a millisecond of the second
        }
        serial &+= 1
        var response = WireResponse()
        response.reqMsgid = requestMsgid
        response.infRefmsgid = MessageID.response(division: division.value, unixMs: nowMs, serial: serial)
        response.refmsgTime = CivilTime(unixMs: receivedAtMs).compactMillis
        response.respondTime = CivilTime(unixMs: nowMs).compactMillis
        return response
    }
}

extension Int64 {
    /// The whole second a millisecond instant falls in (rounded down, also before 1970).
    fileprivate var floorDividedBySecond: Int64 { self >= 0 ? self / 1_000 : (self - 999) / 1_000 }
}
