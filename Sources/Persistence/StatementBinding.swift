import GRDB
import GRDBSQLite

/// Runs a cached statement with its values bound straight into SQLite. The hot writes
/// (a transit for every answer a node passes, a settlement at the insured county) have up to
/// 21 values: through GRDB's `StatementArguments` each is boxed into an array of existentials
/// and then into `DatabaseValue`s, which costs more than the insert itself.
struct StatementBinder {
    private let handle: OpaquePointer
    private var position: Int32 = 0
    /// SQLite copies the bytes: nothing bound has to outlive the call.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private init(_ handle: OpaquePointer) { self.handle = handle }

    mutating func bind(_ text: String) {
        position += 1
        var text = text
        text.withUTF8 { bytes in
            // An empty string still binds as text (''), never as NULL: a valid pointer of length 0.
            let start = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
            _ = sqlite3_bind_text(handle, position, start, Int32(bytes.count), Self.transient)
        }
    }

    mutating func bind(_ number: Int64) {
        position += 1
        sqlite3_bind_int64(handle, position, number)
    }

    mutating func bind(_ number: Int32) { bind(Int64(number)) }
    mutating func bind(_ flag: Bool) { bind(Int64(flag ? 1 : 0)) }

    /// nil binds NULL.
    mutating func bind(_ bytes: [UInt8]?) {
        guard let bytes else {
            position += 1
            sqlite3_bind_null(handle, position)
            return
        }
        bind(bytes)
    }

    mutating func bind(_ bytes: [UInt8]) {
        position += 1
        bytes.withUnsafeBytes { raw in
            _ = sqlite3_bind_blob(handle, position, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), Self.transient)
        }
    }

    /// Binds with `values`, runs `statement` to completion and resets it; a failure (a
    /// constraint, a full disk) throws the same `DatabaseError` GRDB would.
    static func execute(_ statement: Statement, in db: Database, _ values: (inout StatementBinder) -> Void) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var binder = StatementBinder(handle)
        values(&binder)
        precondition(binder.position == sqlite3_bind_parameter_count(handle), "values bound do not match the statement's parameters: \(statement.sql)")
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW { code = sqlite3_step(handle) }
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: statement.sql)
        }
    }
}
