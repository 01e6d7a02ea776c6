import Foundation
import SettlementModel

/// A node's status file (`cluster status` reads it): rewritten only when something in it changed
/// (not merely the time), so that an idle node writes nothing, which matters when thousands share
/// a machine. No fsync: it is a report, rebuilt on the next change, not a record.
struct StatusReporter {
    let path: String
    private var lastWritten: NodeStatus?
    /// When it was last considered (written or found unchanged).
    private(set) var lastMs: Int64 = 0

    init(path: String) { self.path = path }

    /// Considered again at once (after sign-in or readiness changed).
    mutating func soon() { lastMs = 0 }

    /// `status.updatedAtMs` is `nowMs`.
    mutating func write(_ status: NodeStatus, nowMs: Int64) {
        lastMs = nowMs
        if var previous = lastWritten {
            previous.updatedAtMs = status.updatedAtMs
            if previous == status { return }
        }
        lastWritten = status
        guard let data = try? JSONEncoder().encode(status) else { return }
        // Write then rename: a reader never sees half a file.
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        let complete = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) == $0.count }
        close(descriptor)
        if complete { _ = rename(temporary, path) }
    }
}
