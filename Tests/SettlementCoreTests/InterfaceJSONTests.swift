import Foundation
import SettlementModel
import SwiftProtobuf
import Testing

/// What `settle` prints: the interface's shape and names, every field, zeros included.
@Suite struct InterfaceJSONTests {
    func parsed(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// Every field of the settlement output, as a fully filled message shows in protobuf's own
    /// mapping (which names them all only when none is at its default), is printed for an answer
    /// whose fields are all zero or empty: a field added to the proto and not here fails.
    @Test func everyFieldIsPrintedZerosIncluded() throws {
        var full = Settlenet_V1_SettlementOutput()
        full.setlID = "S"; full.mdtrtID = "M"; full.psnNo = "P"; full.insutype = "310"; full.setlTime = "T"
        full.medfeeSumamt = 1; full.fulamtOwnpayAmt = 1; full.overlmtSelfpay = 1; full.preselfpayAmt = 1
        full.inscpScpAmt = 1; full.actPayDedc = 1; full.hifpPay = 1; full.hifmiPay = 1; full.hifobPay = 1
        full.cvlservPay = 1; full.mafPay = 1; full.othPay = 1; full.fundPaySumamt = 1; full.psnPartAmt = 1
        full.acctPay = 1; full.psnCashPay = 1; full.hospPartAmt = 1; full.balc = 1; full.clrOptins = "C"
        full.clrWay = "W"; full.clrType = "T"; full.acctPayInFund = true
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        let protobufNames = Set(try parsed(try full.jsonString(options: options)).keys)

        var zero = WireResponse()
        zero.infcode = 0
        zero.output = .settlement(Settlenet_V1_SettlementOutput())
        let printed = try parsed(InterfaceJSON.render(zero))
        let setlinfo = try #require((printed["output"] as? [String: Any])?["setlinfo"] as? [String: Any])
        #expect(Set(setlinfo.keys) == protobufNames)
        #expect(setlinfo["fund_pay_sumamt"] as? Int == 0 && setlinfo["acct_pay_in_fund"] as? Bool == false)
        #expect(Set(printed.keys) == ["infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "warn_msg",
                                      "cainfo", "signtype", "req_msgid", "err_code", "output"])
        #expect(printed["infcode"] as? Int == 0 && printed["err_msg"] as? String == "")
    }

    @Test func aReversalIsPrintedWithEveryField() throws {
        var answer = WireResponse()
        answer.infcode = -1
        answer.errMsg = "FSI-no such settlement [SN-E2010]"
        answer.output = .reversal(Settlenet_V1_ReversalOutput())
        let printed = try parsed(InterfaceJSON.render(answer))
        let setlinfo = try #require((printed["output"] as? [String: Any])?["setlinfo"] as? [String: Any])
        #expect(Set(setlinfo.keys) == ["setl_id", "omsgid", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "balc"])
        #expect(printed["infcode"] as? Int == -1)
    }

    /// Quotes, backslashes and control characters are escaped; `/` is not.
    @Test func stringsAreEscapedAsJSONWantsAndNoMore() throws {
        #expect(JSONText.quoted("tcp://127.0.0.1:5555") == "\"tcp://127.0.0.1:5555\"")
        #expect(JSONText.quoted("a\"b\\c\nd\u{1}") == "\"a\\\"b\\\\c\\nd\\u0001\"")
        var answer = WireResponse()
        answer.errMsg = "FSI-\"quoted\"/slashed\t[x]"
        let printed = try parsed(InterfaceJSON.render(answer))
        #expect(printed["err_msg"] as? String == "FSI-\"quoted\"/slashed\t[x]")
        #expect(!InterfaceJSON.render(answer).contains("\\/"))
    }
}
