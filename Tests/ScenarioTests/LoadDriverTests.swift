@testable import Scenario
import Testing

/// The load driver must not measure itself: it waits for answers instead of spinning.
@Suite struct LoadDriverTests {
    /// The driver waits exactly until the next arrival: a wait under a millisecond is neither a
    /// poll that returns at once (at 1,000/s that was every poll, and one of the two cores spun)
    /// nor a millisecond that sends the arrival late.
    @Test func theDriverWaitsUntilTheNextArrivalToTheMicrosecond() {
        #expect(LoadDriver.pollTimeoutUs(waitUs: 1) == 1)
        #expect(LoadDriver.pollTimeoutUs(waitUs: 999) == 999)
        #expect(LoadDriver.pollTimeoutUs(waitUs: 1_001) == 1_001)
        // Due (or overdue): send now, without waiting.
        #expect(LoadDriver.pollTimeoutUs(waitUs: 0) == 0)
        #expect(LoadDriver.pollTimeoutUs(waitUs: -5_000) == 0)
        // Progress and the stop are looked at at least every 50 ms.
        #expect(LoadDriver.pollTimeoutUs(waitUs: 10_000_000) == 50_000)
    }

    @Test func theDriversShareOfACoreIsItsCPUOverItsTime() {
        #expect(DriverFigures(cpuS: 0.4, wallS: 8).cpuSharePct == 5)
        #expect(DriverFigures(cpuS: 8, wallS: 8).cpuSharePct == 100)
        #expect(DriverFigures(cpuS: 0, wallS: 0).cpuSharePct == 0)
    }
}
