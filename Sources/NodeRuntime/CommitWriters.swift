import Foundation
import Glibc
import Persistence
import SettlementModel

/// The threads that sync the nodes' ledgers, so that the reactor thread never waits on a disk:
/// while a node's committed rounds sync, the reactor goes on serving it and the other nodes,
/// and the syncs of different ledgers overlap. A node has at most one sync here at a time; it
/// covers every round the node committed before asking, and their answers wait for it.
/// Between syncs, a thread copies a ledger's grown log back into its database (checkpoint).
final class CommitWriters: @unchecked Sendable {
    /// A ledger to sync, and the node (by index) it belongs to: what it committed before asking
    /// is durable once the sync returns.
    struct Job: @unchecked Sendable {
        let ledger: Ledger
        let node: Int
    }

    /// How a sync ended: `error` nil when it is durable; how long the disk took.
    struct Finished {
        let node: Int
        let error: (any Error)?
        let tookUs: Int64
    }

    /// Readable once a sync has finished: the reactor polls it beside the sockets (the read end
    /// of a pipe; a full pipe is readable as well, so a lost byte loses no wake-up).
    let wakeFD: Int32
    private let wakeWriteFD: Int32
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [Job] = []
    private var finished: [Finished] = []
    private var stopping = false
    private var running = 0
    private var named = 0

    /// Fsyncs of different files overlap on this kind of disk; a few threads are enough
    /// whatever the number of ledgers, and a process of 200 nodes keeps a small thread count.
    static let maxThreads = 4

    init(threads: Int) throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0, ends.allSatisfy({ fcntl($0, F_SETFL, O_NONBLOCK) == 0 && fcntl($0, F_SETFD, FD_CLOEXEC) == 0 }) else {
            throw SettleNetError(.node, "cannot create the commit threads' wake-up pipe: \(String(cString: strerror(errno)))")
        }
        wakeFD = ends[0]
        wakeWriteFD = ends[1]
        let threads = max(1, threads)
        running = threads
        for index in 1...threads {
            // Named so that a look at /proc/PID/task tells them from the reactor thread.
            Thread { [self] in
                Thread.current.name = "commit-\(index)"   // on Linux only the thread itself can name itself
                condition.lock()
                named += 1
                condition.broadcast()
                condition.unlock()
                serve()
            }.start()
        }
        // Ready, and named, before the first commit.
        condition.lock()
        while named < threads { condition.wait() }
        condition.unlock()
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
    }

    func submit(_ job: Job) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// The syncs finished since the last call, in the order they finished.
    func takeFinished() -> [Finished] {
        var bytes = [UInt8](repeating: 0, count: 256)
        while read(wakeFD, &bytes, bytes.count) == bytes.count {}
        condition.lock()
        defer { condition.unlock() }
        let done = finished
        finished.removeAll(keepingCapacity: true)
        return done
    }

    /// Finishes the syncs submitted, then ends the threads; returns once they have ended.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            guard !jobs.isEmpty else {
                running -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            var failure: (any Error)?
            let started = monotonicUs()
            do { try job.ledger.syncLog() } catch { failure = error }
            let tookUs = monotonicUs() - started
            condition.lock()
            finished.append(Finished(node: job.node, error: failure, tookUs: tookUs))
            condition.unlock()
            var one: UInt8 = 1
            _ = write(wakeWriteFD, &one, 1)
            // After the answers are free to go: the node may sync again meanwhile, on another thread.
            if failure == nil { job.ledger.checkpointIfDue() }
        }
    }
}
