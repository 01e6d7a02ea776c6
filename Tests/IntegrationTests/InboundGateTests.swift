import Logging
@testable import NodeRuntime
import SettlementModel
import Testing

/// The gate's refusal report: an idle node must still turn to log what it refused (the
/// reactor turns only nodes with something to do), and only then.
@Suite struct InboundGateTests {
    @Test func aFailedHandshakeMakesTheReportDueAndTheReportClearsIt() {
        var gate = InboundGate(node: DivisionCode("370211")!, parent: DivisionCode("370200")!, secured: true, edge: nil)
        let logger = Logger(label: "test.gate") { _ in SwiftLogNoOpLogHandler() }
        #expect(gate.nextReportMs == .max, "nothing refused: no reason to wake")
        gate.report(nowMs: 10_000, logger: logger)
        gate.handshakesFailed(1, reason: "the peer asks for the NULL mechanism")
        #expect(gate.nextReportMs == 10_000 + gate.reportIntervalMs)
        gate.report(nowMs: 12_000, logger: logger)
        #expect(gate.nextReportMs == .max)
    }
}
