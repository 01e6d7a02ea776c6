import SettlementCore
import SettlementModel

/// The minimal topology's tree, built by hand so these tests need no files.
enum Minimal {
    static let parents: [(String, Tier, String?)] = [
        ("000000", .national, nil),
        ("370000", .province, "000000"), ("410000", .province, "000000"),
        ("370100", .city, "370000"), ("370200", .city, "370000"), ("410100", .city, "410000"), ("410300", .city, "410000"),
        ("370102", .county, "370100"), ("370103", .county, "370100"), ("370202", .county, "370200"), ("370211", .county, "370200"),
        ("410102", .county, "410100"), ("410103", .county, "410100"), ("410302", .county, "410300"), ("410303", .county, "410300"),
    ]

    static var routing: RoutingTable {
        RoutingTable(nodes: parents.map { (code($0.0), $0.1, $0.2.map(code)) })
    }

    static let shandong = Policy(deductibleFen: 20_000, poolRatioOutpatientBp: 5_000, poolRatioInpatientBp: 8_500,
                                 annualCapFen: 30_000_000, largeAmountRatioBp: 8_000, acctPayInFund: false)
    static let henan = Policy(deductibleFen: 15_000, poolRatioOutpatientBp: 5_500, poolRatioInpatientBp: 8_000,
                              annualCapFen: 25_000_000, largeAmountRatioBp: 7_500, acctPayInFund: true)
}

func code(_ text: String) -> DivisionCode { DivisionCode(text)! }
