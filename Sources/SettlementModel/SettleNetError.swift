/// The error of SettleNet's own code: which part failed, what happened, about what (a node or a
/// file), what to do about it, and the error underneath. Printed, it is one line for an operator:
/// `ledger /data/nodes/370211/ledger.sqlite: cannot open: disk I/O error`.
public struct SettleNetError: Error, CustomStringConvertible, Sendable {
    /// The part of SettleNet that failed, for a caller that handles some failures itself.
    public enum Kind: String, Sendable {
        case node, cluster, keys, ledger, bench, export, topology, simulation
        /// A command line that cannot be carried out (the CLI prints it and exits non-zero).
        case command
    }

    public var kind: Kind
    public var message: String
    /// The node, file or directory concerned.
    public var subject: String?
    /// What the operator can do about it.
    public var advice: String?
    /// The error underneath, as it described itself.
    public var cause: String?
    /// Another process holds (or took meanwhile) a port of the cluster: another base port may do.
    public var isPortConflict: Bool

    public init(_ kind: Kind, _ message: String, subject: String? = nil, advice: String? = nil, cause: (any Error)? = nil,
                isPortConflict: Bool = false) {
        self.kind = kind
        self.message = message
        self.subject = subject
        self.advice = advice
        self.cause = cause.map { "\($0)" }
        self.isPortConflict = isPortConflict
    }

    public var description: String {
        var text = subject.map { "\($0): " } ?? ""
        text += message
        if let cause { text += ": \(cause)" }
        if let advice { text += " (\(advice))" }
        return text
    }
}
