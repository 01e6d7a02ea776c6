import Foundation
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

        enum CodingKeys: String, CodingKey {
            case processes, window, seconds
            case samples = "samples_per_s"
            case messageBytes = "message_bytes"
            case roundTrips = "round_trips"
            case perSecond = "round_trips_per_s"
        }
    }

    /// One relay process: a ROUTER bound at `front`, a DEALER connected to `back`, and
    /// `zmq_proxy` between them until the process is stopped.
    public static func runRelay(front: String, back: String) throws {
        diesWithParent()
        let context = try Context()
        let frontend = try context.socket(.router), backend = try context.socket(.dealer)
        for socket in [frontend, backend] {
            try socket.setSendHighWaterMark(100_000)
            try socket.setReceiveHighWaterMark(100_000)
        }
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
    /// "no answer leaves before its record is durable".
    public static func runDurableRelay(front: String, back: String, journal: String) throws {
        diesWithParent()
        let context = try Context()
        let frontend = try context.socket(.router), backend = try context.socket(.dealer)
        for socket in [frontend, backend] {
            try socket.setSendHighWaterMark(100_000)
            try socket.setReceiveHighWaterMark(100_000)
        }
        let descriptor = open(journal, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SettleNetError(.bench, "cannot open the journal", subject: journal, cause: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)) }
        try frontend.bind(front)
        try backend.connect(back)
        var poller = Poller([frontend, backend])
        while true {
            let readable = try poller.poll(timeoutMs: 1_000)
            if readable[0] {
                for _ in 0..<1_024 {
                    guard let request = try frontend.receive(wait: false) else { break }
                    try backend.send(request)
                }
            }
            if readable[1] {
                var answers: [[[UInt8]]] = []
                while answers.count < 1_024, let answer = try backend.receive(wait: false) { answers.append(answer) }
                let bytes = answers.flatMap { $0.joined() }
                let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard written == bytes.count, fdatasync(descriptor) == 0 else {
                    throw SettleNetError(.bench, "cannot make the journal durable", subject: journal, cause: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO))
                }
                for answer in answers { try frontend.send(answer) }
            }
        }
    }

    /// The far end: a ROUTER bound at `endpoint` that sends every message back as it came.
    public static func runEcho(bind endpoint: String) throws {
        diesWithParent()
        let context = try Context()
        let router = try context.socket(.router)
        try router.setSendHighWaterMark(100_000)
        try router.setReceiveHighWaterMark(100_000)
        if let keys = try curveFromEnvironment() { try router.makeCurveServer(keys, zapDomain: nil) }
        try router.bind(endpoint)
        while true { try Relay.forward(from: router, to: router) }
    }

    /// Starts the chain on `basePort...basePort+6`, keeps `window` messages of `frames` in
    /// flight for `seconds` after a second of warm-up, and stops the chain.
    ///
    /// `curve`: every link of the chain CURVE-encrypted, the servers holding this pair (no ZAP:
    /// this measures the encryption alone). The secret reaches the relays through their
    /// environment, not their command line.
    ///
    /// `journals`: a directory for durable relays (`runDurableRelay`) instead of `zmq_proxy` ones.
    public static func measure(executable: String, host: String = "127.0.0.1", basePort: Int, window: Int, seconds: Double,
                               frames: [[UInt8]], curve: CurveKeyPair? = nil, journals: String? = nil) throws -> Result {
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
        try start(["bench", "echo", "--bind", endpoints[relayCount]])
        for index in (0..<relayCount).reversed() {
            try start(["bench", "relay", "--front", endpoints[index], "--back", endpoints[index + 1]]
                      + (journals.map { ["--journal", "\($0)/relay-\(index).journal"] } ?? []))
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
