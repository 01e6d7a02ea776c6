import SettlementModel

/// A node's answers: each gets this node's response envelope (`inf_refmsgid` numbered in turn,
/// the request's receive time and the answer time). One per node, shared by its machine and
/// its desks, so that no two answers of a node carry the same `inf_refmsgid`.
public struct ResponseFactory: Sendable {
    public let division: DivisionCode
    private var serial: UInt64 = 0

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
        serial &+= 1
        var response = WireResponse()
        response.reqMsgid = requestMsgid
        response.infRefmsgid = MessageID.response(division: division.value, unixMs: nowMs, serial: serial)
        response.refmsgTime = CivilTime(unixMs: receivedAtMs).compactMillis
        response.respondTime = CivilTime(unixMs: nowMs).compactMillis
        return response
    }
}
