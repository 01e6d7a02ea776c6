import GRDB
import SettlementModel

extension Ledger {
    /// A digest of everything the ledger holds: every row of every table, tables by name and rows
    /// in the order of their values, so two ledgers that hold the same rows digest alike however
    /// their files are laid out. XXH64, as hex. A simulation's replay compares these.
    public func contentDigest() throws -> String {
        try read { tx in
            let db = tx.db
            let tables = try String.fetchAll(db, sql: """
                SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name
                """)
            var text: [UInt8] = []
            for table in tables {
                let columns = try db.columns(in: table).count
                text += Array("\u{1}\(table)".utf8)
                let order = (1...max(1, columns)).map(String.init).joined(separator: ", ")
                let rows = try Row.fetchCursor(db, sql: "SELECT * FROM \"\(table)\" ORDER BY \(order)")
                while let row = try rows.next() {
                    text.append(2)
                    for value in row.databaseValues {
                        text.append(3)
                        switch value.storage {
                        case .null: text.append(0)
                        case .int64(let number): text += Array(String(number).utf8)
                        case .double(let number): text += Array(String(number).utf8)
                        case .string(let string): text += Array(string.utf8)
                        case .blob(let data): text += Array(data)
                        }
                    }
                }
            }
            return String(text.withUnsafeBytes { XXH64.hash($0) }, radix: 16)
        }
    }
}
