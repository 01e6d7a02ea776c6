import CZeroMQ
import Glibc

/// Waits for any of many sockets with one epoll over their ZMQ_FD descriptors. zmq_poll looks
/// at every socket on every call, a system call each inside libzmq: a load driver holding a
/// connection per hospital paid more for its waits than for its messages. Here a wait costs one
/// epoll_wait, and only sockets that may have input are asked (ZMQ_EVENTS).
///
/// ZMQ_FD only signals that something about a socket changed, and any call on the socket may
/// take that signal (libzmq's documentation of ZMQ_FD): so a socket the owner used (`used(_:)`)
/// is asked before the next wait, and a socket whose descriptor fired is read until it has
/// nothing, which re-arms the signal. The sockets' descriptors are edge-triggered, but for those
/// that stay readable while input waits (`signalsLevels`: a `NativeDealer`'s epoll).
/// Level-triggered plain descriptors (a wake-up pipe) may be added after the sockets; they are
/// reported while readable.
public final class EventPoller {
    private let sockets: [any PolledSocket]
    private let epoll: Int32
    private let plainCount: Int
    /// Positions to ask about before waiting, each once (`isPending`).
    private var pending: [Int] = []
    private var isPending: [Bool]
    private var events: [epoll_event]
    private let positionOf: [ObjectIdentifier: Int]
    /// The timer `wait(untilUs:)` sleeps on (created at its first use), and the deadline it is
    /// armed for: nil once it has fired.
    private var deadlineTimer: Int32 = -1
    private var armedDeadlineUs: Int64?

    public init(_ sockets: [any PolledSocket], fds: [Int32] = []) throws(ZeroMQError) {
        self.sockets = sockets
        plainCount = fds.count
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw ZeroMQError(code: errno, operation: "epoll_create1") }
        isPending = Array(repeating: false, count: sockets.count + fds.count)
        events = Array(repeating: epoll_event(), count: max(16, min(1_024, sockets.count + fds.count)))
        var positions: [ObjectIdentifier: Int] = [:]
        for (position, socket) in sockets.enumerated() { positions[ObjectIdentifier(socket)] = position }
        positionOf = positions
        for (position, socket) in sockets.enumerated() {
            try add(try socket.fileDescriptor(), position: position, edgeTriggered: !socket.signalsLevels)
            markPending(position)   // whatever arrived before the poller existed
        }
        for (offset, fd) in fds.enumerated() { try add(fd, position: sockets.count + offset, edgeTriggered: false) }
    }

    deinit {
        close(epoll)
        if deadlineTimer >= 0 { close(deadlineTimer) }
    }

    private func add(_ fd: Int32, position: Int, edgeTriggered: Bool) throws(ZeroMQError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (edgeTriggered ? EPOLLET.rawValue : 0)
        event.data.u32 = UInt32(position)
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else { throw ZeroMQError(code: errno, operation: "epoll_ctl") }
    }

    private func markPending(_ position: Int) {
        guard !isPending[position] else { return }
        isPending[position] = true
        pending.append(position)
    }

    /// The owner sent on (or read from) `socket` outside `wait`: it is asked again before the
    /// next wait, since the call may have taken its descriptor's signal.
    public func used(_ socket: any PolledSocket) {
        if let position = positionOf[ObjectIdentifier(socket)] { markPending(position) }
    }

    /// The owner used the sockets at `positions`.
    public func used(_ positions: Range<Int>) { for position in positions { markPending(position) } }

    /// The owner used the socket at `position`.
    public func used(at position: Int) { markPending(position) }

    /// Waits up to `timeoutMs` (-1 forever, 0 not at all) and returns the positions, sockets
    /// first in the order given and then the plain descriptors, that may have input: the sockets
    /// used since the last wait that have it (asked), else those whose descriptor fired (not
    /// asked: the owner's first receive asks, and asking first cost a system call more per
    /// socket and wake). The owner receives from each socket returned until it has nothing, or
    /// calls `used` for it if it stops short: a socket read to the end is re-armed, one left
    /// with input may never fire again. A signal interrupting the wait counts as the end of it.
    public func wait(timeoutMs: Int) throws(ZeroMQError) -> [Int] {
        try wait(timeoutUs: timeoutMs < 0 ? -1 : Int64(timeoutMs) * 1_000)
    }

    /// `wait(timeoutMs:)` to the microsecond: a load driver sending every millisecond cannot
    /// round its waits to one.
    public func wait(timeoutUs: Int64) throws(ZeroMQError) -> [Int] {
        try wait(sleeping: { () throws(ZeroMQError) in epollWait(timeoutUs: timeoutUs) })
    }

    /// The sockets used since the last wait that have input, else what `sleep` (an epoll wait
    /// on `events`, returning its count) reports, in order.
    private func wait(sleeping sleep: () throws(ZeroMQError) -> Int32) throws(ZeroMQError) -> [Int] {
        let used = try takePending()
        if !used.isEmpty { return used }
        let count = try sleep()
        if count < 0 {
            if errno == EINTR { return [] }
            throw ZeroMQError(code: errno, operation: "epoll_wait")
        }
        return positions(of: Int(count))
    }

    /// The positions of the first `count` events, in order, but for the deadline timer's, which
    /// is read (it stays readable until then, and any later wait would report it). epoll names
    /// each descriptor at most once a call.
    private func positions(of count: Int) -> [Int] {
        let timerPosition = UInt32(sockets.count + plainCount)
        var ready: [Int] = []
        for index in 0..<count {
            let position = events[index].data.u32
            if position == timerPosition {
                var expirations: UInt64 = 0
                _ = read(deadlineTimer, &expirations, 8)
                armedDeadlineUs = nil
            } else {
                ready.append(Int(position))
            }
        }
        return ready.sorted()
    }

    /// The positions used since the last wait that have input, in order (each asked once).
    private func takePending() throws(ZeroMQError) -> [Int] {
        var ready: [Int] = []
        for position in pending {
            isPending[position] = false
            if position >= sockets.count {
                ready.append(position)
            } else if try sockets[position].hasInput() {
                ready.append(position)
            }
        }
        pending.removeAll(keepingCapacity: true)
        return ready.sorted()
    }

    /// `wait(timeoutUs:)` until `deadlineUs` on the monotonic clock (`monotonicUs()`), through a
    /// timer descriptor in the epoll set that is armed again only when the deadline changes. In
    /// a virtual machine arming a timer costs a trap to the hypervisor: a load driver woken by
    /// an answer between two sends used to arm one more for the rest of its wait (epoll_pwait2
    /// arms one per call), about 5 us of its thread a settlement on this kind of machine.
    public func wait(untilUs deadlineUs: Int64) throws(ZeroMQError) -> [Int] {
        try wait(sleeping: { () throws(ZeroMQError) in
            try arm(deadlineUs)
            return epoll_wait(epoll, &events, Int32(events.count), -1)
        })
    }

    private func arm(_ deadlineUs: Int64) throws(ZeroMQError) {
        if deadlineTimer < 0 {
            deadlineTimer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
            guard deadlineTimer >= 0 else { throw ZeroMQError(code: errno, operation: "timerfd_create") }
            try add(deadlineTimer, position: sockets.count + plainCount, edgeTriggered: false)
        }
        guard armedDeadlineUs != deadlineUs else { return }
        // A deadline already past fires at once (zero would disarm the timer instead).
        let at = max(1, deadlineUs)
        var spec = itimerspec(it_interval: timespec(tv_sec: 0, tv_nsec: 0),
                              it_value: timespec(tv_sec: Int(at / 1_000_000), tv_nsec: Int(at % 1_000_000) * 1_000))
        guard timerfd_settime(deadlineTimer, Int32(TFD_TIMER_ABSTIME), &spec, nil) == 0 else {
            throw ZeroMQError(code: errno, operation: "timerfd_settime")
        }
        armedDeadlineUs = deadlineUs
    }

    /// epoll_pwait2 (Linux 5.11) waits to the nanosecond; an older kernel's epoll_wait to the
    /// millisecond, rounded up so that a wait never ends early.
    private func epollWait(timeoutUs: Int64) -> Int32 {
        if timeoutUs >= 0 && hasPwait2 {
            var timeout = timespec(tv_sec: Int(timeoutUs / 1_000_000), tv_nsec: Int(timeoutUs % 1_000_000) * 1_000)
            let count = epoll_pwait2(epoll, &events, Int32(events.count), &timeout, nil)
            if count >= 0 || errno != ENOSYS { return count }
            hasPwait2 = false
        }
        let timeoutMs = timeoutUs < 0 ? -1 : Int32(clamping: (timeoutUs + 999) / 1_000)
        return epoll_wait(epoll, &events, Int32(events.count), timeoutMs)
    }

    private var hasPwait2 = true
}

extension Socket {
    /// The descriptor libzmq signals on when this socket's state may have changed (ZMQ_FD).
    public func fileDescriptor() throws(ZeroMQError) -> Int32 {
        var fd: Int32 = -1
        var size = MemoryLayout<Int32>.size
        _ = try zmqCall("zmq_getsockopt(FD)") { zmq_getsockopt(handle, ZMQ_FD, &fd, &size) }
        return fd
    }

    /// Whether a message can be received now (ZMQ_EVENTS has ZMQ_POLLIN).
    public func hasInput() throws(ZeroMQError) -> Bool {
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        _ = try zmqCall("zmq_getsockopt(EVENTS)") { zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size) }
        return events & Int32(ZMQ_POLLIN) != 0
    }
}
