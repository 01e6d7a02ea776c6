import Foundation
import FuzzSupport
import NetworkTopology
import SettlementModel

/// Any bytes as a scenario file: `ScenarioLoader.parse` either reads them or throws problems that
/// each name the file; it never crashes or hangs.
func fuzzScenario(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        _ = try ScenarioLoader.parse(text, file: "fuzz.yaml")
    } catch {
        check(!error.problems.isEmpty, "thrown without a problem")
        for problem in error.problems { check(problem.file == "fuzz.yaml", "a problem that names no file: \(problem)") }
    }
    return 0
}

runFuzzer { data, size in fuzzScenario(data, size) }
