@testable import NodeRuntime
import SettlementModel
import SettlementTestKit
import SwiftProtobuf
import Testing

/// A relay sends on the bytes it received, its budget replaced, and only while what it sends is
/// exactly what its machine decided on.
@Suite struct PassThroughTests {
    @Test func aRequestGoesOnAsReceivedWithOnlyItsBudgetReplaced() throws {
        var passThrough = PassThrough()
        let received = SampleRequests.settlement(budgetMs: 3_000)
        let body: [UInt8] = try received.serializedBytes()
        passThrough.received(received, body: body)

        var onward = received
        onward.budgetMs = 2_800
        let sent = passThrough.body(of: onward)
        #expect(try sent.map { try WireRequest(serializedBytes: $0) } == onward)
        // Asked again with the budget it came with: the bytes that came, untouched.
        #expect(passThrough.body(of: received) == body)
        let again = passThrough.body(of: onward)
        #expect(again == sent)

        var changed = onward
        changed.settlement.medfeeSumamt += 1
        #expect(passThrough.body(of: changed) == nil, "anything else changed: encoded afresh, never the old bytes")
        var other = received
        other.msgid = "H37021100001202611230000000002"
        #expect(passThrough.body(of: other) == nil, "not received this turn")
        #expect(passThrough.passed == 3)

        passThrough.forget(roundsAwaitSync: false)
        #expect(passThrough.body(of: onward) == nil, "a new turn forgets the last one's")
    }
}
