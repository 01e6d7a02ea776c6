import Foundation
import GRDB
@testable import Persistence
import SettlementCore
import SettlementModel
import Testing

/// Commits that are made durable later, by a sync of the log on another thread (pipelined group
/// commit): which rounds a sync covers, and the log it syncs.
@Suite struct LedgerSyncTests {
    @Test func aSyncCoversTheRoundsCommittedBeforeItAndNoneCommittedWhileItRuns() {
        var syncs = SyncPipeline<String>()
        #expect(syncs.isIdle && syncs.nextSync() == nil)   // nothing to sync
        syncs.committed("A")
        syncs.committed("B")
        #expect(syncs.nextSync() == 2)
        syncs.committed("C")                 // while the sync of A and B runs
        #expect(syncs.nextSync() == nil)     // one sync at a time
        #expect(syncs.synced() == ["A", "B"])
        #expect(!syncs.isIdle)
        syncs.committed("D")
        #expect(syncs.nextSync() == 4)       // C and D in one sync
        #expect(syncs.synced() == ["C", "D"])
        #expect(syncs.isIdle && syncs.synced().isEmpty)
    }

    /// `background`: as a node that syncs on its reactor's thread does, the checkpoints on a
    /// queue of their own (`checkpointIfDue(on:)`); else on the syncing thread.
    @Test(arguments: [false, true]) func theLogSyncedIsTheOneSQLiteWritesAndCheckpointsLetItBeReused(background: Bool) throws {
        let directory = try makeTemporaryDirectory("ledger-sync")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        let ledger = try Ledger(path: path)
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        var checkpoints = 0
        var largestLog: UInt64 = 0
        let rounds = 1_000, perRound = 60
        let queue = DispatchQueue(label: "test-checkpoints")
        // Rounds as a node syncing on its own thread records them: commit, then `sync()`, which
        // checkpoints when the log asks (a sync thread calls `syncLog()` and `checkpointIfDue()`).
        for round in 0..<rounds {
            try ledger.transaction { tx in
                for index in 0..<perRound {
                    // Msgids apart: the factory's 4-digit sequence would wrap within one instant.
                    let request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                                     bill: .composed(totalFen: 10_000), inpatient: false,
                                                     nowMs: Int64(round * perRound + index))
                    try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request), nowMs: Int64(round)))
                }
            }
            if ledger.wantsCheckpoint { checkpoints += 1 }
            if background {
                try ledger.syncLog()
                ledger.checkpointIfDue(on: queue)
            } else {
                try ledger.sync()
            }
            let size = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? UInt64 ?? 0
            largestLog = max(largestLog, size)
        }
        queue.sync {}
        #expect(checkpoints > 0, "the rounds never filled the log: the test proves nothing")
        // The checkpoints copied the pages into the database (60,000 transits: megabytes).
        let database = try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 ?? 0
        #expect(database > 1 << 20, "the database holds \(database) bytes: no checkpoint copied the log into it")
        if !background {
            // The writer's own checkpoint is off: without ours the log would hold every page written.
            // (In the background, how far the log grows meanwhile depends on the machine's speed.)
            let framesBound = UInt64(2 * Ledger.checkpointFrames) * (4_096 + 24)
            #expect(largestLog <= framesBound, "the log grew to \(largestLog) bytes")
        }
        #expect(ledger.syncsTheLogSQLiteWrites)
        let reopened = try Ledger(path: path)
        let count = try reopened.read { try $0.count(table: .transits) }
        #expect(count == rounds * perRound, "\(count) transits")
    }

    /// Another connection to the ledger's file holds the write lock for a moment, as the
    /// checkpointer or a reader checking the log's index does: a round committed meanwhile
    /// waits for it. Before, it failed at once with "database is locked" and its answers were
    /// passed on unrecorded.
    @Test func aRoundWaitsForAWriteLockAnotherConnectionHoldsForAMoment() throws {
        let directory = try makeTemporaryDirectory("ledger-lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        // A wait far longer than the hold, so that a busy machine cannot make the test fail.
        let ledger = try Ledger(path: path, transitKey: TransitIndex.xxh64, lockWait: 60)
        var config = Configuration()
        config.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: path, configuration: config)
        try other.inDatabase { try $0.execute(sql: "BEGIN IMMEDIATE") }   // the write lock, held
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(200)) {
            try? other.inDatabase { try $0.execute(sql: "ROLLBACK") }
            released.signal()
        }
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        let request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                         bill: .composed(totalFen: 10_000), inpatient: false, nowMs: 1)
        try ledger.transaction { tx in try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request), nowMs: 1)) }
        try ledger.syncLog()
        released.wait()
        #expect(try ledger.read { try $0.inFlightAtOrigin() }.map(\.msgid) == [request.msgid])
    }

    /// A simulated crash keeps what a simulated sync covered and loses the rest, also after the
    /// log was copied back into the database and started over.
    @Test(arguments: [1, 1_000]) func aSimulatedCrashLosesWhatNoSyncCovered(syncedRounds: Int) throws {
        let directory = try makeTemporaryDirectory("ledger-crash")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/ledger.sqlite"
        var factory = RequestFactory(institution: "H37021100001", treatment: DivisionCode("370211")!)
        func record(_ ledger: Ledger, _ number: Int) throws -> String {
            let request = factory.settlement(psnNo: "41010200000000000001", insured: DivisionCode("410102")!,
                                             bill: .composed(totalFen: 10_000), inpatient: false, nowMs: Int64(number))
            try ledger.transaction { tx in try tx.recordTransit(TransitRecord(inFlight: RequestMeta(request), nowMs: Int64(number))) }
            return request.msgid
        }
        var synced: [String] = []
        do {
            let ledger = try Ledger(path: path, syncsToDisk: false)
            // Enough rounds, each synced, for the log to pass `simulatedCheckpointFrames` and start over.
            var logStartedOver = false
            for number in 0..<syncedRounds {
                let before = ledger.framesInCurrentLog
                synced.append(try record(ledger, number))
                logStartedOver = logStartedOver || ledger.framesInCurrentLog < before
                ledger.simulatedSyncEnded(covering: ledger.simulatedSyncBegins())
            }
            #expect(logStartedOver == (syncedRounds > 1))
            let unsynced = try record(ledger, syncedRounds)
            // A sync begun before the last commit does not cover it.
            #expect(!synced.contains(unsynced))
            try ledger.simulateCrash()
        }
        // As the node started again opens it (its log is in the simulation's memory)...
        let reopened = try Ledger(path: path, syncsToDisk: false)
        #expect(Set(try reopened.read { try $0.inFlightAtOrigin() }.map(\.msgid)) == Set(synced))
        // ...and closed, the file alone holds it, for anyone to read.
        try reopened.close()
        let read = try Ledger(path: path)
        #expect(Set(try read.read { try $0.inFlightAtOrigin() }.map(\.msgid)) == Set(synced))
        #expect(try read.read { try String.fetchOne($0.db, sql: "PRAGMA integrity_check") } == "ok")
    }
}
