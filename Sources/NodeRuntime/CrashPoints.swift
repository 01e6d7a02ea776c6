import Foundation
import Logging
import Persistence
import SettlementModel

/// A node's armed crash point (a scenario's `crash` fault): read from the cluster's crash-point
/// file, as link faults are, and fired by the shell as it passes the point. Firing is SIGKILL to
/// the node's own process: nothing of the process runs after it, as in a real crash.
struct CrashPoints {
    let node: DivisionCode
    let file: String
    private(set) var lastCheckMs: Int64 = 0
    private var stamp: Int64?
    /// The point armed here and the passes left before it fires.
    private(set) var armed: (point: CrashPoint, left: Int)?

    init(node: DivisionCode, file: String) {
        self.node = node
        self.file = file
    }

    /// Reads the file again if it changed: an entry for this node and this process arms it.
    mutating func refresh(nowMs: Int64, logger: Logger) {
        lastCheckMs = nowMs
        let changed = modificationStamp(of: file)
        guard changed != stamp else { return }
        stamp = changed
        guard changed != nil, let data = FileManager.default.contents(atPath: file),
              let all = try? JSONDecoder().decode([CrashArming].self, from: data) else { return }
        guard armed == nil, let mine = all.first(where: { $0.node == node.value && $0.pid == getpid() }) else { return }
        armed = (mine.point, max(1, mine.after))
        logger.warning("crash point armed", metadata: ["point": "\(mine.point.rawValue)", "after": "\(mine.after)"])
    }

    /// The shell passes `point` with work: true when this is the pass it was armed to crash at.
    mutating func passes(_ point: CrashPoint) -> Bool {
        guard let current = armed, current.point == point else { return false }
        if current.left > 1 {
            armed = (point, current.left - 1)
            return false
        }
        armed = nil
        return true
    }

    /// Crashes now, as a machine that lost its process would: no handler, no flush.
    static func crash() -> Never {
        kill(getpid(), SIGKILL)
        while true { pause() }
    }
}
