import GRDB
import GRDBSQLite

/// Runs a cached statement with its values bound straight into SQLite. The hot writes
/// (a transit for every answer a node passes, a settlement at the insured county) have up to
/// 21 values: through GRDB's `StatementArguments` each is boxed into an array of existentials
/// and then into `DatabaseValue`s, which costs more than the insert itself.
struct StatementBinder {
    private let handle: OpaquePointer
    private var position: Int32 = 0
    /// Where text and blobs are copied for SQLite to read in place (`WriterStatements.scratch`);
    /// nil, or full: SQLite makes its own copy, an allocation and a free for each value.
    private let scratch: UnsafeMutableRawBufferPointer?
    private var scratchUsed = 0
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    private static let inPlace = unsafeBitCast(0, to: sqlite3_destructor_type.self)

    private init(_ handle: OpaquePointer, scratch: UnsafeMutableRawBufferPointer?) {
        self.handle = handle
        self.scratch = scratch
    }

    mutating func bind(_ text: String) {
        var text = text
        // An empty string still binds as text (''), never as NULL: a valid pointer of length 0.
        text.withUTF8 { bind(UnsafeRawBufferPointer($0), asText: true) }
    }

    mutating func bind(_ number: Int64) {
        position += 1
        sqlite3_bind_int64(handle, position, number)
    }

    /// nil binds NULL.
    mutating func bind(_ number: Int64?) {
        guard let number else {
            position += 1
            sqlite3_bind_null(handle, position)
            return
        }
        bind(number)
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
        bytes.withUnsafeBytes { bind($0, asText: false) }
    }

    private mutating func bind(_ bytes: UnsafeRawBufferPointer, asText: Bool) {
        position += 1
        var start = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        var destructor = Self.transient
        if let scratch, bytes.count <= scratch.count - scratchUsed {
            let copy = scratch.baseAddress! + scratchUsed
            if let source = bytes.baseAddress { copy.copyMemory(from: source, byteCount: bytes.count) }
            scratchUsed += bytes.count
            start = UnsafeRawPointer(copy)
            destructor = Self.inPlace
        }
        if asText {
            _ = sqlite3_bind_text(handle, position, start.assumingMemoryBound(to: CChar.self), Int32(bytes.count), destructor)
        } else {
            _ = sqlite3_bind_blob(handle, position, start, Int32(bytes.count), destructor)
        }
    }

    /// Binds with `values`, runs `statement` to completion and resets it; a failure (a
    /// constraint, a full disk) throws the same `DatabaseError` GRDB would.
    static func execute(_ statement: Statement, in db: Database, scratch: UnsafeMutableRawBufferPointer? = nil,
                        _ values: (inout StatementBinder) -> Void) throws {
        _ = try first(statement, in: db, scratch: scratch, values) { _ in () }
    }

    /// Binds with `values`, runs `statement` and hands its first row to `read` (nil when it has
    /// none), reading every further row away; resets it. Errors as `execute`.
    static func first<T>(_ statement: Statement, in db: Database, scratch: UnsafeMutableRawBufferPointer? = nil,
                         _ values: (inout StatementBinder) -> Void, read: (ColumnReader) -> T) throws -> T? {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var binder = StatementBinder(handle, scratch: scratch)
        values(&binder)
        precondition(binder.position == sqlite3_bind_parameter_count(handle), "values bound do not match the statement's parameters: \(statement.sql)")
        var code = sqlite3_step(handle)
        let row = code == SQLITE_ROW ? read(ColumnReader(handle: handle)) : nil
        while code == SQLITE_ROW { code = sqlite3_step(handle) }
        sqlite3_reset(handle)
        // Nothing bound may point into the scratch once it is reused.
        if binder.scratchUsed > 0 { sqlite3_clear_bindings(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: statement.sql)
        }
        return row
    }
}

/// The columns of the row a statement stands on, read straight from SQLite (valid only inside
/// the `read` closure of `StatementBinder.first`): no `Row`, no `DatabaseValue` boxes.
struct ColumnReader {
    fileprivate let handle: OpaquePointer

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func bool(_ column: Int32) -> Bool { sqlite3_column_int64(handle, column) != 0 }

    /// NULL reads as "".
    func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}

/// The writer's hot statements, prepared once and found by the address of their SQL (a
/// `StaticString` literal's never moves) instead of by hashing the text, as GRDB's cache does,
/// and the scratch their text and blobs are bound from. Used on the writer's queue only.
final class WriterStatements {
    private var prepared: [UnsafeRawPointer: Statement] = [:]
    /// Values larger than what is left go to SQLite's own copy.
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16_384, alignment: 8)

    deinit { scratch.deallocate() }

    func statement(_ sql: StaticString, in db: Database) throws -> Statement {
        precondition(sql.hasPointerRepresentation, "a statement's SQL is text")
        let key = UnsafeRawPointer(sql.utf8Start)
        if let statement = prepared[key] { return statement }
        let statement = try db.makeStatement(sql: sql.description)
        prepared[key] = statement
        return statement
    }

    /// Finalizes the statements (before their connection closes).
    func removeAll() { prepared.removeAll() }
}

extension LedgerTransaction {
    /// Runs `sql` once with `values` bound: prepared once per writer; the number of rows it changed.
    @discardableResult
    func run(_ sql: StaticString, _ values: (inout StatementBinder) -> Void) throws -> Int {
        if let writer {
            try StatementBinder.execute(try writer.statement(sql, in: db), in: db, scratch: writer.scratch, values)
        } else {
            try StatementBinder.execute(try db.cachedStatement(sql: sql.description), in: db, values)
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    /// Runs the query `sql` with `values` bound and reads its first row with `read`; nil when it
    /// has none. Prepared once per writer, like `run`.
    func first<T>(_ sql: StaticString, _ values: (inout StatementBinder) -> Void, read: (ColumnReader) -> T) throws -> T? {
        if let writer {
            return try StatementBinder.first(try writer.statement(sql, in: db), in: db, scratch: writer.scratch, values, read: read)
        }
        return try StatementBinder.first(try db.cachedStatement(sql: sql.description), in: db, values, read: read)
    }
}

extension LedgerTransaction {
    /// Every row of the query `sql`, each read with `read` straight through SQLite: for reading
    /// whole tables (reconciliation), where GRDB's rows cost more than the reading.
    func all<T>(_ sql: String, read: (ColumnReader) -> T) throws -> [T] {
        let statement = try db.makeStatement(sql: sql)
        let handle = statement.sqliteStatement
        var rows: [T] = []
        var code = sqlite3_step(handle)
        while code == SQLITE_ROW {
            rows.append(read(ColumnReader(handle: handle)))
            code = sqlite3_step(handle)
        }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: sql)
        }
        return rows
    }
}
