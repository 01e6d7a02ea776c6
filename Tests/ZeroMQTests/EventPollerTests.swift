import Glibc
import Testing
import ZeroMQ

@Suite struct EventPollerTests {
    /// Forty DEALERs, each with its own routing id, connected to one ROUTER, and the ROUTER.
    func clients(_ context: Context, count: Int = 40) throws -> (router: Socket, dealers: [Socket]) {
        let router = try context.socket(.router)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        let dealers = try (0..<count).map { index in
            let dealer = try context.socket(.dealer)
            try dealer.setRoutingID(Array("client-\(index)".utf8))
            try dealer.connect(endpoint)
            return dealer
        }
        // Each says hello, so that the ROUTER knows every routing id before it answers.
        let routerWaiter = try EventPoller([router])
        for dealer in dealers { try dealer.send([Array("hello".utf8)]) }
        var greeted = 0
        while greeted < count {
            #expect(try routerWaiter.wait(timeoutMs: 10_000) == [0], "the ROUTER heard \(greeted) of \(count) clients")
            while try router.receive(wait: false) != nil { greeted += 1 }
        }
        return (router, dealers)
    }

    /// Every socket with input is reported, and once each is read to the end a wait finds
    /// nothing more (a fired descriptor may be reported once with nothing left to read).
    @Test func aWaitReportsEverySocketThatHasInput() throws {
        let context = try Context()
        let (router, dealers) = try clients(context)
        let poller = try EventPoller(dealers)
        #expect(try poller.wait(timeoutMs: 0) == [], "nothing was sent to any client yet")
        for index in [3, 17, 39] { try router.send([Array("client-\(index)".utf8), Array("answer".utf8)]) }
        var seen: Set<Int> = []
        while seen.count < 3 {
            let readable = try poller.wait(timeoutMs: 10_000)
            #expect(!readable.isEmpty, "the answers did not arrive within 10 s")
            if readable.isEmpty { break }
            for index in readable {
                while let frames = try dealers[index].receive(wait: false) {
                    #expect(frames == [Array("answer".utf8)])
                    seen.insert(index)
                }
            }
        }
        #expect(seen == [3, 17, 39])
        for index in try poller.wait(timeoutMs: 0) {
            #expect(try dealers[index].receive(wait: false) == nil, "everything was read")
        }
        #expect(try poller.wait(timeoutMs: 0) == [], "every socket read to the end is quiet")
    }

    /// A socket left with input (its owner stopped short and said so) is reported again,
    /// without a new signal.
    @Test func aSocketLeftWithInputIsReportedAgain() throws {
        let context = try Context()
        let (router, dealers) = try clients(context, count: 2)
        let poller = try EventPoller(dealers)
        for n in 0..<3 { try router.send([Array("client-1".utf8), Array("answer \(n)".utf8)]) }
        var read = 0
        while read == 0 {
            let readable = try poller.wait(timeoutMs: 10_000)
            try #require(!readable.isEmpty, "the answers did not arrive within 10 s")
            if readable.contains(1), try dealers[1].receive(wait: false) != nil { read += 1 }
        }
        poller.used(dealers[1])
        while read < 3 {
            #expect(try poller.wait(timeoutMs: 10_000) == [1])
            if try dealers[1].receive(wait: false) != nil { read += 1 }
            poller.used(dealers[1])
        }
    }

    /// Waits are timed to the microsecond, and never end early.
    @Test func aWaitWithNothingToReadLastsItsTimeout() throws {
        let context = try Context()
        let (_, dealers) = try clients(context, count: 1)
        let poller = try EventPoller(dealers)
        for timeoutUs: Int64 in [300, 2_500] {
            let start = ContinuousClock.now
            #expect(try poller.wait(timeoutUs: timeoutUs) == [])
            #expect(ContinuousClock.now - start >= .microseconds(timeoutUs))
        }
    }

    /// A wait until a deadline never ends early, also when it is asked again for the same
    /// deadline after an answer woke it (the timer is armed once), and one until a deadline
    /// already past ends at once.
    static func monotonicNowUs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
    }

    @Test func aWaitUntilADeadlineEndsThereAndNotBefore() throws {
        let context = try Context()
        let (router, dealers) = try clients(context, count: 1)
        let poller = try EventPoller(dealers)
        let deadline = Self.monotonicNowUs() + 200_000
        try router.send([Array("client-0".utf8), Array("an answer before the deadline".utf8)])
        while true {
            let readable = try poller.wait(untilUs: deadline)
            if readable.isEmpty {
                #expect(Self.monotonicNowUs() >= deadline, "a wait with nothing to read ended before its deadline")
                break
            }
            #expect(readable == [0])
            while try dealers[0].receive(wait: false) != nil {}
        }
        let start = Self.monotonicNowUs()
        #expect(try poller.wait(untilUs: start - 1_000) == [])
        #expect(Self.monotonicNowUs() - start < 5_000_000, "a deadline already past did not end the wait")
    }

    /// A deadline's timer that fires while its owner has moved on to waits by timeout is read
    /// and never reported as a position (a reactor indexes its sockets by them).
    @Test func aTimerThatFiredUnseenIsNeverAPosition() throws {
        let context = try Context()
        let (_, dealers) = try clients(context, count: 1)
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        var byte: UInt8 = 1
        try #require(write(ends[1], &byte, 1) == 1)
        let poller = try EventPoller(dealers, fds: [ends[0]])
        // The timer is armed for the deadline, and the wait ends at once by the pipe.
        let deadline = Self.monotonicNowUs() + 50_000
        #expect(try poller.wait(untilUs: deadline) == [1])
        try #require(read(ends[0], &byte, 1) == 1)
        // Waits by timeout from now on, long past the deadline: its timer fires during one
        // of them, or before, with nobody waiting on it.
        #expect(try poller.wait(timeoutUs: 0) == [])
        while Self.monotonicNowUs() < deadline + 100_000 {
            #expect(try poller.wait(timeoutUs: 100_000) == [])
        }
    }

    /// A send can take the signal of an answer that arrives meanwhile (libzmq's ZMQ_FD): a socket
    /// the owner used is asked again, so a request answered at once is never missed.
    @Test func aSocketUsedBetweenWaitsIsAskedAgain() throws {
        let context = try Context()
        let (router, dealers) = try clients(context, count: 8)
        let poller = try EventPoller(dealers)
        for round in 0..<200 {
            let index = round % dealers.count
            try dealers[index].send([Array("request \(round)".utf8)])
            poller.used(dealers[index])
            // The ROUTER answers on this thread, so the answer may be back before the next wait.
            let routerWaiter = try EventPoller([router])
            #expect(try routerWaiter.wait(timeoutMs: 10_000) == [0])
            let request = try #require(try router.receive(wait: false))
            try router.send([request[0], Array("answer \(round)".utf8)])
            #expect(try poller.wait(timeoutMs: 10_000) == [index], "round \(round)")
            #expect(try dealers[index].receive(wait: false) == [Array("answer \(round)".utf8)])
        }
    }

    @Test func aPlainDescriptorIsReportedAfterTheSockets() throws {
        let context = try Context()
        let (_, dealers) = try clients(context, count: 2)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let poller = try EventPoller(dealers, fds: [ends[0]])
        #expect(try poller.wait(timeoutMs: 20) == [])
        var one: UInt8 = 1
        #expect(write(ends[1], &one, 1) == 1)
        #expect(try poller.wait(timeoutMs: 10_000) == [2])
    }
}
