import Foundation
import SwiftProtobuf

/// An answer as the institution interface spells it, for people and scripts: every field of the
/// envelope and of its output, zeros and empty strings included, under the interface's own
/// names (`infcode`, `inf_refmsgid`, `output.setlinfo.fund_pay_sumamt`, ...), in the interface's
/// order. proto3's JSON mapping leaves out every field at its default, so a fund that pays
/// nothing had no `fund_pay_sumamt` at all.
public enum InterfaceJSON {
    /// An ordered JSON value: objects keep their keys in the order given.
    public indirect enum Value: Equatable, Sendable {
        case string(String), int(Int64), bool(Bool), object([(String, Value)]), raw(String)

        public static func == (a: Value, b: Value) -> Bool { a.text(indent: 0) == b.text(indent: 0) }
    }

    /// The answer as one JSON object, pretty-printed (two spaces), no `/` escaped.
    public static func render(_ response: WireResponse) -> String {
        value(of: response).text(indent: 0)
    }

    public static func value(of response: WireResponse) -> Value {
        var fields: [(String, Value)] = [
            ("infcode", .int(Int64(response.infcode))),
            ("inf_refmsgid", .string(response.infRefmsgid)),
            ("refmsg_time", .string(response.refmsgTime)),
            ("respond_time", .string(response.respondTime)),
            ("err_msg", .string(response.errMsg)),
            ("warn_msg", .string(response.warnMsg)),
            ("cainfo", .string(response.cainfo)),
            ("signtype", .string(response.signtype)),
            // SettleNet's extensions (docs/PROTOCOL.md).
            ("req_msgid", .string(response.reqMsgid)),
            ("err_code", .string(response.errCode)),
        ]
        switch response.output {
        case .settlement(let output)?: fields.append(("output", .object([("setlinfo", settlement(output))])))
        case .reversal(let output)?: fields.append(("output", .object([("setlinfo", reversal(output))])))
        case let other?:
            // Not an answer to a settlement: the protobuf mapping's own JSON.
            var options = JSONEncodingOptions()
            options.preserveProtoFieldNames = true
            options.alwaysPrintInt64sAsNumbers = true
            var bare = WireResponse()
            bare.output = other
            let json = (try? bare.jsonString(options: options)) ?? "{}"
            fields.append(("output", .raw(json)))
        case nil: fields.append(("output", .object([])))
        }
        return .object(fields)
    }

    static func settlement(_ output: Settlenet_V1_SettlementOutput) -> Value {
        .object([
            ("setl_id", .string(output.setlID)), ("mdtrt_id", .string(output.mdtrtID)), ("psn_no", .string(output.psnNo)),
            ("insutype", .string(output.insutype)), ("setl_time", .string(output.setlTime)),
            ("medfee_sumamt", .int(output.medfeeSumamt)), ("fulamt_ownpay_amt", .int(output.fulamtOwnpayAmt)),
            ("overlmt_selfpay", .int(output.overlmtSelfpay)), ("preselfpay_amt", .int(output.preselfpayAmt)),
            ("inscp_scp_amt", .int(output.inscpScpAmt)), ("act_pay_dedc", .int(output.actPayDedc)),
            ("hifp_pay", .int(output.hifpPay)), ("hifmi_pay", .int(output.hifmiPay)), ("hifob_pay", .int(output.hifobPay)),
            ("cvlserv_pay", .int(output.cvlservPay)), ("maf_pay", .int(output.mafPay)), ("oth_pay", .int(output.othPay)),
            ("fund_pay_sumamt", .int(output.fundPaySumamt)), ("psn_part_amt", .int(output.psnPartAmt)),
            ("acct_pay", .int(output.acctPay)), ("psn_cash_pay", .int(output.psnCashPay)),
            ("hosp_part_amt", .int(output.hospPartAmt)), ("balc", .int(output.balc)),
            ("clr_optins", .string(output.clrOptins)), ("clr_way", .string(output.clrWay)), ("clr_type", .string(output.clrType)),
            ("acct_pay_in_fund", .bool(output.acctPayInFund)),
        ])
    }

    static func reversal(_ output: Settlenet_V1_ReversalOutput) -> Value {
        .object([
            ("setl_id", .string(output.setlID)), ("omsgid", .string(output.omsgid)),
            ("medfee_sumamt", .int(output.medfeeSumamt)), ("fund_pay_sumamt", .int(output.fundPaySumamt)),
            ("acct_pay", .int(output.acctPay)), ("balc", .int(output.balc)),
        ])
    }
}

extension InterfaceJSON.Value {
    func text(indent: Int) -> String {
        switch self {
        case .string(let string): return JSONText.quoted(string)
        case .int(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .raw(let json): return json
        case .object(let fields):
            guard !fields.isEmpty else { return "{}" }
            let inner = String(repeating: "  ", count: indent + 1)
            let lines = fields.map { "\(inner)\(JSONText.quoted($0.0)): \($0.1.text(indent: indent + 1))" }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + String(repeating: "  ", count: indent) + "}"
        }
    }
}

/// JSON's string syntax (RFC 8259): quotes, backslashes and control characters escaped, and
/// nothing else, `/` included.
public enum JSONText {
    public static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let control where control.value < 0x20:
                let hex = String(control.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension JSONEncoder {
    /// The encoder for every JSON SettleNet writes: keys sorted, so files diff and replay
    /// byte for byte, and `/` left alone (Foundation escapes it by default: `tcp:\/\/127...`).
    /// `pretty`: indented, for people and reports.
    public static func settlenet(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
