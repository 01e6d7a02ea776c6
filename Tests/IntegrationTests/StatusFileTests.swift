import Foundation
@testable import NodeRuntime
import SettlementModel
import Testing

/// A node's status file is rewritten in place: whatever it held before, and however much
/// shorter the new status is, it reads as the last status written.
@Suite struct StatusFileTests {
    func status(_ id: String, messages: Int64, signNo: String) -> NodeStatus {
        NodeStatus(id: id, tier: "county", pid: 42, endpoint: "tcp://127.0.0.1:1", state: "running", signedIn: true, signNo: signNo,
                   catalogVersion: "V1", startedAtMs: 1, updatedAtMs: 2, messagesHandled: messages, pending: 0)
    }

    @Test func aStatusFileReadsAsTheLastStatusWrittenEvenWhenShorter() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-status-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/status.json"
        func read() throws -> NodeStatus { try JSONDecoder().decode(NodeStatus.self, from: Data(contentsOf: URL(fileURLWithPath: path))) }

        let reporter = StatusReporter(path: path)
        reporter.write(status("370211", messages: 123_456_789, signNo: String(repeating: "S", count: 200)), nowMs: 1)
        #expect(try read().messagesHandled == 123_456_789)
        let longest = try Data(contentsOf: URL(fileURLWithPath: path)).count
        reporter.write(status("370211", messages: 7, signNo: "S1"), nowMs: 2)
        #expect(try read() == status("370211", messages: 7, signNo: "S1"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == longest, "padded in place, never shrunk")
        reporter.close()

        // A node started again over an older, longer file.
        let restarted = StatusReporter(path: path)
        restarted.write(status("370211", messages: 1, signNo: "S2"), nowMs: 3)
        #expect(try read() == status("370211", messages: 1, signNo: "S2"))
        restarted.close()
    }
}
