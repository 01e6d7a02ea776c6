@testable import Scenario
import Testing

/// The load driver must not measure itself: it waits for answers instead of spinning.
@Suite struct LoadDriverTests {
    /// The driver waits exactly until the next arrival: a wait under a millisecond is neither a
    /// poll that returns at once (at 1,000/s that was every poll, and one of the two cores spun)
    /// nor a millisecond that sends the arrival late.
    @Test func theDriverWaitsUntilTheNextArrivalToTheMicrosecond() {
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 10_001) == 10_001)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 10_999) == 10_999)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 11_001) == 11_001)
        // Due (or overdue): send now, without waiting.
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 10_000) == 10_000)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 5_000) == 10_000)
    }

    /// Progress and the end are looked at at least every 50 ms, at marks that stay put while
    /// answers wake the driver in between (a new deadline costs a timer armed again).
    @Test func withNothingDueTheDriverWakesAtTheNext50msMark() {
        #expect(LoadDriver.waitDeadlineUs(nowUs: 10_000, dueUs: 10_000_000) == 50_000)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 49_999, dueUs: nil) == 50_000)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 50_000, dueUs: nil) == 100_000)
        #expect(LoadDriver.waitDeadlineUs(nowUs: 0, dueUs: nil) == 50_000)
    }

    @Test func theDriversShareOfACoreIsItsCPUOverItsTime() {
        #expect(DriverFigures(cpuS: 0.4, wallS: 8).cpuSharePct == 5)
        #expect(DriverFigures(cpuS: 8, wallS: 8).cpuSharePct == 100)
        #expect(DriverFigures(cpuS: 0, wallS: 0).cpuSharePct == 0)
    }
}

/// The plan digest is compared across runs and kept in reports: mixing a number's digits in
/// place must give what mixing its decimal text gave.
@Suite struct PlanDigestTests {
    @Test func aNumberMixesAsItsDecimalText() {
        for number: Int64 in [0, 7, -7, 10, 35_000, -1_000_000_007, .max, .min] {
            var inPlace = PlanDigest(), asText = PlanDigest()
            inPlace.mix(number)
            asText.mix(String(number))
            #expect(inPlace == asText, "\(number)")
        }
        var inPlace = PlanDigest(), asText = PlanDigest()
        inPlace.mix(true); inPlace.mix(false)
        asText.mix("true"); asText.mix("false")
        #expect(inPlace == asText)
    }
}
