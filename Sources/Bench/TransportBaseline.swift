import Foundation
import Histogram
import Scenario
import SettlementModel
import ZeroMQ

/// The transport's own limit: a chain of seven processes shaped like a cross-province
/// settlement (county, city, province, national, province, city, county) that only forwards.
/// Six relays run libzmq's `zmq_proxy`; the seventh echoes with `zmq_msg_t` handed straight
/// back. Nothing in the chain parses, decides or stores, so the round trips per second it
/// carries are what any network of these processes could hope for.
public enum TransportBaseline {
    public static let relayCount = 6

    public struct Result: Codable, Sendable {
        public var processes: Int
        public var window: Int
        public var messageBytes: Int
        public var seconds: Double
        public var roundTrips: Int
        public var perSecond: Double
        /// Every round's rate, in the order measured (this result is the median one).
        public var samples: [Double]?
        /// Open model (`openModelRatePerS`): the rate sent at, and the latency from each message's
        /// intended send time to its return.
        public var openModelRatePerS: Int?
        public var p50Ms: Double?
        public var p99Ms: Double?
        public var p999Ms: Double?
        /// Open model: the sender's CPU over the run, % of one core. Plaintext, it speaks ZMTP itself
        /// as the scenario runner's hospital links do (secured, libzmq's I/O thread counts too). It
        /// does nothing but send, wait and receive, so it is the floor for a load driver here.
        public var driverCPUPct: Double?

        enum CodingKeys: String, CodingKey {
            case processes, window, seconds
            case samples = "samples_per_s"
            case openModelRatePerS = "open_model_rate_per_s"
            case p50Ms = "p50_ms"
            case p99Ms = "p99_ms"
            case p999Ms = "p999_ms"
            case driverCPUPct = "driver_cpu_pct"
            case messageBytes = "message_bytes"
            case roundTrips = "round_trips"
            case perSecond = "round_trips_per_s"
        }
    }

    /// A relay's two sockets, the ROUTER its caller connects to and the DEALER to the next hop,
    /// with queues deep enough for the whole window.
    static func relaySockets(_ context: Context) throws -> (frontend: Socket, backend: Socket) {
        let frontend = try context.socket(.router), backend = try context.socket(.dealer)
        for socket in [frontend, backend] {
            try socket.setSendHighWaterMark(100_000)
            try socket.setReceiveHighWaterMark(100_000)
        }
        return (frontend, backend)
    }

    /// One relay process: a ROUTER bound at `front`, a DEALER connected to `back`, and
    /// `zmq_proxy` between them until the process is stopped.
    public static func runRelay(front: String, back: String) throws {
        diesWithParent()
        let context = try Context()
        let (frontend, backend) = try relaySockets(context)
        if let keys = try curveFromEnvironment() {
            try frontend.makeCurveServer(keys, zapDomain: nil)
            try backend.makeCurveClient(try CurveKeyPair.generate(), serverKey: keys.publicKey)
        }
        try frontend.bind(front)
        try backend.connect(back)
        try Relay.proxy(frontend: frontend, backend: backend)
    }

    /// A durable relay: a ROUTER at `front`, a DEALER to `back`, and between them a loop that
    /// appends each batch of answers it drains to `journal` and fdatasyncs it before the answers
    /// go on, one sync per batch as the nodes' group commit does: the floor cost, on this disk, of
    /// "no answer leaves before its record is durable". `syncRequests`: requests too, before they
    /// go on (the first relay, standing for the origin county, which journals every request it
    /// forwards).
    public static func runDurableRelay(front: String, back: String, journal: String, syncRequests: Bool = false) throws {
        diesWithParent()
        let context = try Context()
        let (frontend, backend) = try relaySockets(context)
        let descriptor = try openJournal(journal)
        try frontend.bind(front)
        try backend.connect(back)
        var poller = Poller([frontend, backend])
        while true {
            let readable = try poller.poll(timeoutMs: 1_000)
            if readable[0] {
                var requests: [[[UInt8]]] = []
                while requests.count < 1_024, let request = try frontend.receive(wait: false) { requests.append(request) }
                if syncRequests { try append(requests, to: descriptor, journal: journal) }
                for request in requests { try backend.send(request) }
            }
            if readable[1] {
                var answers: [[[UInt8]]] = []
                while answers.count < 1_024, let answer = try backend.receive(wait: false) { answers.append(answer) }
                try append(answers, to: descriptor, journal: journal)
                for answer in answers { try frontend.send(answer) }
            }
        }
    }

    static func openJournal(_ journal: String) throws -> Int32 {
        let descriptor = open(journal, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SettleNetError(.bench, "cannot open the journal", subject: journal, cause: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
        return descriptor
    }

    /// Appends `messages` to the journal and fdatasyncs it: one sync for the batch.
    static func append(_ messages: [[[UInt8]]], to descriptor: Int32, journal: String) throws {
        guard !messages.isEmpty else { return }
        let bytes = messages.flatMap { $0.joined() }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fdatasync(descriptor) == 0 else {
            throw SettleNetError(.bench, "cannot make the journal durable", subject: journal, cause: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO))
        }
    }

    /// The far end: a ROUTER bound at `endpoint` that sends every message back as it came.
    /// `journal`: each batch drained is appended and fdatasynced first (the durable chain's
    /// far end, standing for the insured county, which makes its decision durable before it answers).
    public static func runEcho(bind endpoint: String, journal: String? = nil) throws {
        diesWithParent()
        let context = try Context()
        let router = try context.socket(.router)
        try router.setSendHighWaterMark(100_000)
        try router.setReceiveHighWaterMark(100_000)
        if let keys = try curveFromEnvironment() { try router.makeCurveServer(keys, zapDomain: nil) }
        try router.bind(endpoint)
        guard let journal else {
            while true { try Relay.forward(from: router, to: router) }
        }
        let descriptor = try openJournal(journal)
        var poller = Poller([router])
        while true {
            guard try poller.poll(timeoutMs: 1_000)[0] else { continue }
            var messages: [[[UInt8]]] = []
            while messages.count < 1_024, let message = try router.receive(wait: false) { messages.append(message) }
            try append(messages, to: descriptor, journal: journal)
            for message in messages { try router.send(message) }
        }
    }

    /// Starts the chain on `basePort...basePort+6`, keeps `window` messages of `frames` in
    /// flight for `seconds` after a second of warm-up, and stops the chain.
    ///
    /// `curve`: every link of the chain CURVE-encrypted, the servers holding this pair (no ZAP:
    /// this measures the encryption alone). The secret reaches the relays through their
    /// environment, not their command line.
    ///
    /// `journals`: a directory for durable relays (`runDurableRelay`) instead of `zmq_proxy` ones.
    /// `openModelRatePerS`: instead of the closed loop, messages sent at this fixed rate (open
    /// model, as the scenario runner sends settlements), latency counted from each one's intended
    /// send time: the floor for the network's latency at that rate.
    public static func measure(executable: String, host: String = "127.0.0.1", basePort: Int, window: Int, seconds: Double,
                               frames: [[UInt8]], curve: CurveKeyPair? = nil, journals: String? = nil,
                               openModelRatePerS: Int? = nil) throws -> Result {
        let endpoints = (0...relayCount).map { "tcp://\(host):\(basePort + $0)" }
        var children: [Process] = []
        defer {
            for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
            for child in children { child.waitUntilExit() }
        }
        func start(_ arguments: [String]) throws {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: executable)
            child.arguments = arguments
            child.standardOutput = FileHandle.nullDevice
            if let curve {
                var environment = ProcessInfo.processInfo.environment
                environment[curveSecretVariable] = curve.secretKey
                child.environment = environment
            }
            try child.run()
            children.append(child)
        }
        // Durable: eight syncs in series, as a settlement waits for (the origin's journal of the
        // request, the insured county's decision, and each of the six on the way back).
        try start(["bench", "echo", "--bind", endpoints[relayCount]] + (journals.map { ["--journal", "\($0)/echo.journal"] } ?? []))
        for index in (0..<relayCount).reversed() {
            try start(["bench", "relay", "--front", endpoints[index], "--back", endpoints[index + 1]]
                      + (journals.map { ["--journal", "\($0)/relay-\(index).journal"] } ?? [])
                      + (journals != nil && index == 0 ? ["--sync-requests"] : []))
        }

        let context = try Context()
        let client = try context.socket(.dealer)
        try client.setLinger(milliseconds: 0)
        try client.setSendHighWaterMark(100_000)
        try client.setReceiveHighWaterMark(100_000)
        try client.setReceiveTimeout(milliseconds: 200)
        if let curve { try client.makeCurveClient(try CurveKeyPair.generate(), serverKey: curve.publicKey) }
        try client.connect(endpoints[0])
        // The chain is up when a message comes back (connections form in any order).
        let ready = Date().addingTimeInterval(10)
        var answered = false
        while !answered && Date() < ready {
            try client.send(frames)
            answered = try client.receive() != nil
        }
        guard answered else { throw SettleNetError(.bench, "the relay chain on \(host) ports \(basePort)...\(basePort + relayCount) did not answer within 10 s; run `settlenet bench relay --front tcp://\(host):\(basePort) --back tcp://\(host):\(basePort + 1)` by hand to see why a relay fails") }
        while try client.receive(wait: false) != nil {}   // late answers to the probes
        try client.setReceiveTimeout(milliseconds: 5_000)
        if let rate = openModelRatePerS {
            // Plaintext, the sender speaks ZMTP itself, as the scenario runner's hospitals do: the
            // floor for a load driver is then the same kind of sender's.
            guard curve == nil else { return try openModel(client, frames: frames, ratePerS: rate, seconds: seconds, window: window) }
            client.close()
            let native = try NativeDealer(endpoint: endpoints[0])
            let poller = try EventPoller([native])
            try native.send(frames, wait: false)
            let answered = Date().addingTimeInterval(10)
            while try native.receive(wait: false) == nil {
                guard Date() < answered else { throw SettleNetError(.bench, "the relay chain on \(host) did not answer a native link within 10 s (\(native.lastProblem ?? "no reason seen"))") }
                _ = try poller.wait(timeoutMs: 100)
            }
            return try openModel(native, frames: frames, ratePerS: rate, seconds: seconds, window: window)
        }

        for _ in 0..<window { try client.send(frames) }
        let warmUpEnds = monotonicSeconds() + 1
        var measuring = false, count = 0, started = 0.0, now = 0.0
        while true {
            guard try client.receive() != nil else { throw SettleNetError(.bench, "the relay chain on \(host) ports \(basePort)...\(basePort + relayCount) stopped answering for 5 s (a relay process died?)") }
            now = monotonicSeconds()
            if !measuring && now >= warmUpEnds { measuring = true; started = now; count = 0 }
            if measuring {
                count += 1
                if now - started >= seconds { break }
            }
            try client.send(frames)
        }
        return Result(processes: relayCount + 1, window: window, messageBytes: frames.reduce(0) { $0 + $1.count },
                      seconds: now - started, roundTrips: count, perSecond: Double(count) / (now - started))
    }

    /// Sends `frames`, each behind a sequence frame, at `ratePerS` for a second of warm-up and
    /// then `seconds`, and records each measured one's time from its intended send time to its return.
    static func openModel(_ client: any PolledSocket, frames: [[UInt8]], ratePerS: Int, seconds: Double, window: Int) throws -> Result {
        var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let warmUp = ratePerS, measured = Int(seconds * Double(ratePerS)), total = warmUp + measured
        let startUs = monotonicUs()
        func intendedUs(_ index: Int) -> Int64 { startUs + Int64(index) * 1_000_000 / Int64(ratePerS) }
        let poller = try EventPoller([client])
        var sent = 0, returned = 0, measuredReturns = 0
        var cpuAtWarmUpEnd: Int64?, wallAtWarmUpEnd: Int64 = 0
        let deadline = intendedUs(total) + 10_000_000
        while returned < total {
            var now = monotonicUs()
            guard now < deadline else {
                throw SettleNetError(.bench, "the relay chain returned \(returned) of \(total) messages sent at \(ratePerS)/s within 10 s of the last",
                                     advice: "a relay process died or the machine is overloaded; run the benchmark again with a lower --latency-rate")
            }
            while sent < total && intendedUs(sent) <= now {
                if sent == warmUp { (cpuAtWarmUpEnd, wallAtWarmUpEnd) = (threadCPUTimeUs() + Context.ioThreadsCPUTimeUs(), now) }
                var sequence = UInt64(sent).littleEndian
                try client.send([withUnsafeBytes(of: &sequence) { Array($0) }] + frames, wait: false)
                poller.used(client)
                sent += 1
            }
            // Waits end at the next send time to the microsecond, as the load driver's do.
            _ = try poller.wait(untilUs: startUs + LoadDriver.waitDeadlineUs(nowUs: now - startUs,
                                                                              dueUs: sent < total ? intendedUs(sent) - startUs : nil))
            now = monotonicUs()
            while let answer = try client.receive(wait: false) {
                // A readiness probe's late answer (the durable chain syncs it first) has no sequence.
                guard let first = answer.first, first.count == 8 else { continue }
                returned += 1
                let index = Int(first.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
                if index >= warmUp {
                    latency.record(UInt64(max(1, now - intendedUs(index))))
                    measuredReturns += 1
                }
            }
        }
        func ms(_ us: UInt64) -> Double { Double(us) / 1_000 }
        let driverCPUPct = cpuAtWarmUpEnd.map { 100 * Double(threadCPUTimeUs() + Context.ioThreadsCPUTimeUs() - $0) / Double(max(1, monotonicUs() - wallAtWarmUpEnd)) }
        return Result(processes: relayCount + 1, window: window, messageBytes: frames.reduce(0) { $0 + $1.count }, seconds: seconds,
                      roundTrips: measuredReturns, perSecond: Double(measuredReturns) / seconds, samples: nil,
                      openModelRatePerS: ratePerS, p50Ms: ms(latency.valueAtPercentile(50)), p99Ms: ms(latency.valueAtPercentile(99)),
                      p999Ms: ms(latency.valueAtPercentile(99.9)), driverCPUPct: driverCPUPct)
    }

    static let curveSecretVariable = "SETTLENET_BENCH_CURVE_SECRET"

    static func curveFromEnvironment() throws -> CurveKeyPair? {
        try ProcessInfo.processInfo.environment[curveSecretVariable].map { try CurveKeyPair(secretKey: $0) }
    }

    /// A relay left behind by a dead benchmark would hold its port: a watcher thread ends the
    /// process once its parent is gone (zmq_proxy itself never returns).
    static func diesWithParent() {
        let parent = getppid()
        let watcher = Thread {
            while getppid() == parent { usleep(200_000) }
            exit(0)
        }
        watcher.start()
    }
}


func monotonicSeconds() -> Double { Double(monotonicUs()) / 1e6 }
