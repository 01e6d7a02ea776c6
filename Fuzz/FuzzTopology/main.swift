import Foundation
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

/// A broken invariant: said on stderr (a release build drops a precondition's message), then
/// a crash that libFuzzer catches and keeps the input of.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    guard !condition() else { return }
    FileHandle.standardError.write(Data("invariant broken: \(message())\n".utf8))
    abort()
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv, { data, size in fuzzTopology(data, size) }))
