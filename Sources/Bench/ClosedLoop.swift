import Foundation
import Histogram
import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel
import LinkSecurity
import ZeroMQ

/// Drives a running cluster as fast as it answers: `window` requests always in flight, a new
/// one sent for each answer. Acting as the hospitals of every county, one connection per
/// institution as hospitals connect (one per county would meet each connection's share of the
/// county, SN-E3007, before the network's limit), but closed-loop: this finds the rate the
/// network sustains.
public final class ClosedLoop {
    public struct Result: Codable, Sendable {
        public var window: Int
        public var seconds: Double
        public var succeeded: Int
        public var errors: Int
        public var perSecond: Double
        public var p50Ms: Double
        public var p99Ms: Double
        public var errorCodes: [String: Int]
        /// Every round's rate, in the order measured (this result is the median one, with the
        /// errors of every round).
        public var samples: [Double]?
        /// How the cluster measured packs its nodes into processes (`Packing`), set by the bench.
        public var packing: String?
        /// CPU time the cluster's processes spent (user and system, every thread) per settlement
        /// answered in the measured window: steadier than a rate on a machine whose speed changes.
        public var cpuUsPerSettlement: Double?
        /// CPU time this loop spent (its thread and libzmq's I/O threads) per settlement
        /// answered in the measured window: what the harness took from the cores
        /// the cluster runs on.
        public var driverCPUUsPerSettlement: Double?
        /// Answers that left their request's outcome unknown (SN-E3002), each asked again
        /// (`reasksInDoubt`): warm-up and drain included.
        public var askedAgain: Int?

        enum CodingKeys: String, CodingKey {
            case window, seconds, succeeded, errors, samples, packing
            case askedAgain = "asked_again"
            case cpuUsPerSettlement = "cluster_cpu_us_per_settlement"
            case driverCPUUsPerSettlement = "driver_cpu_us_per_settlement"
            case perSecond = "per_s"
            case p50Ms = "p50_ms"
            case p99Ms = "p99_ms"
            case errorCodes = "error_codes"
        }
    }

    private let topology: Topology
    private let context: Context
    /// The cluster's CPU seconds so far (see `Result.cpuUsPerSettlement`), when the caller can tell.
    public var clusterCPUSeconds: (() -> Double)?
    private let links: HospitalLinks
    private var sequences = InstitutionSequences()

    /// `hospitalKeys`: the institutions' keys, on a secured topology. `native`: links speak ZMTP
    /// on this thread (`NativeDealer`, in clear or under CURVE) instead of through libzmq, whose
    /// I/O thread is woken for every send and every answer: CPU the harness would take from the
    /// cluster it measures.
    public init(topology: Topology, hospitalKeys: HospitalKeys? = nil, native: Bool = false) throws {
        self.topology = topology
        context = try Context(maxSockets: Int32(max(1_023, HospitalLinks.socketCount(topology, secured: true) + 64)))
        links = try HospitalLinks(context: context, topology: topology, keys: hospitalKeys, perInstitution: true,
                                  native: native) { socket in
            try socket.setLinger(milliseconds: 0)
            try socket.setSendHighWaterMark(1_000_000)
            try socket.setReceiveHighWaterMark(1_000_000)
        }
    }

    /// Cross-province settlements (outpatient and inpatient) with `window` in flight: a
    /// second of warm-up, then `seconds` measured.
    public func settlements(window: Int, seconds: Double, seed: UInt64) throws -> Result {
        let load = SettlementLoad(executor: .constantArrivalRate(ratePerS: 1), mix: .init(routes: [.crossProvince: 1], inpatient: 0.2),
                                  maxInFlight: window)
        var planner = try LoadPlanner(topology: topology, load: load, seed: seed)
        return try run(window: window, seconds: seconds) { [self] in
            let plan = planner.next()
            var factory = sequences.factory(for: plan.institution, treatment: plan.origin)
            let request = factory.settlement(psnNo: plan.psnNo, insured: plan.insured, bill: plan.bill, inpatient: plan.inpatient,
                                             nowMs: wallClockMs())
            return (plan.origin, request, nil)
        } records: { _ in 1 }
    }

    /// Clean upload batches of `batchSize` records from every county's hospitals, `window`
    /// batches in flight. What counts is what reached the national store, measured by the caller.
    public func uploads(window: Int, seconds: Double, batchSize: Int, seed: UInt64) throws -> (Result, recordsAccepted: Int) {
        var templates = try UploadTemplates(topology: topology, batchSize: batchSize, seed: seed)
        let version = Catalog.national().version
        var accepted = 0
        // A batch answered "timed out" is in doubt, not failed: its records may yet be stored, so
        // it is asked again under its msgid until its outcome is known, as a hospital does.
        let result = try run(window: window, seconds: seconds, reasksInDoubt: true) { [self] in
            let batch = templates.nextBatch()
            let request = sequences.hospitalRequest(.upload, institution: batch.institution, county: batch.county, nowMs: wallClockMs())
            return (batch.county, request, try WireCodec.uploadRequestBody(envelope: request, records: batch.records, catalogVersion: version))
        } records: { response in
            guard case .upload(let output)? = response.output else { return 0 }
            accepted += Int(output.accepted)
            return Int(output.accepted)
        }
        return (result, accepted)
    }

    /// The loop: `next` makes the next request and names its county; `records` is told of every
    /// successful answer (warm-up and drain included) and says how many units it carried (1 per
    /// settlement; accepted records per batch). Only the measured window counts toward the rate.
    /// `next` may give the request's body already encoded (nil: `links` encodes the request).
    /// `reasksInDoubt`: an answer that says the outcome is unknown (SN-E3002, timed out) is
    /// neither counted nor the end of its request: the same request goes again.
    private func run(window: Int, seconds: Double, reasksInDoubt: Bool = false, next: () throws -> (DivisionCode, WireRequest, [UInt8]?),
                     records: (WireResponse) -> Int) throws -> Result {
        /// What is in flight, by msgid: when it was sent, and what, to send again when its answer
        /// leaves its outcome unknown.
        var inFlight: [String: (sentUs: Int64, county: DivisionCode, request: WireRequest, body: [UInt8]?)] = [:]
        /// Requests in doubt and when to ask about them again (not at once: the county may not
        /// know the outcome yet either).
        var askAgain: [(atUs: Int64, msgid: String)] = []
        var askedAgainCount = 0
        func askedAgain(_ response: WireResponse) -> Bool {
            guard reasksInDoubt, response.errCode == ErrorCode.timeout.rawValue, inFlight[response.reqMsgid] != nil else { return false }
            askAgain.append((monotonicUs() + 500_000, response.reqMsgid))
            askedAgainCount += 1
            return true
        }
        func askDue() throws {
            let now = monotonicUs()
            while let first = askAgain.first, first.atUs <= now {
                askAgain.removeFirst()
                if let sent = inFlight[first.msgid] { try links.send(sent.request, body: sent.body, county: sent.county) }
            }
        }
        var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var succeeded = 0, errors = 0
        var errorCodes: [String: Int] = [:]
        func send() throws {
            let (county, request, body) = try next()
            inFlight[request.msgid] = (monotonicUs(), county, request, body)
            try links.send(request, body: body, county: county)
        }
        for _ in 0..<window { try send() }
        let warmUpEnds = monotonicUs() + 1_000_000
        var startedUs: Int64 = 0, now: Int64 = 0
        var cpuAtStart: Double?, cpuAtEnd: Double?
        var ownAtStart: Int64 = 0, ownAtEnd: Int64 = 0
        var lastAnswerUs = monotonicUs()
        measuring: while true {
            let readable = try links.poller.wait(timeoutMs: askAgain.isEmpty ? 1_000 : 100)
            now = monotonicUs()
            try askDue()
            if now - lastAnswerUs > 15_000_000 { throw SettleNetError(.bench, "no answer from the cluster of \(topology.file) for 15 s with \(inFlight.count) requests in flight; see its node logs (settlenet cluster logs)") }
            for index in readable {
                while let frames = try links.sockets[index].receive(wait: false) {
                    guard case .response(let response) = WireCodec.decode(frames[...]) else { continue }
                    if askedAgain(response) {
                        lastAnswerUs = now
                        continue
                    }
                    guard let sent = inFlight.removeValue(forKey: response.reqMsgid) else { continue }
                    lastAnswerUs = now
                    if startedUs == 0 && now >= warmUpEnds {
                        startedUs = now
                        cpuAtStart = clusterCPUSeconds?()
                        ownAtStart = ownCPUTimeUs()
                    }
                    // Counted before the warm-up check: the caller's totals include warm-up answers.
                    let units = response.infcode == 0 ? records(response) : 0
                    if startedUs > 0 {
                        if response.infcode == 0 {
                            succeeded += units
                            latency.record(UInt64(max(1, now - sent.sentUs)))
                        } else {
                            errors += 1
                            errorCodes[response.errCode.isEmpty ? "infcode \(response.infcode)" : response.errCode, default: 0] += 1
                        }
                    }
                    if startedUs > 0 && Double(now - startedUs) / 1e6 >= seconds {
                        cpuAtEnd = clusterCPUSeconds?()
                        ownAtEnd = ownCPUTimeUs()
                        break measuring
                    }
                    try send()
                }
            }
        }
        // Let what is still in flight finish, so the next phase starts on a quiet network. The
        // loop may have left a socket unread: each is asked before the first wait.
        links.poller.used(0..<links.sockets.count)
        let drainEnds = monotonicUs() + 15_000_000
        while !inFlight.isEmpty && monotonicUs() < drainEnds {
            let readable = try links.poller.wait(timeoutMs: askAgain.isEmpty ? 200 : 100)
            try askDue()
            for index in readable {
                while let frames = try links.sockets[index].receive(wait: false) {
                    if case .response(let response) = WireCodec.decode(frames[...]), !askedAgain(response),
                       inFlight.removeValue(forKey: response.reqMsgid) != nil, response.infcode == 0 {
                        _ = records(response)
                    }
                }
            }
        }
        let elapsed = Double(now - startedUs) / 1e6
        var result = Result(window: window, seconds: elapsed, succeeded: succeeded, errors: errors, perSecond: Double(succeeded) / elapsed,
                            p50Ms: Double(latency.valueAtPercentile(50)) / 1000, p99Ms: Double(latency.valueAtPercentile(99)) / 1000,
                            errorCodes: errorCodes)
        if let cpuAtStart, let cpuAtEnd, succeeded > 0 { result.cpuUsPerSettlement = (cpuAtEnd - cpuAtStart) * 1e6 / Double(succeeded) }
        if succeeded > 0 { result.driverCPUUsPerSettlement = Double(ownAtEnd - ownAtStart) / Double(succeeded) }
        if reasksInDoubt { result.askedAgain = askedAgainCount }
        return result
    }

    /// The loop's own CPU so far: its thread and libzmq's I/O threads, as every load driver
    /// here counts itself (`LoadDriver`, the relay chain's sender).
    private func ownCPUTimeUs() -> Int64 { threadCPUTimeUs() + Context.ioThreadsCPUTimeUs() }
}
