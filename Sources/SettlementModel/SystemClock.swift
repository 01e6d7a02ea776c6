#if canImport(Glibc)
import Glibc
#endif

// The two clocks every process reads; one definition for nodes, the runner and the benchmark.
/// Milliseconds since the Unix epoch, from the wall clock: what msgids, records and fault
/// windows carry.
@inline(__always)
public func wallClockMs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
}

/// Microseconds from an arbitrary start that never jumps: what latencies are measured with.
@inline(__always)
public func monotonicUs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}

/// CPU time this thread has used, µs: what a load driver costs, apart from the network it drives.
public func threadCPUTimeUs() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000
}
