import Foundation

/// A broken invariant: said on stderr (a release build drops a precondition's message), then a
/// crash that libFuzzer catches and keeps the input of.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    guard !condition() else { return }
    FileHandle.standardError.write(Data("invariant broken: \(message())\n".utf8))
    abort()
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// Hands libFuzzer the target and exits with its status: each fuzz executable's main (an
/// executable target must have one of its own, so libFuzzer's is left out).
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(runFuzzerDriver(&argc, &argv, target))
}
