/// The verdict as people read it: one line per check, then what is wrong, by msgid.
public enum ReconciliationText {
    /// At most this many msgids are listed per kind of problem (all of them are in the JSON).
    public static let listLimit = 20

    public static func verdict(_ r: ReconciliationResult) -> String {
        func line(_ ok: Bool, _ text: String) -> String { "\(ok ? "PASS" : "FAIL")  \(text)" }
        var lines = [
            "reconciliation: \(r.passed ? "PASS" : "FAIL")",
            line(r.lost.isEmpty, "settlements checked \(r.checked), lost \(r.lost.count)"),
            line(r.duplicated.isEmpty, "duplicated \(r.duplicated.count)"),
            line(r.mismatched.isEmpty, "mismatched between tiers \(r.mismatched.count)"),
            line(r.unresolved.isEmpty, "unresolved \(r.unresolved.count)"),
            line(r.balancesWrong.isEmpty, "person balances checked \(r.balancesChecked), wrong \(r.balancesWrong.count)"),
            line(r.clearingBalanced, "cross-province clearing: \(r.clearingPositions.count) provinces, "
                + (r.clearingBalanced ? "net positions sum to 0 and every province confirms" : "\(r.clearingDisputes.count) dispute(s)")),
            line(r.uploadsBalanced, "uploads: received = accepted + rejected everywhere, national store complete"),
        ]
        for (name, items) in r.problemLists where !items.isEmpty {
            for item in items.prefix(listLimit) { lines.append("  \(name): \(item)") }
            if items.count > listLimit { lines.append("  \(name): ... and \(items.count - listLimit) more (--json lists all)") }
        }
        return lines.joined(separator: "\n")
    }
}
