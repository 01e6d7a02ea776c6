import Foundation
import FuzzSupport
import NetworkTopology
import SettlementModel

/// Any bytes as a topology file: `TopologyLoader.parse` either loads them or throws problems that
/// each name the file; it never crashes or hangs.
func fuzzTopology(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let topology = try TopologyLoader.parse(text, file: "fuzz.yaml")
        // What loads is a valid tree: exactly one national node, every parent known.
        check(topology.nodes.filter { $0.tier == .national }.count == 1, "a topology without one national node loaded")
        for spec in topology.nodes where spec.parent != nil {
            check(topology.node(spec.parent!) != nil, "node \(spec.id) loaded with an unknown parent")
        }
    } catch {
        check(!error.problems.isEmpty, "thrown without a problem")
        for problem in error.problems { check(problem.file == "fuzz.yaml", "a problem that names no file: \(problem)") }
    }
    return 0
}

runFuzzer { data, size in fuzzTopology(data, size) }
