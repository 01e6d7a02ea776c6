/// Wire message types, named for the domain rather than the generator.
public typealias WireRequest = Settlenet_V1_Request
public typealias WireResponse = Settlenet_V1_Response
public typealias SettlementInput = Settlenet_V1_SettlementInput
public typealias SettlementOutput = Settlenet_V1_SettlementOutput
public typealias ReversalInput = Settlenet_V1_ReversalInput
public typealias ReversalOutput = Settlenet_V1_ReversalOutput
public typealias SignInInput = Settlenet_V1_SignInInput
public typealias SignInOutput = Settlenet_V1_SignInOutput
public typealias CorrectionInput = Settlenet_V1_CorrectionInput
public typealias CorrectionOutput = Settlenet_V1_CorrectionOutput
public typealias TicketInput = Settlenet_V1_TicketInput
public typealias TicketOutput = Settlenet_V1_TicketOutput

/// The transaction codes (infno) SettleNet's nodes serve.
public enum TransactionCode: String, CaseIterable, Sendable {
    case signIn = "9001"
    case catalogDownload = "1301"
    case upload = "4101"
    case correction = "2601"
    case ticket = "9101"
    case outpatientSettlement = "2207"
    case outpatientReversal = "2208"
    case inpatientSettlement = "2304"
    case inpatientReversal = "2305"

    /// Compared with each code in turn, the commonest first: the synthesized init searched a
    /// table of every case, about 500 instructions on every message a node reads (callgrind);
    /// equal small strings compare in a few.
    public init?(rawValue: String) {
        if rawValue == "2207" { self = .outpatientSettlement }
        else if rawValue == "2304" { self = .inpatientSettlement }
        else if rawValue == "4101" { self = .upload }
        else if rawValue == "2208" { self = .outpatientReversal }
        else if rawValue == "2305" { self = .inpatientReversal }
        else if rawValue == "2601" { self = .correction }
        else if rawValue == "9101" { self = .ticket }
        else if rawValue == "9001" { self = .signIn }
        else if rawValue == "1301" { self = .catalogDownload }
        else { return nil }
    }

    public var isSettlement: Bool { self == .outpatientSettlement || self == .inpatientSettlement }
    public var isReversal: Bool { self == .outpatientReversal || self == .inpatientReversal }
    public var isInpatient: Bool { self == .inpatientSettlement || self == .inpatientReversal }

    /// The reversal code that undoes this settlement code.
    public var reversalCode: TransactionCode? {
        switch self {
        case .outpatientSettlement: .outpatientReversal
        case .inpatientSettlement: .inpatientReversal
        default: nil
        }
    }

    /// The settlement code a reversal code undoes.
    public var settlementCode: TransactionCode? {
        switch self {
        case .outpatientReversal: .outpatientSettlement
        case .inpatientReversal: .inpatientSettlement
        default: nil
        }
    }

    /// Moves money or takes it back: what a tier must never lose track of.
    public var movesMoney: Bool { isSettlement || isReversal || self == .correction }
}

/// Stable error codes carried in `err_msg` as `FSI-<message>[<code>]` and alone in `err_code`.
/// Definite: the operation certainly did not happen. Indefinite: it may have happened and the
/// caller must resolve it (query or correction reversal). docs/ERRORS.md lists them.
public enum ErrorCode: String, CaseIterable, Sendable {
    // Malformed input: definite.
    case malformedFrame = "SN-E1001"
    case malformedMessage = "SN-E1002"
    case unknownTransaction = "SN-E1003"
    case missingField = "SN-E1004"
    case badDivision = "SN-E1005"
    case badAmount = "SN-E1006"
    case oversizeMessage = "SN-E1007"
    case wrongNode = "SN-E1008"
    case unknownInstitution = "SN-E1009"
    case institutionNotAuthenticated = "SN-E1010"
    // Business refusals at the insured county: definite.
    case unknownPerson = "SN-E2001"
    case notFiledOffsite = "SN-E2002"
    case unknownSettlement = "SN-E2003"
    case settlementMismatch = "SN-E2004"
    case cancelledByCorrection = "SN-E2006"   // definite: the settlement was undone by a 2601
    // Network conditions.
    case unreachable = "SN-E3001"        // definite: the next hop was not connected, nothing sent
    case timeout = "SN-E3002"            // indefinite: sent, no answer in time
    case shuttingDown = "SN-E3003"       // definite: the node is draining and took nothing new
    case busy = "SN-E3004"               // definite: the pending table is full
    case catalogNotLoaded = "SN-E3005"   // definite: the node has not downloaded the catalog yet
    case deadlineTooShort = "SN-E3006"   // definite: too little time left to forward; not sent
    case rateLimited = "SN-E3007"        // definite: the client sent beyond its share; not accepted
    case diskFull = "SN-E3008"           // definite: the node's ledger cannot grow; nothing new recorded

    public var message: String {
        switch self {
        case .malformedFrame: "malformed frame: expected [empty, \"req\"|\"rsp\", protobuf body]"
        case .malformedMessage: "message body is not a valid settlenet.v1 protobuf"
        case .unknownTransaction: "unknown or unsupported transaction code infno"
        case .missingField: "a required field is missing"
        case .badDivision: "division code unknown to the topology"
        case .badAmount: "amounts are negative or do not add up"
        case .oversizeMessage: "message larger than the node accepts"
        case .wrongNode: "request sent to a node that does not serve that place of treatment"
        case .unknownInstitution: "institution not registered at this county"
        case .institutionNotAuthenticated: "fixmedins_code is not the institution this connection's key belongs to"
        case .unknownPerson: "person not found at the insured place"
        case .notFiledOffsite: "person not filed for off-site care"
        case .unknownSettlement: "settlement to reverse not found"
        case .settlementMismatch: "reversal does not match the original settlement"
        case .cancelledByCorrection: "settlement not in effect: its unknown outcome was corrected (2601)"
        case .unreachable: "next hop not reachable; request not delivered"
        case .timeout: "no answer from the next hop in time; outcome unknown"
        case .shuttingDown: "node is shutting down; request not accepted"
        case .busy: "node busy; request not accepted"
        case .catalogNotLoaded: "catalog not downloaded yet; upload not accepted, retry later"
        case .deadlineTooShort: "deadline too short to forward; request not sent"
        case .rateLimited: "client over its request rate; request not accepted, retry later"
        case .diskFull: "node's disk is full; request not accepted, retry later"
        }
    }

    /// True when the operation certainly did not happen (safe to retry with a new msgid).
    public var isDefinite: Bool { self != .timeout }

    /// A refusal decided on the way, before the insured county decided anything, and not stored:
    /// it speaks for the attempt it answers only. The same msgid asked again (a client that never
    /// heard this answer, its node having crashed before sending it) may still get through and be
    /// decided (docs/ERRORS.md, section 2).
    public var refusesOnlyTheAttempt: Bool {
        switch self {
        case .unreachable, .shuttingDown, .busy, .catalogNotLoaded, .deadlineTooShort, .rateLimited, .diskFull: true
        default: false
        }
    }

    /// The real interface's error text: `FSI-<message>[<code>]`, with an optional detail
    /// (which field, which node). Details never carry personal data.
    public func errMsg(detail: String? = nil) -> String {
        if let detail, !detail.isEmpty { return "FSI-\(message): \(detail)[\(rawValue)]" }
        return "FSI-\(message)[\(rawValue)]"
    }
}

/// Masks personal identifiers for logs and reports: the division prefix stays, the rest is hidden.
public enum PersonalData {
    public static func mask(_ psnNo: String) -> String {
        let keep = psnNo.prefix(6)
        return keep + String(repeating: "*", count: max(0, psnNo.count - keep.count))
    }
}
