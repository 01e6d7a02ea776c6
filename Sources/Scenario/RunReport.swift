import Reconciliation
/// What a scenario run measured: encoded as report.json (field names are the report's public
/// interface: thresholds and CI gates name them by dotted path), rendered as report.md and
/// report.html. Latencies are milliseconds read from HDR histograms; rates are per second.
public struct RunReport: Codable, Sendable {
    public var scenario: String
    public var seed: UInt64
    /// What the seed planned (`PlanDigest`): the same for two runs of the same scenario and seed.
    public var planDigest: String?
    public var topology: String
    /// ISO 8601, UTC.
    public var startedAt: String
    public var durationS: Double
    /// Every threshold passed.
    public var passed: Bool
    public var settlements: SettlementFigures
    public var reversals: ReversalFigures
    public var errors: ErrorFigures
    /// One entry per second of the run, in order; per `timelineStepS` seconds when that is set.
    public var timeline: [TimelinePoint]
    /// Seconds each timeline point covers, when more than one (a run of over an hour).
    public var timelineStepS: Int?
    /// Where the scenario's stages begin, in seconds from the start (for chart marks).
    public var stages: [StageMark]
    public var thresholds: [ThresholdResult]
    public var machine: MachineInfo
    /// Present when the scenario drove uploads.
    public var uploads: UploadFigures?
    public var dirtyData: DirtyDataFigures?
    /// The faults injected, with their actual start and end.
    public var faults: [FaultRecord] = []
    public var tickets: TicketFigures?
    /// Every ledger checked against the others at the end of the run (`settlenet reconcile`).
    public var reconciliation: ReconciliationFigures?
    /// Present when the scenario stepped its load in multiples of a baseline (`scale:`).
    public var scale: ScaleFigures?
    /// How the cluster's nodes were packed into processes, when they were.
    public var pack: String?
    /// The load driver's own cost, so that a reader can tell the network's limit from the harness's.
    public var driver: DriverFigures?
    /// Present when the network was simulated (`settlenet sim`): on which model, at what cost.
    public var simulation: SimulationFigures?
    /// Time per hop by pair of tiers, each node's load and errors, the route classes' paths.
    public var network: NetworkFigures?

    enum CodingKeys: String, CodingKey {
        case scenario, seed, topology, passed, settlements, reversals, errors, timeline, stages, thresholds, machine, uploads, faults, tickets
        case reconciliation, scale, pack, driver, simulation, network
        case dirtyData = "dirty_data"
        case planDigest = "plan_digest"
        case startedAt = "started_at"
        case durationS = "duration_s"
        case timelineStepS = "timeline_step_s"
    }
}

public struct LatencySummary: Codable, Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double
}

public struct SettlementFigures: Codable, Sendable {
    /// Arrivals the schedule called for (sent + dropped).
    public var scheduled: Int
    /// Requests actually sent.
    public var attempted: Int
    public var succeeded: Int
    /// Answered with an error (infcode -1), plus those never answered (`unanswered`).
    public var failed: Int
    /// Arrivals not sent because max_in_flight was reached (open model: counted, never skipped).
    public var dropped: Int
    /// Sent but never answered before the run's drain deadline.
    public var unanswered: Int
    /// failed / attempted.
    public var errorRate: Double
    /// succeeded per second of load.
    public var throughputPerS: Double
    /// Target arrivals per second averaged over the load.
    public var targetRatePerS: Double
    public var latencyMs: LatencySummary
    public var byRoute: [String: RouteFigures]
    /// Settlements whose amount identities did not hold (must be 0).
    public var identityViolations: Int
    /// First answered indefinitely (SN-E3002), then resolved: no longer in effect after a
    /// correction reversal (reversed or cancelled), settled after all, or refused.
    public var reversed: Int
    public var resolvedSettled: Int
    public var resolvedRefused: Int
    /// Still in doubt at the end of the run: must be 0.
    public var unresolved: Int

    enum CodingKeys: String, CodingKey {
        case scheduled, attempted, succeeded, failed, dropped, unanswered
        case errorRate = "error_rate"
        case throughputPerS = "throughput_per_s"
        case targetRatePerS = "target_rate_per_s"
        case latencyMs = "latency_ms"
        case byRoute = "by_route"
        case identityViolations = "identity_violations"
        case reversed, unresolved
        case resolvedSettled = "resolved_settled"
        case resolvedRefused = "resolved_refused"
    }
}

public struct RouteFigures: Codable, Sendable {
    public var attempted: Int
    public var succeeded: Int
    public var failed: Int
    public var throughputPerS: Double
    public var latencyMs: LatencySummary

    enum CodingKeys: String, CodingKey {
        case attempted, succeeded, failed
        case throughputPerS = "throughput_per_s"
        case latencyMs = "latency_ms"
    }
}

public struct ReversalFigures: Codable, Sendable {
    public var attempted: Int
    public var succeeded: Int
    public var failed: Int
}

public struct ErrorFigures: Codable, Sendable {
    /// Error code (SN-Exxxx, or "no_answer") to count.
    public var byCode: [String: Int]
    /// Error answers that were definite (it certainly did not happen) or indefinite (it may have).
    public var definite: Int
    public var indefinite: Int
    /// How fast error answers came back, from the intended send time.
    public var responseLatencyMs: LatencySummary

    enum CodingKeys: String, CodingKey {
        case byCode = "by_code"
        case definite, indefinite
        case responseLatencyMs = "response_latency_ms"
    }
}

public struct TimelinePoint: Codable, Sendable {
    /// Seconds from the start of the load (the point covers [second, second + 1), or
    /// [second, second + timeline_step_s)); its rates are per second.
    public var second: Int
    public var targetRate: Double
    /// Answers (success or error) received in this second.
    public var achievedRate: Double
    public var succeeded: Int
    public var errors: Int
    public var dropped: Int
    public var inFlight: Int
    public var latencyP50Ms: Double
    public var latencyP99Ms: Double
    /// How long the error answers of this second took (p99).
    public var errorLatencyP99Ms: Double
    /// Upload records answered in this second, refused among them, and the refused share in %
    /// (hospitals' answers: county, city and provincial rejects).
    public var recordsAnswered: Int
    public var recordsRejected: Int
    public var dirtyRatePct: Double
    /// Error tickets open in the national registry at the end of this second (the backlog).
    public var ticketsOpen: Int?

    enum CodingKeys: String, CodingKey {
        case second, succeeded, errors, dropped
        case ticketsOpen = "tickets_open"
        case errorLatencyP99Ms = "error_latency_p99_ms"
        case recordsAnswered = "records_answered"
        case recordsRejected = "records_rejected"
        case dirtyRatePct = "dirty_rate_pct"
        case targetRate = "target_rate"
        case achievedRate = "achieved_rate"
        case inFlight = "in_flight"
        case latencyP50Ms = "latency_p50_ms"
        case latencyP99Ms = "latency_p99_ms"
    }
}

public struct StageMark: Codable, Sendable {
    public var index: Int
    public var startS: Double
    public var label: String

    enum CodingKeys: String, CodingKey {
        case index, label
        case startS = "start_s"
    }
}

public struct ThresholdResult: Codable, Sendable {
    public var path: String
    public var condition: String
    /// The measured value, or nil when the path names nothing numeric in the report.
    public var value: Double?
    public var passed: Bool
}

public struct MachineInfo: Codable, Sendable {
    public var cores: Int
    public var build: String
}

/// The upload load (4101): batches, records and what reached the national store.
public struct UploadFigures: Codable, Sendable {
    public var batches: Int
    public var batchesDropped: Int
    public var batchesFailed: Int
    public var batchesUnanswered: Int
    public var recordsSent: Int
    /// Records the provincial tier stored (the hospitals' answers).
    public var acceptedProvincial: Int
    /// Records that reached the national store during the run.
    public var acceptedNational: Int
    public var throughputRecordsPerS: Double
    /// From the intended send time of a batch to its answer (stored at the provincial tier).
    public var batchLatencyMs: LatencySummary

    enum CodingKeys: String, CodingKey {
        case batches
        case batchesDropped = "batches_dropped"
        case batchesFailed = "batches_failed"
        case batchesUnanswered = "batches_unanswered"
        case recordsSent = "records_sent"
        case acceptedProvincial = "accepted_provincial"
        case acceptedNational = "accepted_national"
        case throughputRecordsPerS = "throughput_records_per_s"
        case batchLatencyMs = "batch_latency_ms"
    }
}

public struct TierDataFigures: Codable, Sendable {
    public var received: Int
    public var accepted: Int
    public var rejected: Int
    /// rejected / received at this tier.
    public var rate: Double
    /// received = accepted + rejected held at every node of the tier.
    public var accountingExact: Bool

    enum CodingKeys: String, CodingKey {
        case received, accepted, rejected, rate
        case accountingExact = "accounting_exact"
    }
}

public struct RuleDataFigures: Codable, Sendable {
    public var injected: Int
    public var detected: Int
    public var tier: String
    public var checks: String
}

/// Dirty data: what the generator injected against what each tier detected.
public struct DirtyDataFigures: Codable, Sendable {
    public var injected: Int
    public var detected: Int
    /// Dirty records that reached the national store.
    public var leaked: Int
    /// Clean records rejected anywhere.
    public var falseRejects: Int
    /// Dirty rejected at the rule and tier expected of them.
    public var detectedAsExpected: Int
    public var injectedRate: Double
    public var detectedRate: Double
    public var leakRate: Double
    public var falseRejectRate: Double
    public var byTier: [String: TierDataFigures]
    public var byRule: [String: RuleDataFigures]
    public var byKind: [String: Int]
    public var accountingExact: Bool
    /// The data-governance loop, when the scenario runs it.
    public var governance: GovernanceFigures?

    enum CodingKeys: String, CodingKey {
        case injected, detected, leaked, governance
        case falseRejects = "false_rejects"
        case detectedAsExpected = "detected_as_expected"
        case injectedRate = "injected_rate"
        case detectedRate = "detected_rate"
        case leakRate = "leak_rate"
        case falseRejectRate = "false_reject_rate"
        case byTier = "by_tier"
        case byRule = "by_rule"
        case byKind = "by_kind"
        case accountingExact = "accounting_exact"
    }
}

/// The data-governance loop: institutions fixing causes and re-uploading corrected records, and
/// the dirty-data rate of first uploads early and late in the run.
public struct GovernanceFigures: Codable, Sendable {
    public var fixProbability: Double
    public var residualShare: Double
    /// (institution, kind of defect) causes fixed during the run.
    public var causesFixed: Int
    /// Corrected records re-uploaded, accepted (stored at the provincial tier) and rejected
    /// (corrected records are clean: must be 0).
    public var correctionsSent: Int
    public var correctionsAccepted: Int
    public var correctionsRejected: Int
    /// Records refused / records answered, first uploads only, in the first and the last
    /// quarter of the load, in %.
    public var dirtyRateFirstQuarterPct: Double
    public var dirtyRateLastQuarterPct: Double

    enum CodingKeys: String, CodingKey {
        case fixProbability = "fix_probability"
        case residualShare = "residual_share"
        case causesFixed = "causes_fixed"
        case correctionsSent = "corrections_sent"
        case correctionsAccepted = "corrections_accepted"
        case correctionsRejected = "corrections_rejected"
        case dirtyRateFirstQuarterPct = "dirty_rate_first_quarter_pct"
        case dirtyRateLastQuarterPct = "dirty_rate_last_quarter_pct"
    }
}

/// The reconciliation verdict in numbers (for thresholds), with what is wrong by msgid.
public struct ReconciliationFigures: Codable, Sendable {
    public var passed: Bool
    public var checked: Int
    public var lost: Int
    public var duplicated: Int
    public var mismatched: Int
    public var unresolved: Int
    public var balancesChecked: Int
    public var balancesWrong: Int
    public var clearingBalanced: Bool
    public var uploadsBalanced: Bool
    /// Up to 20 of each kind of problem: msgids, masked persons, disputes.
    public var problems: [String: [String]]

    public init(_ r: ReconciliationResult) {
        passed = r.passed
        checked = r.checked
        lost = r.lost.count
        duplicated = r.duplicated.count
        mismatched = r.mismatched.count
        unresolved = r.unresolved.count
        balancesChecked = r.balancesChecked
        balancesWrong = r.balancesWrong.count
        clearingBalanced = r.clearingBalanced
        uploadsBalanced = r.uploadsBalanced
        problems = [:]
        for (name, items) in r.problemLists where !items.isEmpty {
            problems[name] = Array(items.prefix(ReconciliationText.listLimit))
        }
    }

    enum CodingKeys: String, CodingKey {
        case passed, checked, lost, duplicated, mismatched, unresolved, problems
        case balancesChecked = "balances_checked"
        case balancesWrong = "balances_wrong"
        case clearingBalanced = "clearing_balanced"
        case uploadsBalanced = "uploads_balanced"
    }
}

/// Error tickets opened during the run, from the national registry.
public struct TicketFigures: Codable, Sendable {
    public var opened: Int
    public var acknowledged: Int
    public var closed: Int
    public var openAtEnd: Int
    public var timeToCloseMs: LatencySummary
    public var byKind: [String: Int]
    /// Tickets still open at the end, with why: "every opened ticket is closed or reported open".
    public var openReasons: [String: Int]

    enum CodingKeys: String, CodingKey {
        case opened, acknowledged, closed
        case openAtEnd = "open_at_end"
        case timeToCloseMs = "time_to_close_ms"
        case byKind = "by_kind"
        case openReasons = "open_reasons"
    }
}

/// What the load driver itself used: CPU seconds over the seconds it ran, as a share of one core.
public struct DriverFigures: Codable, Sendable, Equatable {
    public var cpuS: Double
    public var wallS: Double
    public var cpuSharePct: Double

    public init(cpuS: Double, wallS: Double) {
        self.cpuS = cpuS
        self.wallS = wallS
        cpuSharePct = wallS > 0 ? (cpuS / wallS * 1_000).rounded() / 10 : 0
    }

    enum CodingKeys: String, CodingKey {
        case cpuS = "cpu_s"
        case wallS = "wall_s"
        case cpuSharePct = "cpu_share_pct"
    }
}

/// A simulated run (`settlenet sim`): the network's nodes ran in one process on virtual time,
/// with the same machines, desks and ledgers as real nodes, over simulated links and disks.
/// Every figure of the report is in virtual time, and the same seed gives the same report but
/// for the wall-clock fields `wallClockFields` names.
public struct SimulationFigures: Codable, Sendable, Equatable {
    /// The model's parameters, microseconds (`SimulationModel`).
    public var model: [String: Int64]
    /// Virtual seconds from the first node's start to the last answer's reconciliation.
    public var virtualS: Double
    /// Events the simulation processed (messages delivered, node turns, syncs, hospital steps).
    public var events: Int
    /// Wall-clock seconds the simulation took (differs between runs).
    public var wallS: Double
    /// One digest of every node's ledger (each node's id and `Ledger.contentDigest`, in the
    /// topology's order): the same for the same scenario, seed and model.
    public var ledgersDigest: String
    /// Virtual seconds per wall-clock second (differs between runs).
    public var speedup: Double
    /// The report's fields that depend on the wall clock or the machine, by dotted path: all
    /// others are the same for the same scenario, seed and model.
    public var wallClockFields: [String] = SimulationFigures.wallClockPaths

    public static let wallClockPaths = ["machine", "simulation.wall_s", "simulation.speedup"]

    public init(model: [String: Int64], virtualS: Double, events: Int, wallS: Double, ledgersDigest: String) {
        self.model = model
        self.ledgersDigest = ledgersDigest
        self.virtualS = virtualS
        self.events = events
        self.wallS = wallS
        speedup = wallS > 0 ? (virtualS / wallS * 10).rounded() / 10 : 0
    }

    enum CodingKeys: String, CodingKey {
        case model, events, speedup
        case virtualS = "virtual_s"
        case wallS = "wall_s"
        case ledgersDigest = "ledgers_digest"
        case wallClockFields = "wall_clock_fields"
    }
}
