import SettlementModel

/// The bodies of what a node received in its current turn, as they arrived. Most of what a node
/// sends is something it received: a request going on with a smaller budget, an answer going
/// back unchanged. Those leave as the bytes that came in (the budget replaced in place) instead
/// of being encoded again, which was a sixth of a relay's time.
///
/// Whatever the machine changed beyond the budget is encoded as usual: what is sent is always
/// the message the machine decided on.
struct PassThrough {
    /// Each request with the budget it came with (its `request.budgetMs` is set to what is
    /// compared with it: see `body(of:)`).
    private var requests: [String: (request: WireRequest, body: [UInt8], budgetMs: Int32)] = [:]
    private var responses: [String: (response: WireResponse, body: [UInt8])] = [:]
    /// Messages sent as received since the node started (in the status file).
    private(set) var passed: Int64 = 0

    /// Upload batches received this turn, by msgid: their records are stored as they came.
    private var uploads: [String: [UInt8]] = [:]
    /// What this tier passes up of the upload batches it screened, already encoded, by msgid:
    /// spliced into the request, which carries no records of its own (`NodeMachine.forwardUpload`).
    private var encodedUploads: [String: [UInt8]] = [:]

    mutating func received(_ request: WireRequest, body: [UInt8]) {
        if case .upload? = request.input { uploads[request.msgid] = body }
        // An upload batch goes on with only the records that passed, and comparing one of
        // thousands of records costs more than encoding it: never sent as received.
        guard body.count <= Self.largestKept else { return }
        requests[request.msgid] = (request, body, request.budgetMs)
    }

    mutating func received(_ response: WireResponse, body: [UInt8]) {
        guard body.count <= Self.largestKept else { return }
        responses[response.reqMsgid] = (response, body)
    }

    /// Settlements, reversals and their answers take a few hundred bytes; upload batches and
    /// their answers with rejects take kilobytes to megabytes.
    static let largestKept = 4_096

    /// A new turn: what the last one received is not sent any more (its round is recorded).
    /// `roundsAwaitSync`: the uploads screened by rounds still waiting for their sync go up
    /// when it ends, so what they pass up is kept until no round waits.
    mutating func forget(roundsAwaitSync: Bool) {
        if !requests.isEmpty { requests.removeAll(keepingCapacity: true) }
        if !responses.isEmpty { responses.removeAll(keepingCapacity: true) }
        if !uploads.isEmpty { uploads.removeAll() }
        if !encodedUploads.isEmpty && !roundsAwaitSync { encodedUploads.removeAll() }
    }

    /// The upload input this tier passes up for the batch `msgid`, as encoded when screened.
    mutating func encodedUpload(_ msgid: String, input: [UInt8]) {
        encodedUploads[msgid] = input
    }

    /// The body of `request`, an upload going up, with its input spliced in as encoded when its
    /// batch was screened; nil if this turn screened no such batch.
    func uploadBody(of request: WireRequest) -> [UInt8]? {
        guard case .upload? = request.input, let input = encodedUploads[request.msgid] else { return nil }
        return try? WireCodec.uploadRequestBody(envelope: request, input: input)
    }

    /// Each record of the upload batch `msgid` received this turn, as the bytes that came.
    func uploadRecords(of msgid: String) -> [ArraySlice<UInt8>]? {
        guard let body = uploads[msgid], let ranges = WireCodec.uploadRecordRanges(in: body) else { return nil }
        return ranges.map { body[$0] }
    }

    /// The body of `request` if it is one received this turn with at most its budget changed.
    mutating func body(of request: WireRequest) -> [UInt8]? {
        guard let index = requests.index(forKey: request.msgid) else { return nil }
        // The kept copy takes the budget compared with, in place: it is usually the only one
        // left, and a copy of the request with the old budget set cost as much as comparing.
        requests.values[index].request.budgetMs = request.budgetMs
        let kept = requests.values[index]
        guard request == kept.request else { return nil }
        if request.budgetMs == kept.budgetMs {
            passed += 1
            return kept.body
        }
        guard let body = WireCodec.replacingBudget(in: kept.body, with: request.budgetMs) else { return nil }
        passed += 1
        return body
    }

    /// The body of `response` if it is one received this turn, unchanged.
    mutating func body(of response: WireResponse) -> [UInt8]? {
        guard let kept = responses[response.reqMsgid], kept.response == response else { return nil }
        passed += 1
        return kept.body
    }
}
