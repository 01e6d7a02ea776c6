import Foundation
import GRDB
import SettlementCore
import SettlementModel


/// One node's durable ledger: a SQLite database in WAL mode, written by one thread.
///
/// Every write goes through `write(_:)`, one transaction with one sync at commit: the node
/// loop gathers all the work of one poll round into it (group commit), and sends the answers
/// only after it returns, so every answer that leaves is already durable.
public final class Ledger {
    private let queue: DatabaseQueue
    public let path: String
    /// Where each transit's latest image is: recording one is an append (`transit_log`).
    private let transits: TransitIndex

    public convenience init(path: String) throws {
        try self.init(path: path, transitKey: TransitIndex.xxh64)
    }

    /// `transitKey`: how the transit index keys msgids (tests make them all collide).
    init(path: String, transitKey: @escaping (String) -> UInt64) throws {
        self.path = path
        var config = Configuration()
        config.label = "ledger"
        // A node's round may leave its transaction open for a commit thread to finish
        // (`begin(_:)`, `commitOpenTransaction()`).
        config.allowsUnsafeTransactions = true
        config.prepareDatabase { db in
            // WAL: readers (cluster status, reconcile) never block the writer.
            // synchronous FULL: each commit is synced, so an answer that left is never lost.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try Self.migrator.migrate(queue)
            transits = try queue.read { try TransitIndex(db: $0, key: transitKey) }
        } catch {
            throw SettleNetError(.ledger, "cannot open", subject: "ledger \(path)", cause: error)
        }
    }

    /// Runs `body` in one write transaction: committed (and synced) when it returns, rolled
    /// back entirely when it throws.
    public func write<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        do {
            let result = try queue.write { db in try body(LedgerTransaction(db: db, transits: transits)) }
            transits.committed()
            return result
        } catch {
            transits.rolledBack()
            throw error
        }
    }

    /// Opens a transaction and runs `body` in it, leaving it open for `commitOpenTransaction()`
    /// (on another thread, while this ledger is left alone); rolled back entirely if `body` throws.
    public func begin<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.inDatabase { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE").execute()
            do {
                return try body(LedgerTransaction(db: db, transits: transits))
            } catch {
                try? db.cachedStatement(sql: "ROLLBACK").execute()
                transits.rolledBack()
                throw error
            }
        }
    }

    /// Commits (and syncs) the transaction `begin(_:)` left open; rolls it back if the commit fails.
    public func commitOpenTransaction() throws {
        try queue.inDatabase { db in
            do {
                try db.cachedStatement(sql: "COMMIT").execute()
                transits.committed()
            } catch {
                if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK").execute() }
                transits.rolledBack()
                throw SettleNetError(.ledger, "commit failed", subject: "ledger \(path)", cause: error)
            }
        }
    }

    /// Runs `body` with a consistent read view.
    public func read<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.read { db in try body(LedgerTransaction(db: db, transits: nil)) }
    }

    /// Creates the county's synthetic insured population the first time the ledger opens.
    public func seedPopulation(_ population: SyntheticPopulation) throws {
        try queue.write { db in
            let existing = try Int.fetchOne(db, sql: "SELECT count(*) FROM persons") ?? 0
            guard existing == 0 else { return }
            let statement = try db.makeStatement(sql: """
                INSERT INTO persons (psn_no, psn_name, insutype, balance_fen, deductible_used_fen, pool_used_fen, filed_offsite)
                VALUES (?, ?, ?, ?, 0, 0, ?)
                """)
            for index in 0..<population.size {
                let person = population.person(index)
                try statement.execute(arguments: [person.psnNo, person.name, person.insutype,
                                                  person.initialBalanceFen, person.filedOffsite])
            }
        }
    }
}

/// The operations of one ledger transaction. Statements are prepared once and cached.
public struct LedgerTransaction {
    let db: Database
    /// The writer's transit index; nil in a read.
    let transits: TransitIndex?
}
