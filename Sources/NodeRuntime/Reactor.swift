import Foundation
import SettlementModel
import ZeroMQ

/// One thread serving every node of a process: one poller over all their sockets, each node
/// stepped in turn with the same instant, read once per round from the clock. A parent and a
/// child served by one reactor hand their messages over in memory. Each node's turn records
/// its work in one ledger transaction, which a sync thread makes durable while this thread
/// goes on serving; the turn's answers leave once it is. Each socket is touched only by its
/// node's turn, on this thread.
public final class Reactor {
    let nodes: [NodeShell]
    let pace: NodeShell.Pace
    let clock: any NodeClock

    public init(nodes: [NodeShell], pace: NodeShell.Pace, clock: any NodeClock = WallClock()) {
        self.nodes = nodes
        self.pace = pace
        self.clock = clock
        // A parent and a child both served here talk in memory.
        NodeShell.joinInMemory(nodes)
    }

    /// Serves until SIGTERM/SIGINT (see `StopSignal`), then lets every node drain and returns.
    /// If a node fails, the others are stopped too and the failures thrown, so that the process
    /// exits non-zero and `cluster up` reports it.
    public func run() throws {
        // A lone node syncs on this thread: on a machine running a process per node, a sync
        // thread's two switches a sync cost more than the waits they save (measured, README). A
        // packed process's nodes sync on sync threads and go on meanwhile.
        let writers = nodes.count > 1 ? try CommitWriters(threads: min(CommitWriters.maxThreads, nodes.count)) : nil
        // Every commit submitted ends before the ledgers close.
        defer { writers?.stop() }
        if let writers {
            for (index, node) in nodes.enumerated() { node.committer = (writers, index) }
        }
        let wakeFDs = writers.map { [$0.wakeFD] } ?? []
        var nowUs = clock.nowUs()
        var now = nowUs / 1_000
        for node in nodes { node.start(nowMs: now) }
        var live = nodes
        // One epoll for every socket: a wait costs the same for 3 nodes or 300, and only the
        // sockets that fired or that a turn used are asked about (zmq_poll asks every one).
        var poller = try Self.poller(for: live, fds: wakeFDs)
        var firstSocket = Self.offsets(live)
        var readable: [Bool] = []
        var failures: [String] = []
        var draining = false
        func fail(_ node: NodeShell, _ error: any Error) {
            failures.append("node \(node.id): \(error)")
            node.abort()
            StopSignal.request()
        }
        while !live.isEmpty {
            nowUs = clock.nowUs()
            now = nowUs / 1_000
            if StopSignal.isRequested && !draining {
                draining = true
                for node in live { node.beginDraining(nowMs: now) }
            }
            // What the last round (or the start) sent leaves now, one write per peer.
            for node in live { node.flushHeld() }
            // Mail handed over in memory is served at once; the wait then only looks.
            let wake = live.contains(where: \.hasLocalMail) ? now : live.map(\.waitEndsMs).min() ?? now + pace.maxWaitMs
            let ready = try poller.wait(timeoutMs: Int(max(0, min(pace.maxWaitMs, wake - now))))
            readable.removeAll(keepingCapacity: true)
            readable.append(contentsOf: repeatElement(false, count: firstSocket.last! + wakeFDs.count))
            for position in ready { readable[position] = true }
            nowUs = clock.nowUs()
            now = nowUs / 1_000
            if let writers, readable.last == true {
                for done in writers.takeFinished() {
                    let node = nodes[done.node]
                    do { try node.syncFinished(error: done.error, tookUs: done.tookUs, nowMs: now, nowUs: nowUs) } catch { fail(node, error) }
                }
            }
            // A socket a node sent on, or left with input, is asked again before the next wait
            // (a call on a socket can take the signal of what arrives meanwhile).
            func noteUse(_ index: Int, _ node: NodeShell) {
                var touched = node.takeSocketsTouched()
                while touched != 0 {
                    let position = touched.trailingZeroBitCount
                    poller.used(at: firstSocket[index] + position)
                    touched &= touched - 1
                }
            }
            for (index, node) in live.enumerated() {
                let sockets = firstSocket[index]..<firstSocket[index + 1]
                guard readable[sockets].contains(true) || node.needsTurn(nowMs: now) else { continue }
                do {
                    try node.turn(readable: readable[sockets], nowMs: now, nowUs: nowUs)
                } catch {
                    fail(node, error)
                }
                noteUse(index, node)
            }
            // What the round handed over in memory is served before the next wait: a settlement
            // climbs county, city and province in one round, and the wait and the asking of the
            // sockets are paid once a round, not once a hop. Bounded, so that the sockets are
            // looked at again soon whatever the nodes hand each other.
            for _ in 0..<Self.localPassesPerRound {
                guard live.contains(where: \.hasLocalMail) else { break }
                for (index, node) in live.enumerated() where node.hasLocalMail {
                    let sockets = firstSocket[index]..<firstSocket[index + 1]
                    do {
                        try node.turn(readable: ArraySlice(repeating: false, count: sockets.count), nowMs: now, nowUs: nowUs)
                    } catch {
                        fail(node, error)
                    }
                    noteUse(index, node)
                }
            }
            if live.contains(where: \.isStopped) {
                live.removeAll(where: \.isStopped)
                poller = try Self.poller(for: live, fds: wakeFDs)
                firstSocket = Self.offsets(live)
            }
        }
        if !failures.isEmpty { throw SettleNetError(.node, failures.joined(separator: "\n")) }
    }

    /// Turns of the nodes with mail in memory, after the polled turns, before the next wait: a
    /// hop up or down the tree each (county, city, province and back is six).
    static let localPassesPerRound = 6

    /// One epoll over the sockets of `nodes`; a failure (out of descriptors, say) names them.
    static func poller(for nodes: [NodeShell], fds: [Int32]) throws -> EventPoller {
        do {
            return try EventPoller(nodes.flatMap(\.sockets), fds: fds)
        } catch {
            throw SettleNetError(.node, "nodes \(nodes.map(\.id.value).joined(separator: ", ")): cannot wait on their sockets: \(error)"
                                 + " (too many open files? raise `ulimit -n`, or pack fewer nodes a process)")
        }
    }

    /// Where each node's sockets begin in the poller (and, last, where they end).
    static func offsets(_ nodes: [NodeShell]) -> [Int] {
        nodes.reduce(into: [0]) { $0.append($0.last! + $1.sockets.count) }
    }
}
