import SettlementModel

/// Requests as a hospital sends them, for tests of the codec and of what nodes pass on.
public enum SampleRequests {
    /// An outpatient settlement (2207) from 370211 for a person insured in 410102.
    public static func settlement(budgetMs: Int32) -> WireRequest {
        var request = WireRequest()
        request.infno = "2207"
        request.msgid = "H37021100001202611230000000001"
        request.mdtrtareaAdmvs = "370211"
        request.insuplcAdmdvs = "410102"
        request.fixmedinsCode = "H37021100001"
        request.infTime = "2026-11-23 00:00:00"
        request.budgetMs = budgetMs
        var input = SettlementInput()
        input.psnNo = "41010200000000000001"
        input.medfeeSumamt = 12_345
        request.settlement = input
        return request
    }
}
