import Foundation
import SettlementModel
import Logging
import Synchronization

/// A log handler that appends to one file, in the format of swift-log's StreamLogHandler.
/// Nodes packed into one process each keep their own log (logs/<id>.log), so `cluster logs`
/// and start-up failure reports read the same file whether a node is packed or not.
public struct FileLogHandler: LogHandler {
    /// The open file, shared by copies of the handler; writes are whole lines under a lock.
    final class Sink: Sendable {
        let descriptor: Int32
        let lock = Mutex(())
        init(path: String) throws {
            descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw SettleNetError(.node, "cannot open log \(path): \(String(cString: strerror(errno)))") }
        }
        func write(_ line: String) {
            var text = line
            lock.withLock { _ in
                text.withUTF8 { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                        if written <= 0 { if errno == EINTR { continue } else { return } }
                        offset += written
                    }
                }
            }
        }
        deinit { close(descriptor) }
    }

    private let sink: Sink
    private let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, path: String, level: Logger.Level) throws {
        sink = try Sink(path: path)
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let stamp = Date().ISO8601Format(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeZone(separator: .omitted))
        sink.write("\(stamp) \(event.level) \(label) :\(fields.isEmpty ? "" : " " + fields) [\(event.source)] \(event.message)\n")
    }
}
