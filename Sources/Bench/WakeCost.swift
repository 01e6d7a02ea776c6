import CZeroMQ
import Foundation
import Glibc
import SettlementModel

/// What a wake-up costs the thread that sleeps, on this machine: the unit the load driver's
/// CPU is made of. A driver at 1,000 arrivals a second sleeps until each send time, so its
/// timed wakes alone cost a thousand times `timedUs` a second whatever it does when awake.
/// In a virtual machine arming a timer traps to the hypervisor, and this figure says how much.
public struct WakeCost: Codable, Sendable {
    /// CPU of the sleeping thread per wake from a 1 ms timed wait (epoll with a timeout), µs.
    public var timedUs: Double
    /// CPU of the sleeping thread per wake by a pipe that another thread writes every
    /// millisecond (no timer of its own), µs.
    public var byDescriptorUs: Double
    /// Wakes measured of each kind.
    public var wakes: Int

    /// The share of one core that timed wakes alone take at `ratePerS`, %.
    public func timedSharePct(ratePerS: Int) -> Double { timedUs * Double(ratePerS) / 10_000 }

    enum CodingKeys: String, CodingKey {
        case wakes
        case timedUs = "timed_wake_cpu_us"
        case byDescriptorUs = "descriptor_wake_cpu_us"
    }

    /// About `wakes` milliseconds of each kind.
    public static func measure(wakes: Int = 1_000) throws -> WakeCost {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SettleNetError(.bench, "cannot create an epoll to time wake-ups: \(String(cString: strerror(errno)))") }
        defer { close(epoll) }
        var events = [epoll_event](repeating: epoll_event(), count: 4)

        let timedStart = threadCPUTimeUs()
        for _ in 0..<wakes { _ = epoll_wait(epoll, &events, 4, 1) }
        let timedUs = Double(threadCPUTimeUs() - timedStart) / Double(wakes)

        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SettleNetError(.bench, "cannot create a pipe to time wake-ups: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd); close(writeEnd) }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = readEnd
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, readEnd, &event) == 0 else {
            throw SettleNetError(.bench, "cannot watch a pipe to time wake-ups: \(String(cString: strerror(errno)))")
        }
        // The pipe closes only once the writer is done with it (a descriptor closed under it
        // could be reused by another file before its last write).
        let writerDone = DispatchSemaphore(value: 0)
        defer { writerDone.wait() }
        let writer = Thread {
            var one: UInt8 = 1
            for _ in 0..<wakes {
                usleep(1_000)
                _ = write(writeEnd, &one, 1)
            }
            writerDone.signal()
        }
        writer.start()
        let woken = threadCPUTimeUs()
        var received = 0
        var bytes = [UInt8](repeating: 0, count: 64)
        while received < wakes {
            guard epoll_wait(epoll, &events, 4, 10_000) > 0 else {
                throw SettleNetError(.bench, "a thread writing a pipe every millisecond went silent for 10 s while wake-ups were timed")
            }
            let count = read(readEnd, &bytes, bytes.count)
            if count > 0 { received += count }
        }
        let byDescriptorUs = Double(threadCPUTimeUs() - woken) / Double(wakes)
        return WakeCost(timedUs: timedUs, byDescriptorUs: byDescriptorUs, wakes: wakes)
    }
}
