import NetworkTopology
import SettlementCore
import SettlementModel

/// A moment of the run, for the live progress line.
public struct Progress: Sendable {
    public var elapsedS: Double
    public var durationS: Double
    public var targetRate: Double
    public var achievedRate: Double
    public var inFlight: Int
    public var errors: Int
    public var dropped: Int
    public var uploadBatches: Int = 0
    public var recordsRejected: Int = 0
}

/// The hospitals of a scenario's load, as a state machine on the time it is given: they send
/// each settlement, reversal and upload batch at its scheduled instant, ask again about what
/// was answered in doubt, run the data-governance loop, and measure what comes back. Time is
/// passed in (microseconds since the load began) and every request leaves through `outlet`, so
/// the same hospitals drive real nodes over sockets (`LoadDriver`) or simulated ones.
///
/// When `max_in_flight` answers are outstanding, a due arrival is dropped and counted, never delayed.
public final class Hospitals {
    /// Hands a request to the county node it is for (the institution's link).
    public typealias Outlet = (WireRequest, DivisionCode) throws -> Void

    private let topology: Topology
    private let load: SettlementLoad?
    private let schedule: ArrivalSchedule?
    private var planner: LoadPlanner?
    private let uploadLoad: UploadLoad?
    private let uploadSchedule: ArrivalSchedule?
    private var generator: DirtyDataGenerator?
    public let durationUs: Int64
    private let outlet: Outlet
    /// The wall clock the requests are stamped with (their msgids and inf_time).
    private let wallClockMs: () -> Int64
    private var sequences = InstitutionSequences()
    /// How long to wait for answers after the last arrival before counting them unanswered
    /// (longer than a node's 10 s forward timeout, so the network's own answer comes first).
    public var drainTimeoutUs: Int64 = 15_000_000

    struct Outstanding {
        var plan: PlannedSettlement
        var intendedUs: Int64
        var isReversal: Bool
        var msgid: String
        var request: WireRequest
        /// The same msgid asked again because its first answer was indefinite.
        var isRequery = false
    }

    /// How often a settlement whose outcome is unknown is asked about again (same msgid), and
    /// how long after the load the driver keeps asking before counting it unresolved.
    public var requeryIntervalUs: Int64 = 500_000
    /// A hospital gives up waiting after this long (the county's default budget, 8 s, plus a
    /// margin) and asks again later with the same msgid: a frozen county cannot answer anyone,
    /// so only the hospital's own deadline bounds the wait.
    public var clientTimeoutUs: Int64 = 8_500_000
    public var resolutionTimeoutUs: Int64 = 30_000_000

    public init(topology: Topology, load: SettlementLoad?, uploads: UploadLoad? = nil, catalog: Catalog = .national(),
                seed: UInt64, durationMs: Int64, wallClockMs: @escaping () -> Int64, outlet: @escaping Outlet) throws {
        self.topology = topology
        self.load = load
        self.outlet = outlet
        self.wallClockMs = wallClockMs
        durationUs = durationMs * 1_000
        schedule = load.map { ArrivalSchedule(executor: $0.executor, durationMs: durationMs) }
        planner = try load.map { try LoadPlanner(topology: topology, load: $0, seed: seed) }
        uploadLoad = uploads
        let batchSchedule = uploads.map { ArrivalSchedule(executor: $0.executor, durationMs: durationMs) }
        uploadSchedule = batchSchedule
        generator = uploads.map { uploads in
            // A duplicate copies a record about two seconds old: by then its original is stored.
            let batchesPerSecond = max(1, (batchSchedule?.expectedArrivals ?? 1) / max(1, Int(durationMs / 1_000)))
            return DirtyDataGenerator(topology: topology, catalog: catalog, batchSize: uploads.batchSize,
                                      dirtyRate: uploads.dirtyRate, kinds: uploads.dirtyKinds, seed: seed &+ 4_101,
                                      duplicateLagBatches: 2 * batchesPerSecond, governance: uploads.governance)
        }
        arrivals = schedule?.makeIterator()
        nextArrival = arrivals?.next()
        batchArrivals = uploadSchedule?.makeIterator()
        nextBatch = batchArrivals?.next()
        governance = uploads?.governance == nil ? nil : Governance()
    }

    public var expectedArrivals: Int { schedule?.expectedArrivals ?? 0 }
    public var expectedBatches: Int { uploadSchedule?.expectedArrivals ?? 0 }

    struct PendingBatch {
        var plan: UploadBatchPlan
        var intendedUs: Int64
        var request: WireRequest
        /// Answered indefinitely: send the same batch (same msgid) again at this time. Every
        /// tier answers a batch it decided from its stored decision, so nothing counts twice.
        var resendAtUs: Int64?
        /// Corrected records re-uploaded by the governance loop, not the scheduled load.
        var isCorrection = false
    }

    /// The institutions' side of the data-governance loop: what they were told to correct, what
    /// waits to be re-uploaded, and what they asked their county.
    struct Governance {
        /// "setl_id|institution" of every rejected duplicate an institution has dealt with.
        var handled: Set<String> = []
        /// Duplicates sent, by "setl_id|institution": their county, to replace them once a
        /// ticket names them (a duplicate found nationally reaches the institution only so).
        var duplicatesSent: [String: DivisionCode] = [:]
        /// Corrected records waiting for their re-upload batch, per institution.
        var queued: [String: (county: DivisionCode, records: [UploadRecord])] = [:]
        /// Ticket lists asked and not yet answered: msgid to institution.
        var listsInFlight: [String: String] = [:]
        var lastListRoundUs: Int64 = 0
        var lastFlushUs: Int64 = 0
        /// Whether an answer of the current list round named an open ticket (or the round
        /// began before the load was over).
        var roundBusy = false
        /// Consecutive list rounds after the load in which no institution had a ticket open.
        var quietRounds = 0
    }
    /// How often each institution asks its county for open upload_reject tickets, and how often
    /// corrected records are re-uploaded.
    public var ticketListIntervalUs: Int64 = 1_000_000
    public var correctionFlushIntervalUs: Int64 = 500_000

    // The run so far.
    private var measurement = Measurement()
    private var uploads = UploadMeasurement()
    private var outstanding: [String: Outstanding] = [:]
    private var batches: [String: PendingBatch] = [:]
    /// When each accepted record's batch was answered (stored at its provincial tier).
    private var storedAtUs: [String: Int64] = [:]
    private var settlementsInFlight = 0
    private var arrivals: ArrivalSchedule.Iterator?
    private var nextArrival: Int64?
    private var batchArrivals: ArrivalSchedule.Iterator?
    private var nextBatch: Int64?
    private let catalogVersion = Catalog.national().version
    private var lastProgressUs: Int64 = 0
    private var answeredSinceProgress = 0
    private var lastInFlightSecond = -1
    private var governance: Governance?
    /// Settlements answered indefinitely, waiting to be asked about again.
    private var inDoubt: [String: (item: Outstanding, nextQueryUs: Int64)] = [:]
    /// First attempts in send order, to find those past the hospital's deadline cheaply.
    private var sentOrder: [(sentUs: Int64, msgid: String)] = []
    private var sentHead = 0

    /// When the next scheduled arrival (settlement or upload batch) is due, if any.
    public var nextDueUs: Int64? {
        nextArrival.map { min($0, nextBatch ?? .max) } ?? nextBatch
    }

    /// Sends everything due by `now`, gives up on what waited past the hospital's deadline, and
    /// asks again about what is in doubt.
    public func step(nowUs now: Int64) throws {
        // Everything due goes out now; latency still counts from each intended time.
        while let due = nextBatch, due <= now, let uploadLoad {
            // Only a record stored at the provincial tier at least a second ago is copied: by
            // then it is on its way to (or in) the national store, so the copy meets it.
            let plan = generator!.nextBatch(canDuplicate: { record in
                storedAtUs[record.setlID].map { now - $0 >= 1_000_000 } ?? false
            })
            uploads.batchesScheduled += 1
            if batches.count >= uploadLoad.maxInFlight {
                uploads.batchesDropped += 1
            } else {
                let request = try sendBatch(plan, catalogVersion: catalogVersion)
                batches[request.msgid] = PendingBatch(plan: plan, intendedUs: due, request: request)
                uploads.batchesSent += 1
                uploads.recordsSent += plan.records.count
                for generated in plan.records {
                    let key = UploadMeasurement.key(generated.record.setlID, generated.record.fixmedinsCode)
                    if let kind = generated.dirtyKind {
                        uploads.dirtySent += 1
                        uploads.injectedByKind[kind, default: 0] += 1
                        if let rule = generated.expectedRule { uploads.injectedByRule[rule, default: 0] += 1 }
                        uploads.dirtyKeys.insert(key)
                        if kind == "duplicate", governance != nil {
                            governance!.duplicatesSent[UploadMeasurement.key(generated.record.setlID, plan.institution)] = plan.county
                        }
                    } else {
                        uploads.cleanSent += 1
                        uploads.cleanKeys.insert(key)
                    }
                }
            }
            nextBatch = batchArrivals?.next()
        }
        while let due = nextArrival, due <= now, let load, planner != nil {
            let plan = planner!.next()
            measurement.plan.mix(plan, dueUs: due)
            if settlementsInFlight >= load.maxInFlight {
                measurement.scheduledArrival(atUs: due, dropped: true, route: plan.route)
            } else {
                measurement.scheduledArrival(atUs: due, dropped: false, route: plan.route)
                sentOrder.append((now, try send(plan, intendedUs: due)))
                settlementsInFlight += 1
            }
            nextArrival = arrivals?.next()
        }
        for (msgid, batch) in batches where (batch.resendAtUs ?? .max) <= now {
            try outlet(batch.request, batch.plan.county)
            batches[msgid]!.resendAtUs = nil
        }
        if governance != nil, let uploadLoad {
            try stepGovernance(&governance!, uploads: &uploads, batches: &batches, now: now,
                               loadOver: nextBatch == nil, batchSize: uploadLoad.batchSize, catalogVersion: catalogVersion)
        }
        // The hospital's own deadline: past it, an unanswered settlement is in doubt.
        while sentHead < sentOrder.count, now - sentOrder[sentHead].sentUs >= clientTimeoutUs {
            let msgid = sentOrder[sentHead].msgid
            sentHead += 1
            guard let item = outstanding[msgid], !item.isRequery else { continue }
            outstanding[msgid] = nil
            if item.isReversal {
                // No answer at all (its origin county may have crashed): asked again like a settlement.
                inDoubt[msgid] = (item, now + requeryIntervalUs)
                continue
            }
            settlementsInFlight -= 1
            measurement.answered(route: item.plan.route, intendedUs: item.intendedUs, answeredUs: now, errorCode: "client_timeout")
            inDoubt[msgid] = (item, now + requeryIntervalUs)
        }
        if sentHead > 4_096 && sentHead * 2 > sentOrder.count {
            sentOrder.removeFirst(sentHead)
            sentHead = 0
        }
        for (msgid, doubt) in inDoubt where doubt.nextQueryUs <= now {
            if let asked = outstanding[msgid] {
                // A re-ask unanswered past the hospital's deadline was lost (its county went down
                // with the connection): asked again. Before, it was never asked again, and the
                // settlement stayed in doubt at the end (found by `settlenet sim fuzz`, seed 1054).
                guard asked.isRequery, now - (doubt.nextQueryUs - requeryIntervalUs) >= clientTimeoutUs else { continue }
            }
            var item = doubt.item
            item.isRequery = true
            try outlet(item.request, item.plan.origin)
            outstanding[msgid] = item
            inDoubt[msgid]!.nextQueryUs = now + requeryIntervalUs
        }
    }

    /// Whether the load is over: every arrival sent, and every answer in (with the governance
    /// loop, every upload_reject ticket closed), or the drain's time is up.
    public func isFinished(nowUs: Int64) -> Bool {
        guard nextArrival == nil && nextBatch == nil else { return false }
        // With the governance loop, until every upload_reject ticket is closed.
        let governed = governance.map { $0.queued.isEmpty && $0.quietRounds >= 2 } ?? true
        let answered = outstanding.isEmpty && batches.isEmpty && inDoubt.isEmpty && governed
        let drained = outstanding.values.allSatisfy(\.isRequery) && batches.isEmpty
        return answered || nowUs > durationUs + drainTimeoutUs + (drained ? resolutionTimeoutUs : 0)
    }

    /// One message from a county node, arrived at `now`.
    public func received(_ frames: [[UInt8]], nowUs now: Int64) throws {
        guard case .response(let response) = WireCodec.decode(frames[...]) else { return }
        if let pending = batches[response.reqMsgid], pending.resendAtUs == nil,
           response.errCode == ErrorCode.timeout.rawValue {
            // Outcome unknown: ask again with the same msgid rather than count it failed.
            batches[response.reqMsgid]!.resendAtUs = now + requeryIntervalUs
            return
        }
        if let institution = governance?.listsInFlight.removeValue(forKey: response.reqMsgid) {
            ticketsListed(response, institution: institution, governance: &governance!, uploads: &uploads)
            return
        }
        if let batch = batches.removeValue(forKey: response.reqMsgid) {
            if batch.isCorrection {
                uploads.recordCorrections(response, for: batch.plan)
                return
            }
            uploads.record(response, for: batch.plan, latencyUs: now - batch.intendedUs)
            if governance != nil { correctRejected(response, in: batch.plan, governance: &governance!, uploads: &uploads) }
            if response.infcode == 0, case .upload(let output)? = response.output {
                measurement.uploadAnswered(atUs: now, records: batch.plan.records.count, rejected: output.rejects.count)
                let refused = Set(output.rejects.map(\.index))
                for (index, generated) in batch.plan.records.enumerated()
                where generated.dirtyKind == nil && !refused.contains(Int32(index)) {
                    storedAtUs[generated.record.setlID] = now
                }
            }
            return
        }
        guard let item = outstanding.removeValue(forKey: response.reqMsgid) else { return }
        let ok = response.infcode == 0 && response.errMsg.isEmpty
        let indefinite = response.errCode == ErrorCode.timeout.rawValue
        if item.isRequery {
            if indefinite { return }   // still being resolved: asked again later
            inDoubt[item.msgid] = nil
            if item.isReversal {
                if ok { measurement.reversalsSucceeded += 1 } else { measurement.reversalsFailed += 1 }
            } else {
                measurement.resolved(ok: ok, errorCode: response.errCode)
            }
            return
        }
        if indefinite {
            // Outcome unknown: asked again with the same msgid until the answer is definite.
            // A reversal is idempotent by its msgid like a settlement.
            inDoubt[item.msgid] = (item, now + requeryIntervalUs)
            if item.isReversal { return }
        }
        if item.isReversal {
            if ok { measurement.reversalsSucceeded += 1 } else {
                measurement.reversalsFailed += 1
                measurement.errorsByCode[response.errCode.isEmpty ? "unknown" : response.errCode, default: 0] += 1
            }
            return
        }
        settlementsInFlight -= 1
        answeredSinceProgress += 1
        measurement.answered(route: item.plan.route, intendedUs: item.intendedUs, answeredUs: now,
                             errorCode: ok ? nil : (response.errCode.isEmpty ? "unknown" : response.errCode))
        if ok, case .settlement(let output)? = response.output {
            if !AmountIdentities.violations(output).isEmpty { measurement.identityViolations += 1 }
            if item.plan.reverseAfter {
                measurement.reversalsAttempted += 1
                sentOrder.append((now, try send(item.plan, intendedUs: now, reversalOf: item.msgid)))
            }
        }
    }

    /// Samples what is in flight once a second, and reports progress every second.
    public func noteProgress(nowUs now: Int64, _ progress: (Progress) -> Void) {
        let second = Int(now / 1_000_000)
        if second != lastInFlightSecond {
            measurement.inFlight(settlementsInFlight, atUs: now)
            lastInFlightSecond = second
        }
        if now - lastProgressUs >= 1_000_000 {
            let elapsed = Double(now - lastProgressUs) / 1e6
            progress(Progress(elapsedS: Double(now) / 1e6, durationS: Double(durationUs) / 1e6,
                              targetRate: schedule?.rate(atUs: now) ?? 0, achievedRate: Double(answeredSinceProgress) / elapsed,
                              inFlight: settlementsInFlight, errors: measurement.failed, dropped: measurement.dropped,
                              uploadBatches: uploads.batchesAnswered, recordsRejected: uploads.rejectedAsExpected + uploads.rejectedOtherwise))
            lastProgressUs = now
            answeredSinceProgress = 0
        }
    }

    /// The run's figures, once it is finished.
    public func finish() -> (Measurement, UploadMeasurement) {
        for item in outstanding.values where !item.isReversal && !item.isRequery { measurement.neverAnswered(route: item.plan.route) }
        measurement.unresolved = inDoubt.count
        let unansweredReversals = outstanding.values.filter(\.isReversal).count
        if unansweredReversals > 0 {
            measurement.reversalsFailed += unansweredReversals
            measurement.errorsByCode["no_answer", default: 0] += unansweredReversals
        }
        measurement.loadDurationUs = durationUs
        uploads.batchesUnanswered = batches.count
        if !batches.isEmpty { uploads.errorsByCode["no_answer", default: 0] += batches.count }
        return (measurement, uploads)
    }


    private func send(_ plan: PlannedSettlement, intendedUs: Int64, reversalOf omsgid: String? = nil) throws -> String {
        var factory = sequences.factory(for: plan.institution, treatment: plan.origin)
        let now = wallClockMs()
        let request = if let omsgid {
            factory.reversal(omsgid: omsgid, psnNo: plan.psnNo, insured: plan.insured, inpatient: plan.inpatient, nowMs: now)
        } else {
            factory.settlement(psnNo: plan.psnNo, insured: plan.insured, bill: plan.bill, inpatient: plan.inpatient, nowMs: now)
        }
        try outlet(request, plan.origin)
        outstanding[request.msgid] = Outstanding(plan: plan, intendedUs: intendedUs, isReversal: omsgid != nil,
                                                 msgid: request.msgid, request: request)
        return request.msgid
    }

    // MARK: Data governance

    /// The institutions' turn: re-upload what waits to be corrected, and ask the counties for
    /// open upload_reject tickets (what was found above the county after the answer left).
    private func stepGovernance(_ governance: inout Governance, uploads: inout UploadMeasurement,
                                batches: inout [String: PendingBatch], now: Int64, loadOver: Bool, batchSize: Int,
                                catalogVersion: String) throws {
        if now - governance.lastFlushUs >= correctionFlushIntervalUs {
            governance.lastFlushUs = now
            for institution in governance.queued.keys.sorted() {
                guard batches.count < (uploadLoad?.maxInFlight ?? 0), let entry = governance.queued[institution] else { break }
                let records = Array(entry.records.prefix(batchSize))
                let rest = Array(entry.records.dropFirst(records.count))
                governance.queued[institution] = rest.isEmpty ? nil : (entry.county, rest)
                let plan = UploadBatchPlan(county: entry.county, institution: institution,
                                           records: records.map { GeneratedRecord(record: $0) })
                let request = try sendBatch(plan, catalogVersion: catalogVersion)
                batches[request.msgid] = PendingBatch(plan: plan, intendedUs: now, request: request, isCorrection: true)
                uploads.correctionsSent += records.count
                for record in records { uploads.cleanKeys.insert(UploadMeasurement.key(record.setlID, record.fixmedinsCode)) }
            }
        }
        if !governance.listsInFlight.isEmpty && now - governance.lastListRoundUs >= 5 * ticketListIntervalUs {
            // A county that does not answer (paused, down): this round tells nothing.
            governance.listsInFlight = [:]
            governance.quietRounds = 0
        }
        guard governance.listsInFlight.isEmpty, now - governance.lastListRoundUs >= ticketListIntervalUs else { return }
        governance.lastListRoundUs = now
        governance.roundBusy = !loadOver
        for county in topology.counties {
            for institution in topology.institutions(of: county.id) {
                var request = hospitalRequest(.ticket, institution: institution, county: county.id)
                var input = TicketInput()
                input.event = "list"
                input.subject = institution
                request.input = .ticket(input)
                try outlet(request, county.id)
                governance.listsInFlight[request.msgid] = institution
            }
        }
    }

    /// An institution's first-upload batch was answered: it corrects each rejected record it
    /// generated dirty and, once per kind of defect cited, may fix that cause.
    private func correctRejected(_ response: WireResponse, in plan: UploadBatchPlan, governance: inout Governance,
                                 uploads: inout UploadMeasurement) {
        guard response.infcode == 0, case .upload(let output)? = response.output, !output.rejects.isEmpty else { return }
        var kinds: Set<String> = []
        for reject in output.rejects where reject.index >= 0 && Int(reject.index) < plan.records.count {
            // A batch is answered once; only a duplicate may also be named by a ticket later.
            let generated = plan.records[Int(reject.index)]
            guard generated.isDirty, generated.dirtyKind != "duplicate"
                    || governance.handled.insert(UploadMeasurement.key(generated.record.setlID, plan.institution)).inserted,
                  let corrected = generator!.correction(of: generated, county: plan.county, institution: plan.institution) else { continue }
            governance.queued[plan.institution, default: (plan.county, [])].records.append(corrected)
            if let kind = DirtyDataGenerator.kind(ofRule: reject.ruleID) { kinds.insert(kind) }
        }
        feedback(kinds, to: plan.institution, uploads: &uploads)
    }

    /// The institution was told about these kinds of defect: once per kind, it may fix the cause.
    private func feedback(_ kinds: Set<String>, to institution: String, uploads: inout UploadMeasurement) {
        for kind in kinds.sorted() where generator!.feedback(institution: institution, kind: kind) { uploads.causesFixed += 1 }
    }

    /// A county listed an institution's open upload_reject tickets: each record not dealt with
    /// yet (a duplicate found above the answer's tier) is replaced by the institution's own.
    private func ticketsListed(_ response: WireResponse, institution: String, governance: inout Governance,
                               uploads: inout UploadMeasurement) {
        guard response.infcode == 0, case .ticket(let output)? = response.output else {
            uploads.errorsByCode[response.errCode.isEmpty ? "unknown" : response.errCode, default: 0] += 1
            return
        }
        var kinds: Set<String> = []
        for ticket in output.tickets {
            for setlID in ticket.setlIds {
                let key = UploadMeasurement.key(setlID, institution)
                guard let county = governance.duplicatesSent[key], governance.handled.insert(key).inserted else { continue }
                let own = generator!.replacement(forDuplicate: setlID, county: county, institution: institution)
                governance.queued[institution, default: (county, [])].records.append(own)
                if let kind = DirtyDataGenerator.kind(ofRule: ticket.code) { kinds.insert(kind) }
            }
        }
        feedback(kinds, to: institution, uploads: &uploads)
        if !output.tickets.isEmpty { governance.roundBusy = true }
        if governance.listsInFlight.isEmpty { governance.quietRounds = governance.roundBusy ? 0 : governance.quietRounds + 1 }
    }

    /// An envelope from `institution` to its own county, with the institution's next msgid.
    private func hospitalRequest(_ code: TransactionCode, institution: String, county: DivisionCode) -> WireRequest {
        sequences.hospitalRequest(code, institution: institution, county: county, nowMs: wallClockMs())
    }

    /// Sends one upload batch as its hospital, to its county node.
    private func sendBatch(_ plan: UploadBatchPlan, catalogVersion: String) throws -> WireRequest {
        var request = hospitalRequest(.upload, institution: plan.institution, county: plan.county)
        var input = UploadInput()
        input.records = plan.records.map(\.record)
        input.catalogVersion = catalogVersion
        request.input = .upload(input)
        try outlet(request, plan.county)
        return request
    }
}
