@testable import Scenario
import Testing

/// The load driver must not measure itself: it waits for answers instead of spinning.
@Suite struct LoadDriverTests {
    /// The next arrival less than a millisecond away is a wait of one millisecond, not a poll
    /// that returns at once (at 1,000/s that was every poll, and one of the two cores spun).
    @Test func aWaitShorterThanAMillisecondIsNotABusyPoll() {
        #expect(LoadDriver.pollTimeoutMs(waitUs: 1) == 1)
        #expect(LoadDriver.pollTimeoutMs(waitUs: 999) == 1)
        #expect(LoadDriver.pollTimeoutMs(waitUs: 1_000) == 1)
        #expect(LoadDriver.pollTimeoutMs(waitUs: 1_001) == 2)
        // Due (or overdue): send now, without waiting.
        #expect(LoadDriver.pollTimeoutMs(waitUs: 0) == 0)
        #expect(LoadDriver.pollTimeoutMs(waitUs: -5_000) == 0)
        // Progress and the stop are checked at least every 50 ms.
        #expect(LoadDriver.pollTimeoutMs(waitUs: 10_000_000) == 50)
    }

    @Test func theDriversShareOfACoreIsItsCPUOverItsTime() {
        #expect(DriverFigures(cpuS: 0.4, wallS: 8).cpuSharePct == 5)
        #expect(DriverFigures(cpuS: 8, wallS: 8).cpuSharePct == 100)
        #expect(DriverFigures(cpuS: 0, wallS: 0).cpuSharePct == 0)
    }
}
