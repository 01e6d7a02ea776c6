import Foundation
import SettlementModel

/// A node's status file (`cluster status` reads it): rewritten only when something in it changed
/// (not merely the time), so that an idle node writes nothing, which matters when thousands share
/// a machine. No fsync: it is a report, rebuilt on the next change, not a record.
///
/// It is rewritten in place, one write at offset 0 on a descriptor kept open, padded with
/// spaces (JSON's trailing whitespace) to the longest it has been, so it never shrinks. Creating
/// a file and renaming it over the old one took a fifth of the national network's CPU at 1,200
/// settlements a second (file-system metadata, for a few hundred bytes a write).
final class StatusReporter {
    let path: String
    private var lastWritten: NodeStatus?
    /// When it was last considered (written or found unchanged).
    private(set) var lastMs: Int64 = 0
    private var descriptor: Int32 = -1
    /// The file's length: what a shorter status is padded to.
    private var length = 0

    init(path: String) { self.path = path }

    deinit { close() }

    /// Considered again at once (after sign-in or readiness changed).
    func soon() { lastMs = 0 }

    /// `status.updatedAtMs` is `nowMs`.
    func write(_ status: NodeStatus, nowMs: Int64) {
        lastMs = nowMs
        if var previous = lastWritten {
            previous.updatedAtMs = status.updatedAtMs
            if previous == status { return }
        }
        lastWritten = status
        guard var data = try? JSONEncoder.settlenet(pretty: false).encode(status) else { return }
        if descriptor < 0 {
            descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { return }
            var info = stat()
            length = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
        }
        if data.count < length { data.append(contentsOf: repeatElement(UInt8(ascii: " "), count: length - data.count)) }
        let written = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        if written == data.count { length = data.count } else { lastWritten = nil }   // tried again next time
    }

    /// The node stopped (after writing its last status): the descriptor is let go.
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }
}
