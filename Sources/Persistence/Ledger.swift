import CSQLite
import Foundation
import Glibc
import GRDB
import GRDBSQLite
import SettlementCore
import SettlementModel
import Synchronization

/// One node's durable ledger: a SQLite database in WAL mode, written by one thread.
///
/// A commit writes the log (`-wal`) without syncing it (synchronous=NORMAL); `syncLog()` then
/// makes every commit so far durable. Split so that a node's next round can be recorded while
/// the sync of the last one runs on another thread, and one sync covers every round committed
/// before it began (pipelined group commit). `write(_:)` does both, for the rare writes off the
/// hot path. Nobody sends an answer before the sync that covers its commit has returned.
public final class Ledger {
    private let queue: DatabaseQueue
    public let path: String
    /// Where each transit's latest image is: recording one is an append (`transit_log`).
    private let transits: TransitIndex
    /// Which msgids the insured county has an answer stored for (a filter before the look-up).
    private let answered: AnsweredIndex
    /// The write-ahead log, opened by us as well: an fdatasync of any descriptor of the file
    /// syncs it, and this one can be synced on another thread than the writer's.
    private let logFD: Int32
    /// Frames in the log after the last commit (SQLite's WAL hook, on the writer's thread).
    private let framesInLog = Atomic<Int>(0)
    /// A checkpoint waits on a background queue (`checkpointIfDue(on:)`).
    private let checkpointQueued = Atomic<Bool>(false)
    /// A second connection copies the log back into the database (checkpoint) off the writer's
    /// thread; the writer's own automatic checkpoint would sync the database in the middle of a
    /// round. Opened at the first checkpoint: an idle node of a packed national network never needs it.
    private let checkpointer = Mutex<DatabaseQueue?>(nil)
    /// False in a simulation: `syncLog()` syncs nothing (the disk is simulated).
    public let syncsToDisk: Bool
    /// The writer's hot statements (on the queue only).
    private let statements = WriterStatements()

    /// How long a write waits for a lock another connection holds before it fails: the
    /// momentary locks of readers and the checkpointer last microseconds; a foreign writer
    /// holding the ledger longer fails the round rather than stall every node of the process.
    public static let lockWaitSeconds: TimeInterval = 1

    /// Log frames (pages) past which a sync asks for a checkpoint: SQLite's own default.
    public static let checkpointFrames = 1_000
    /// The same for a simulated ledger, whose log is in memory: 3,226 logs of 1,000 pages
    /// would be 13 GB; 128 pages is half a megabyte each at most.
    public static let simulatedCheckpointFrames = 32

    /// The SQLite every ledger runs on: the copy built with this package (`CSQLite`), not the system's.
    public static var sqliteVersion: String { String(cString: sqlite3_libversion()) }

    /// `syncsToDisk` false: for a simulation, whose disk is simulated. Nothing is synced
    /// (`syncLog()` returns at once, and SQLite syncs nothing either): what a crash would lose
    /// is the simulation's to decide, and a real sync per commit would cost it its speed.
    public convenience init(path: String, syncsToDisk: Bool = true) throws {
        try self.init(path: path, transitKey: TransitIndex.xxh64, syncsToDisk: syncsToDisk)
    }

    /// `transitKey`: how the transit index keys msgids (tests make them all collide).
    /// `lockWait`: how long a write waits for another connection's lock (`lockWaitSeconds`).
    init(path: String, transitKey: @escaping (String) -> UInt64, lockWait: TimeInterval = Ledger.lockWaitSeconds,
         syncsToDisk: Bool = true) throws {
        self.path = path
        self.syncsToDisk = syncsToDisk
        var config = Configuration()
        config.label = "ledger"
        // `transaction(_:)` begins and commits through SQLite itself, which GRDB does not see.
        config.allowsUnsafeTransactions = true
        // This connection is the only writer, yet another connection to the file (the
        // checkpointer, `reconcile`, `cluster status`) that reads the log's index while it is
        // rewritten takes the write lock for a moment to check it. Without a wait, a round's
        // BEGIN IMMEDIATE met that moment as "database is locked" and the round failed (seen
        // in a bench run: three rounds of a city, their answers passed on unrecorded).
        config.busyMode = .timeout(lockWait)
        config.prepareDatabase { db in
            // A simulated ledger is the simulation's alone: an exclusive lock taken once spares
            // every transaction its file locks, and keeps the log's index in the heap. Set
            // before anything is read, or SQLite keeps using the shared-memory index.
            // Its log (in memory) is cut back after each checkpoint: 3,226 logs left at their
            // longest would hold gigabytes.
            if !syncsToDisk {
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                try db.execute(sql: "PRAGMA journal_size_limit = 0")
                // 3,226 caches at SQLite's 2 MB would be 6.5 GB by the end of a national day;
                // a node's hot pages (the tails of its tables and indexes) fit in half a megabyte.
                try db.execute(sql: "PRAGMA cache_size = -512")
            }
            // WAL: readers (cluster status, reconcile) never block the writer.
            // synchronous NORMAL: a commit writes the log, `syncLog()` syncs it; a checkpoint
            // still syncs the database before the log is reused.
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: syncsToDisk ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = OFF")
        }
        do {
            queue = try DatabaseQueue(path: syncsToDisk ? path : try Self.simulatedURI(path), configuration: config)
            try Self.migrator.migrate(queue)
            transits = try queue.read { try TransitIndex(db: $0, key: transitKey) }
            answered = try queue.read { try AnsweredIndex(db: $0) }
        } catch {
            throw SettleNetError(.ledger, "cannot open", subject: "ledger \(path)", cause: error)
        }
        // The log exists once a connection in WAL mode has written (the migrations above);
        // a simulated ledger's is in memory, and never synced.
        logFD = syncsToDisk ? open(path + "-wal", O_RDWR | O_CLOEXEC) : -1
        guard logFD >= 0 || !syncsToDisk else {
            throw SettleNetError(.ledger, "cannot open its write-ahead log \(path)-wal: \(String(cString: strerror(errno)))",
                                 subject: "ledger \(path)")
        }
        // Replaces the writer's automatic checkpoint (which is itself a WAL hook) with a count.
        let context = Unmanaged.passUnretained(self).toOpaque()
        queue.inDatabase { db in
            _ = sqlite3_wal_hook(db.sqliteConnection, { context, _, _, frames in
                Unmanaged<Ledger>.fromOpaque(context!).takeUnretainedValue().framesInLog.store(Int(frames), ordering: .relaxed)
                return SQLITE_OK
            }, context)
        }
    }

    deinit {
        if !crashed && !closed {
            queue.inDatabase { db in
                _ = sqlite3_wal_hook(db.sqliteConnection, nil, nil)
                statements.removeAll()
            }
        }
        if logFD >= 0 { Glibc.close(logFD) }
    }

    /// Closes the connection now, copying the log back into the database (a simulated
    /// ledger's log is in memory: others can read the file only once it is closed). The
    /// ledger is unusable afterwards.
    public func close() throws {
        guard !crashed && !closed else { return }
        queue.inDatabase { db in
            _ = sqlite3_wal_hook(db.sqliteConnection, nil, nil)
            statements.removeAll()
        }
        try queue.close()
        closed = true
    }

    /// Closed by `close()`.
    public private(set) var closed = false

    /// The simulated ledgers' VFS (`settlenet-sim`: the log in memory), and the URI that opens
    /// `path` with it.
    static func simulatedURI(_ path: String) throws -> String {
        guard settlenet_simulated_vfs_register() == SQLITE_OK else {
            throw SettleNetError(.ledger, "cannot register the simulated ledgers' VFS", subject: "ledger \(path)")
        }
        // A URI's path: percent-encode what would end or escape it.
        var encoded = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "?"), UInt8(ascii: "#"): encoded += String(format: "%%%02X", byte)
            default: encoded.unicodeScalars.append(UnicodeScalar(byte))
            }
        }
        return "file:\(encoded)?vfs=settlenet-sim"
    }

    /// Runs `body` in one write transaction: committed and synced when it returns, rolled
    /// back entirely when it throws.
    public func write<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        let result: T
        do {
            result = try queue.write { db in
                let transaction = LedgerTransaction(db: db, transits: transits, answered: answered, writer: statements)
                let changesBefore = refusesChanges ? transaction.changesSoFar : 0
                let result = try body(transaction)
                if refusesChanges && transaction.changesSoFar != changesBefore { throw DiskFull(path: path) }
                try failIfTheSimulatedDiskFails()   // thrown inside: the write rolls back
                return result
            }
            transits.committed()
        } catch {
            transits.rolledBack()
            if Self.isDiskFull(error) { throw DiskFull(path: path) }
            throw error
        }
        try sync()
        return result
    }

    /// Makes every transaction committed so far durable, then checkpoints if the log has grown
    /// (`checkpointIfDue()`): what a writer that syncs on its own thread does after each commit.
    public func sync() throws {
        try syncLog()
        checkpointIfDue()
    }

    /// Makes every transaction committed so far durable. Any thread, while the writer goes on
    /// (what it commits meanwhile may or may not be covered: only what committed before counts).
    public func syncLog() throws {
        guard syncsToDisk else { return }
        guard fdatasync(logFD) == 0 else {
            throw SettleNetError(.ledger, "cannot sync its write-ahead log: \(String(cString: strerror(errno)))", subject: "ledger \(path)")
        }
    }

    /// The descriptor `syncLog()` syncs is the log SQLite writes (tests: after checkpoints and
    /// the log's reuse, it must still be).
    var syncsTheLogSQLiteWrites: Bool {
        var synced = stat(), written = stat()
        return fstat(logFD, &synced) == 0 && stat(path + "-wal", &written) == 0
            && synced.st_ino == written.st_ino && synced.st_dev == written.st_dev
    }

    /// Frames in the log's current generation (tests).
    var framesInCurrentLog: Int { framesInLog.load(ordering: .relaxed) }

    /// The log has grown past `checkpointFrames` since it was last reused.
    var wantsCheckpoint: Bool { framesInLog.load(ordering: .relaxed) >= Self.checkpointFrames }

    /// Checkpoints if the log has grown past `checkpointFrames`: the writer's own automatic
    /// checkpoint is off, so whoever syncs must call this after a sync, or the log grows without end.
    public func checkpointIfDue() {
        if wantsCheckpoint { checkpoint() }
    }

    /// `checkpointIfDue()` on `queue`, unless one is queued for this ledger already: for a
    /// writer that syncs on its own thread and must not wait for a checkpoint (it copies a
    /// thousand pages and syncs the database: milliseconds that every answer of the node would
    /// wait behind).
    public func checkpointIfDue(on queue: DispatchQueue) {
        guard wantsCheckpoint, !checkpointQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let ledger = UncheckedLedger(ledger: self)
        queue.async {
            ledger.ledger.checkpoint()
            ledger.ledger.checkpointQueued.store(false, ordering: .releasing)
        }
    }

    /// Copies what the log holds back into the database (PASSIVE: never waits on the writer or
    /// on readers, and the writer goes on meanwhile), so that the writer can reuse the log from
    /// its start. Any thread; skipped while another thread checkpoints. A failure is left for the next one.
    func checkpoint() {
        _ = checkpointer.withLockIfAvailable { connection in
            do {
                if connection == nil {
                    var config = Configuration()
                    config.label = "ledger-checkpoint"
                    let synchronous = syncsToDisk ? "NORMAL" : "OFF"
                    config.prepareDatabase { db in
                        // NORMAL: syncs the database before the log is reused.
                        try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                        try db.execute(sql: "PRAGMA cache_size = 16")        // it only copies pages
                    }
                    connection = try DatabaseQueue(path: path, configuration: config)
                }
                _ = try connection!.writeWithoutTransaction { try $0.checkpoint(.passive) }
            } catch {
                // Nothing is lost: the log keeps growing until a checkpoint succeeds.
            }
        }
    }

    // MARK: A simulated disk (`syncsToDisk` false)

    /// Log frames of the log's current generation that a simulated sync made durable: what a
    /// simulated crash keeps.
    private var simulatedDurableFrames = 0
    /// Closed by a simulated crash.
    public private(set) var crashed = false
    /// A simulated failing disk: while set, every commit fails (and rolls back), as on a full
    /// or broken disk.
    public var simulatedDiskFails = false

    /// The disk under the ledger is full: while set, a transaction that would change the ledger
    /// rolls back and throws `DiskFull`, and one that only reads commits. The little space left
    /// (the node's reserve, freed) is kept for what the node must still write: the ticket that
    /// says so, and its messages.
    public var refusesChanges = false

    /// Runs `body` with changes allowed even while `refusesChanges` is set.
    public func allowingChanges<T>(_ body: () throws -> T) rethrows -> T {
        let refused = refusesChanges
        refusesChanges = false
        defer { refusesChanges = refused }
        return try body()
    }

    private func failIfTheSimulatedDiskFails() throws {
        if simulatedDiskFails {
            throw SettleNetError(.ledger, "commit failed: the disk failed (simulated: disk_fail)", subject: "ledger \(path)")
        }
    }

    /// A simulated sync begins: what it will cover (the frames committed so far).
    public func simulatedSyncBegins() -> Int { framesInLog.load(ordering: .relaxed) }

    /// The simulated sync begun at `frames` is over: those frames are durable. When that is the
    /// whole log and it has grown, it is copied back into the database, and the log starts over
    /// at the next commit: never before every frame in it is durable, or a crash would keep
    /// in the database what no sync covered.
    public func simulatedSyncEnded(covering frames: Int) {
        simulatedDurableFrames = max(simulatedDurableFrames, frames)
        guard !simulatedDiskFails, frames == framesInLog.load(ordering: .relaxed), frames >= Self.simulatedCheckpointFrames else { return }
        queue.inDatabase { db in
            var logged: Int32 = 0, copied: Int32 = 0
            if sqlite3_wal_checkpoint_v2(db.sqliteConnection, nil, SQLITE_CHECKPOINT_PASSIVE, &logged, &copied) == SQLITE_OK,
               logged == copied {
                simulatedDurableFrames = 0   // all in the database; the next commit starts a new log
            }
        }
    }

    /// A simulated crash: the connection closes without copying its log back, and the log loses
    /// every frame no simulated sync covered, as a machine that lost its power would. The
    /// ledger is unusable afterwards: open it again, as a restarted node does.
    /// Returns how many frames of the log were lost.
    @discardableResult
    public func simulateCrash() throws -> Int {
        var pageSize = 4_096
        var logPath = path + "-wal"
        try queue.inDatabase { db in
            pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4_096
            // The name the VFS knows the log by: the database's full path, and "-wal".
            if let name = sqlite3_db_filename(db.sqliteConnection, "main") { logPath = String(cString: name) + "-wal" }
            _ = settlenet_no_checkpoint_on_close(db.sqliteConnection)
            statements.removeAll()
        }
        let lost = framesInLog.load(ordering: .relaxed) - simulatedDurableFrames
        try queue.close()
        crashed = true
        // The log's header (32 bytes), then each frame: a 24-byte header and a page.
        let kept = simulatedDurableFrames == 0 ? 0 : 32 + simulatedDurableFrames * (24 + pageSize)
        _ = settlenet_simulated_log_truncate(logPath, Int64(kept))
        return lost
    }

    /// Runs `body` in a transaction and commits it, in one visit to the connection's queue (each
    /// visit is a dispatch_sync through GRDB, about 2,500 instructions: callgrind). Rolled back
    /// entirely if `body` throws, or if the commit fails (a full disk, say). What it commits is
    /// durable once a `syncLog()` begun after it returns.
    public func transaction<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.inDatabase { db in
            let result = try run(body, in: db)
            try commit(in: db)
            return result
        }
    }

    private func run<T>(_ body: (LedgerTransaction) throws -> T, in db: Database) throws -> T {
        // Straight through SQLite, as the hot statements are: GRDB's bookkeeping around a
        // statement (observation, suspension and autocommit checks) costs more than a BEGIN.
        try StatementBinder.execute(try statements.statement("BEGIN IMMEDIATE", in: db), in: db) { _ in }
        do {
            let transaction = LedgerTransaction(db: db, transits: transits, answered: answered, writer: statements)
            let changesBefore = refusesChanges ? transaction.changesSoFar : 0
            let result = try body(transaction)
            if refusesChanges && transaction.changesSoFar != changesBefore { throw DiskFull(path: path) }
            return result
        } catch {
            try? db.cachedStatement(sql: "ROLLBACK").execute()
            transits.rolledBack()
            // A statement that spilled pages to the log can meet the full disk before the commit.
            if Self.isDiskFull(error) { throw DiskFull(path: path) }
            throw error
        }
    }

    private func commit(in db: Database) throws {
        do {
            try failIfTheSimulatedDiskFails()
            try StatementBinder.execute(try statements.statement("COMMIT", in: db), in: db) { _ in }
            transits.committed()
        } catch {
            if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK").execute() }
            transits.rolledBack()
            if Self.isDiskFull(error) { throw DiskFull(path: path) }
            throw SettleNetError(.ledger, "commit failed", subject: "ledger \(path)", cause: error)
        }
    }

    /// The ledger could not grow: its file system has no space left (SQLITE_FULL). Nothing of
    /// the transaction was recorded; what was recorded before is intact and can still be read.
    public struct DiskFull: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "ledger \(path): no space left on its disk (SQLITE_FULL)" }
    }

    /// Makes the default VFS of this process the unix VFS with a hook on write-ahead log writes,
    /// so that `crashAfterLogWrites` can kill it in the middle of a commit (crash tests).
    public static func installCrashHook() -> Bool { settlenet_crash_vfs_register() == SQLITE_OK }

    /// SIGKILL this process right after the `writes`-th write to a write-ahead log from now.
    public static func crashAfterLogWrites(_ writes: Int) { settlenet_crash_after_log_writes(Int32(writes)) }

    /// `PRAGMA integrity_check` on the ledger at `path`, which no process has open (a node just
    /// crashed): "ok", or SQLite's first problems. Opening it recovers its log, as the node's
    /// next start would.
    public static func integrityCheck(path: String) -> String {
        do {
            let queue = try DatabaseQueue(path: path)
            defer { try? queue.close() }
            let lines = try queue.read { try String.fetchAll($0, sql: "PRAGMA integrity_check(20)") }
            return lines.joined(separator: "; ")
        } catch {
            return "cannot be checked: \(error)"
        }
    }

    /// Whether `error` says the disk under a ledger is full, however it was wrapped on the way.
    public static func isDiskFull(_ error: any Error) -> Bool {
        if error is DiskFull { return true }
        if let database = error as? DatabaseError { return database.resultCode == .SQLITE_FULL }
        return false
    }

    /// Runs `body` with a consistent read view.
    public func read<T>(_ body: (LedgerTransaction) throws -> T) throws -> T {
        try queue.read { db in try body(LedgerTransaction(db: db, transits: nil, answered: nil, writer: nil)) }
    }

    /// Runs `body` on the ledger file at `path`, which no process has open (a simulation's,
    /// once it stopped), opened without what a node's open does (migrations, the in-memory
    /// indexes of its transits and answers): for reading thousands of ledgers, as a
    /// simulation's reconciliation does. The file must be of this version's schema.
    ///
    /// It opens as a simulated ledger does, under an exclusive lock with its log in memory: a
    /// plain open makes and removes the shared-memory index and the log on disk, a millisecond
    /// a ledger, most of the time of reading a national simulation's 3,226 small ledgers.
    public static func readClosed<T>(path: String, _ body: (LedgerTransaction) throws -> T) throws -> T {
        do {
            var config = Configuration()
            config.label = "ledger (read)"
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA locking_mode = EXCLUSIVE")
                try db.execute(sql: "PRAGMA query_only = 1")
            }
            let queue = try DatabaseQueue(path: try simulatedURI(path), configuration: config)
            defer { try? queue.close() }
            return try queue.inDatabase { db in try body(LedgerTransaction(db: db, transits: nil, answered: nil, writer: nil)) }
        } catch let error as SettleNetError {
            throw error
        } catch {
            throw SettleNetError(.ledger, "cannot read", subject: "ledger \(path)", cause: error)
        }
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
    /// The writer's filter of msgids with a stored answer; nil in a read.
    let answered: AnsweredIndex?
    /// The writer's prepared statements; nil in a read.
    let writer: WriterStatements?

    /// Rows inserted, updated or deleted on this connection since it opened: two readings tell
    /// whether what ran between them changed the ledger.
    public var changesSoFar: Int64 { sqlite3_total_changes64(db.sqliteConnection) }
}

/// A ledger handed to a background queue: `checkpoint()` uses its own connection under a lock,
/// and the atomics are safe from any thread.
private struct UncheckedLedger: @unchecked Sendable {
    let ledger: Ledger
}
