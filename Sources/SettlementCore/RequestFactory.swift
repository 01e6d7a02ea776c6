import SettlementModel

/// Builds the requests a hospital sends, in the interface's envelope.
public struct RequestFactory: Sendable {
    public let institution: String
    public let institutionName: String
    public let treatment: DivisionCode
    private var sequence: Int

    /// `firstSequence` offsets the 4-digit msgid sequence so that clients started in the same
    /// second do not collide.
    public init(institution: String, institutionName: String = "", treatment: DivisionCode, firstSequence: Int = 0) {
        self.institution = institution
        self.institutionName = institutionName
        self.treatment = treatment
        self.sequence = firstSequence
    }

    /// The envelope of this institution's next request, with its next msgid; the caller fills
    /// in the input (uploads, ticket events).
    public mutating func envelope(_ code: TransactionCode, insured: DivisionCode, nowMs: Int64) -> WireRequest {
        sequence += 1
        var request = WireRequest()
        request.infno = code.rawValue
        request.msgid = MessageID.request(institution: institution, unixMs: nowMs, sequence: sequence)
        request.mdtrtareaAdmvs = treatment.value
        request.insuplcAdmdvs = insured.value
        request.infver = "V1.0"
        request.opterType = "1"
        request.opter = "settlenet"
        request.opterName = "settlenet"
        request.infTime = CivilTime(unixMs: nowMs).readable
        request.fixmedinsCode = institution
        request.fixmedinsName = institutionName
        return request
    }

    /// An outpatient (2207) or inpatient (2304) settlement of `bill` for `psnNo`.
    public mutating func settlement(psnNo: String, insured: DivisionCode, bill: Bill, inpatient: Bool,
                                    useAccount: Bool = true, nowMs: Int64) -> WireRequest {
        var request = envelope(inpatient ? .inpatientSettlement : .outpatientSettlement, insured: insured, nowMs: nowMs)
        var input = SettlementInput()
        input.psnNo = psnNo
        input.mdtrtID = "MDT" + request.msgid.suffix(18)
        input.medType = inpatient ? "21" : "11"
        input.medfeeSumamt = bill.medfeeSumamt
        input.fulamtOwnpayAmt = bill.fulamtOwnpayAmt
        input.overlmtSelfpay = bill.overlmtSelfpay
        input.preselfpayAmt = bill.preselfpayAmt
        input.inscpScpAmt = bill.inscpScpAmt
        input.acctUsedFlag = useAccount
        request.input = .settlement(input)
        return request
    }

    /// A reversal (2208, or 2305 for inpatient) of the settlement sent as `omsgid`.
    public mutating func reversal(omsgid: String, psnNo: String, insured: DivisionCode, inpatient: Bool,
                                  nowMs: Int64) -> WireRequest {
        var request = envelope(inpatient ? .inpatientReversal : .outpatientReversal, insured: insured, nowMs: nowMs)
        var input = ReversalInput()
        input.omsgid = omsgid
        input.psnNo = psnNo
        request.input = .reversal(input)
        return request
    }
}

/// The msgid sequences of many institutions, for a client acting as all their hospitals (the
/// scenario runner, the benchmark): each request from an institution gets the next number.
public struct InstitutionSequences: Sendable {
    private var next: [String: Int] = [:]

    public init() {}

    /// A factory for `institution`'s next request, its sequence advanced by one.
    public mutating func factory(for institution: String, treatment: DivisionCode) -> RequestFactory {
        let sequence = next[institution, default: 0]
        next[institution] = sequence + 1
        return RequestFactory(institution: institution, treatment: treatment, firstSequence: sequence)
    }

    /// An envelope from `institution` to its own county.
    public mutating func hospitalRequest(_ code: TransactionCode, institution: String, county: DivisionCode, nowMs: Int64) -> WireRequest {
        var factory = factory(for: institution, treatment: county)
        return factory.envelope(code, insured: county, nowMs: nowMs)
    }
}
