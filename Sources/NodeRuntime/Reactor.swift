import Foundation
import SettlementModel
import ZeroMQ

/// One thread serving every node of a process: one poller over all their sockets, each node
/// stepped in turn with the same instant, read once per round from the clock. Each node commits
/// its turn's ledger transaction before any answer of that turn leaves; each socket is touched
/// only by its node's turn, on this thread.
public final class Reactor {
    let nodes: [NodeShell]
    let pace: NodeShell.Pace
    let clock: any NodeClock

    public init(nodes: [NodeShell], pace: NodeShell.Pace, clock: any NodeClock = WallClock()) {
        self.nodes = nodes
        self.pace = pace
        self.clock = clock
    }

    /// Serves until SIGTERM/SIGINT (see `StopSignal`), then lets every node drain and returns.
    /// If a node fails, the others are stopped too and the failures thrown, so that the process
    /// exits non-zero and `cluster up` reports it.
    public func run() throws {
        var now = clock.nowMs()
        for node in nodes { node.start(nowMs: now) }
        var live = nodes
        var poller = Poller(live.flatMap(\.sockets))
        var firstSocket = Self.offsets(live)
        var failures: [String] = []
        var draining = false
        while !live.isEmpty {
            now = clock.nowMs()
            if StopSignal.isRequested && !draining {
                draining = true
                for node in live { node.beginDraining(nowMs: now) }
            }
            let wake = live.lazy.map { $0.nextWakeMs(nowMs: now) }.min() ?? now
            let readable = try poller.poll(timeoutMs: Int(max(0, min(pace.maxWaitMs, wake - now))))
            now = clock.nowMs()
            for (index, node) in live.enumerated() {
                let sockets = firstSocket[index]..<firstSocket[index + 1]
                do {
                    try node.turn(readable: readable[sockets], nowMs: now)
                } catch {
                    failures.append("node \(node.id): \(error)")
                    node.abort()
                    StopSignal.request()
                }
            }
            if live.contains(where: \.isStopped) {
                live.removeAll(where: \.isStopped)
                poller = Poller(live.flatMap(\.sockets))
                firstSocket = Self.offsets(live)
            }
        }
        if !failures.isEmpty { throw SettleNetError(.node, failures.joined(separator: "\n")) }
    }

    /// Where each node's sockets begin in the poller (and, last, where they end).
    static func offsets(_ nodes: [NodeShell]) -> [Int] {
        nodes.reduce(into: [0]) { $0.append($0.last! + $1.sockets.count) }
    }
}
