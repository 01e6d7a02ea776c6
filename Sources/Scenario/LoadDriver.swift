import Foundation
import NetworkTopology
import SettlementCore
import SettlementModel
import ZeroMQ

/// A moment of the run, for the live progress line.
public struct Progress: Sendable {
    public var elapsedS: Double
    public var durationS: Double
    public var targetRate: Double
    public var achievedRate: Double
    public var inFlight: Int
    public var errors: Int
    public var dropped: Int
}

/// Drives a scenario's settlement load against a running cluster, acting as the hospitals of
/// every county: one DEALER per county node, one thread owning them all. Requests leave at
/// their scheduled times; when `max_in_flight` answers are outstanding, a due arrival is
/// dropped and counted, never delayed.
public final class LoadDriver {
    private let topology: Topology
    private let load: SettlementLoad
    private let schedule: ArrivalSchedule
    private var planner: LoadPlanner
    private let context: Context
    private var sockets: [Socket] = []
    private var socketIndex: [DivisionCode: Int] = [:]
    private var sequences: [String: Int] = [:]
    /// How long to wait for answers after the last arrival before counting them unanswered
    /// (longer than a node's 10 s forward timeout, so the network's own answer comes first).
    public var drainTimeoutUs: Int64 = 15_000_000

    struct Outstanding {
        var plan: PlannedSettlement
        var intendedUs: Int64
        var isReversal: Bool
        var msgid: String
    }

    public init(topology: Topology, load: SettlementLoad, seed: UInt64, durationMs: Int64) throws {
        self.topology = topology
        self.load = load
        schedule = ArrivalSchedule(executor: load.executor, durationMs: durationMs)
        planner = try LoadPlanner(topology: topology, load: load, seed: seed)
        context = try Context()
        for county in topology.counties {
            let socket = try context.socket(.dealer)
            try socket.setLinger(milliseconds: 0)
            try socket.setSendHighWaterMark(1_000_000)
            try socket.setReceiveHighWaterMark(1_000_000)
            try socket.connect(topology.endpoint(of: county.id)!)
            socketIndex[county.id] = sockets.count
            sockets.append(socket)
        }
    }

    public var expectedArrivals: Int { schedule.expectedArrivals }

    public func run(progress: (Progress) -> Void) throws -> Measurement {
        var measurement = Measurement()
        var outstanding: [String: Outstanding] = [:]
        var settlementsInFlight = 0
        var arrivals = schedule.makeIterator()
        var nextArrival = arrivals.next()
        var poller = Poller(sockets)
        let start = monotonicUs()
        var lastProgressUs: Int64 = 0
        var answeredSinceProgress = 0
        var lastInFlightSecond = -1

        func send(_ plan: PlannedSettlement, intendedUs: Int64, reversalOf omsgid: String? = nil) throws -> String {
            let sequence = sequences[plan.institution, default: 0]
            sequences[plan.institution] = sequence + 1
            var factory = RequestFactory(institution: plan.institution, treatment: plan.origin, firstSequence: sequence)
            let now = wallClockMs()
            let request = if let omsgid {
                factory.reversal(omsgid: omsgid, psnNo: plan.psnNo, insured: plan.insured, inpatient: plan.inpatient, nowMs: now)
            } else {
                factory.settlement(psnNo: plan.psnNo, insured: plan.insured, bill: plan.bill, inpatient: plan.inpatient, nowMs: now)
            }
            try sockets[socketIndex[plan.origin]!].send(WireCodec.frames(request))
            outstanding[request.msgid] = Outstanding(plan: plan, intendedUs: intendedUs, isReversal: omsgid != nil, msgid: request.msgid)
            return request.msgid
        }

        while true {
            var now = monotonicUs() - start
            // Everything due goes out now; latency still counts from each intended time.
            while let due = nextArrival, due <= now {
                let plan = planner.next()
                if settlementsInFlight >= load.maxInFlight {
                    measurement.scheduledArrival(atUs: due, dropped: true, route: plan.route)
                } else {
                    measurement.scheduledArrival(atUs: due, dropped: false, route: plan.route)
                    _ = try send(plan, intendedUs: due)
                    settlementsInFlight += 1
                }
                nextArrival = arrivals.next()
            }
            if nextArrival == nil && (outstanding.isEmpty || now > schedule.durationUs + drainTimeoutUs) { break }

            let waitUs = nextArrival.map { $0 - now } ?? 50_000
            let readable = try poller.poll(timeoutMs: Int(max(0, min(50_000, waitUs)) / 1_000))
            now = monotonicUs() - start
            for (index, isReadable) in readable.enumerated() where isReadable {
                while let frames = try sockets[index].receive(wait: false) {
                    guard case .response(let response) = WireCodec.decode(frames[...]),
                          let item = outstanding.removeValue(forKey: response.reqMsgid) else { continue }
                    let ok = response.infcode == 0 && response.errMsg.isEmpty
                    if item.isReversal {
                        if ok { measurement.reversalsSucceeded += 1 } else {
                            measurement.reversalsFailed += 1
                            measurement.errorsByCode[response.errCode.isEmpty ? "unknown" : response.errCode, default: 0] += 1
                        }
                        continue
                    }
                    settlementsInFlight -= 1
                    answeredSinceProgress += 1
                    measurement.answered(route: item.plan.route, intendedUs: item.intendedUs, answeredUs: now,
                                         errorCode: ok ? nil : (response.errCode.isEmpty ? "unknown" : response.errCode))
                    if ok, case .settlement(let output)? = response.output {
                        if !AmountIdentities.violations(output).isEmpty { measurement.identityViolations += 1 }
                        if item.plan.reverseAfter {
                            measurement.reversalsAttempted += 1
                            _ = try send(item.plan, intendedUs: now, reversalOf: item.msgid)
                        }
                    }
                }
            }
            let second = Int(now / 1_000_000)
            if second != lastInFlightSecond {
                measurement.inFlight(settlementsInFlight, atUs: now)
                lastInFlightSecond = second
            }
            if now - lastProgressUs >= 1_000_000 {
                let elapsed = Double(now - lastProgressUs) / 1e6
                progress(Progress(elapsedS: Double(now) / 1e6, durationS: Double(schedule.durationUs) / 1e6,
                                  targetRate: schedule.rate(atUs: now), achievedRate: Double(answeredSinceProgress) / elapsed,
                                  inFlight: settlementsInFlight, errors: measurement.failed, dropped: measurement.dropped))
                lastProgressUs = now
                answeredSinceProgress = 0
            }
        }
        for item in outstanding.values where !item.isReversal { measurement.neverAnswered(route: item.plan.route) }
        let unansweredReversals = outstanding.values.filter(\.isReversal).count
        if unansweredReversals > 0 {
            measurement.reversalsFailed += unansweredReversals
            measurement.errorsByCode["no_answer", default: 0] += unansweredReversals
        }
        measurement.loadDurationUs = schedule.durationUs
        return measurement
    }
}

func monotonicUs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
}

func wallClockMs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
}
