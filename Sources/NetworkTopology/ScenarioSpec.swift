import Foundation
import SettlementModel
import Yams

/// A load scenario as its YAML file declares it (Scenarios/*.yaml).
public struct ScenarioSpec: Sendable {
    public var name: String
    public var file: String
    /// The topology path as written (resolve with `resolvedTopologyPath`).
    public var topology: String
    public var seed: UInt64
    /// How long the load runs, in milliseconds.
    public var durationMs: Int64
    public var settlements: SettlementLoad?
    public var uploads: UploadLoad?
    public var thresholds: [ThresholdSpec]
    public var faults: [FaultSpec] = []
    /// How the runner packs nodes into processes when it launches the cluster (`cluster up
    /// --pack`); nil for one process per node.
    public var pack: String?
    /// Step the load up in multiples of a baseline and report the highest multiple held.
    public var scale: ScaleSpec?
    /// `simulation:`: the simulated world's parameters this scenario sets (microseconds, by the
    /// names of `ScenarioLoader.simulationKeys`), for `settlenet sim`; a run on real processes ignores them.
    public var simulationModel: [String: Int64] = [:]

    /// A relative topology path resolves from the working directory first, then from the
    /// scenario file's folder; nil when neither exists.
    public func resolvedTopologyPath(workingDirectory: String = FileManager.default.currentDirectoryPath) -> String? {
        if topology.hasPrefix("/") { return FileManager.default.fileExists(atPath: topology) ? topology : nil }
        let candidates = [
            URL(fileURLWithPath: workingDirectory).appendingPathComponent(topology).path,
            URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(topology).path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}

/// `scale:`: the load's plateaus are multiples of a baseline rate; a plateau is held when its
/// achieved rate reaches 95 % of its target with the p99 and error rate within these limits
/// and nothing dropped.
public struct ScaleSpec: Sendable, Equatable {
    public var baselineRate: Double
    public var p99Ms: Double
    public var errorRate: Double
}

public struct SettlementLoad: Sendable, Equatable {
    public enum Executor: Sendable, Equatable {
        /// The same number of arrivals every second.
        case constantArrivalRate(ratePerS: Double)
        /// The rate moves linearly from the previous target (`startRate` first) to each stage's
        /// target over the stage's duration.
        case rampingArrivalRate(startRate: Double, stages: [Stage])
    }

    public struct Stage: Sendable, Equatable {
        public var durationMs: Int64
        public var target: Double
        public init(durationMs: Int64, target: Double) {
            self.durationMs = durationMs
            self.target = target
        }
    }

    public struct Mix: Sendable, Equatable {
        /// Relative weights of the route classes (normalised when used).
        public var routes: [RouteClass: Double]
        /// Share of inpatient settlements (2304); the rest are outpatient (2207).
        public var inpatient: Double
        /// Share of successful settlements reversed right after (2208/2305).
        public var reversal: Double
        /// Share of off-site settlements for persons not filed for off-site care (definite refusals).
        public var unfiledOffsite: Double

        public init(routes: [RouteClass: Double], inpatient: Double = 0, reversal: Double = 0, unfiledOffsite: Double = 0) {
            self.routes = routes
            self.inpatient = inpatient
            self.reversal = reversal
            self.unfiledOffsite = unfiledOffsite
        }
    }

    public var executor: Executor
    public var mix: Mix
    /// Most settlements waiting for answers at once; arrivals beyond it are dropped and counted.
    public var maxInFlight: Int
    /// Bill totals in fen, drawn uniformly: outpatient and inpatient ranges.
    public var outpatientFen: ClosedRange<Int64>
    public var inpatientFen: ClosedRange<Int64>

    public init(executor: Executor, mix: Mix, maxInFlight: Int,
                outpatientFen: ClosedRange<Int64> = 5_000...80_000, inpatientFen: ClosedRange<Int64> = 200_000...6_000_000) {
        self.executor = executor
        self.mix = mix
        self.maxInFlight = maxInFlight
        self.outpatientFen = outpatientFen
        self.inpatientFen = inpatientFen
    }
}

/// A fault injected into the running cluster at a time of the run.
public struct FaultSpec: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// SIGSTOP for `forMs`, then SIGCONT: the node keeps its connections but answers nothing.
        case pause(node: String, forMs: Int64)
        /// SIGKILL, and start it again after `restartAfterMs` (nil: it stays down).
        case kill(node: String, restartAfterMs: Int64?)
        /// The link between two adjacent nodes, both directions or only from `a` to `b`: messages
        /// delayed (with jitter), lost, duplicated or corrupted, each with its probability.
        case link(LinkEffects)
        /// No message gets through from `from` to `to` (and back, unless one-way).
        case partition(from: String, to: String, oneWay: Bool, forMs: Int64)
        /// The node's clock jumps by `byMs` (back when negative) and runs on from there: only a
        /// simulation can do it to one node (`settlenet sim`).
        case clockJump(node: String, byMs: Int64)
        /// The node's disk fails for `forMs`: every commit fails, as on a full or broken disk,
        /// then works again. Simulated only (`settlenet sim`).
        case diskFailure(node: String, forMs: Int64)
        /// The node's process crashes (SIGKILL, by its own hand) the `after`-th time it passes
        /// `point` of its commit cycle (nil: drawn from the seed), then starts again after
        /// `restartAfterMs` (nil: it stays down). Real processes only.
        case crash(node: String, point: CrashPoint, after: Int?, restartAfterMs: Int64?)
    }

    public struct LinkEffects: Sendable, Equatable {
        public var a: String, b: String
        public var forMs: Int64
        public var delayMs: Int64 = 0, jitterMs: Int64 = 0
        public var loss = 0.0, duplicate = 0.0, corrupt = 0.0
        /// Only what `a` sends to `b` (`direction: one-way`), not what comes back.
        public var oneWay = false

        public init(a: String, b: String, forMs: Int64, delayMs: Int64 = 0, jitterMs: Int64 = 0, loss: Double = 0,
                    duplicate: Double = 0, corrupt: Double = 0, oneWay: Bool = false) {
            self.a = a; self.b = b; self.forMs = forMs; self.delayMs = delayMs; self.jitterMs = jitterMs
            self.loss = loss; self.duplicate = duplicate; self.corrupt = corrupt; self.oneWay = oneWay
        }
    }

    public var atMs: Int64
    public var action: Action
    public var line: Int?

    /// The fault's kind as reports name it.
    public var kind: String {
        switch action {
        case .pause: "pause"
        case .kill: "kill"
        case .link: "link"
        case .partition: "partition"
        case .clockJump: "clock_jump"
        case .diskFailure: "disk_fail"
        case .crash: "crash"
        }
    }

    /// The node, or the two ends of the link, as the scenario names them ("370200-370000").
    public var node: String { nodes.joined(separator: "-") }

    public var nodes: [String] {
        switch action {
        case .pause(let node, _), .kill(let node, _), .clockJump(let node, _), .diskFailure(let node, _), .crash(let node, _, _, _): [node]
        case .link(let effects): [effects.a, effects.b]
        case .partition(let from, let to, _, _): [from, to]
        }
    }
}

/// Data uploads (4101): batches of settlement lists, some made dirty on purpose.
public struct UploadLoad: Sendable, Equatable {
    public var executor: SettlementLoad.Executor
    public var batchSize: Int
    /// Share of records made dirty, and the relative weights of the dirty kinds.
    public var dirtyRate: Double
    public var dirtyKinds: [String: Double]
    public var maxInFlight: Int
    /// The data-governance loop, on when the scenario sets `dirty.fix_probability`.
    public var governance: Governance?

    /// Institutions correct what the network rejects and re-upload it; each piece of feedback
    /// about a kind of defect (a batch answer with such rejects, an upload_reject ticket) makes
    /// the institution fix that systematic cause with `fixProbability`. A fixed cause keeps
    /// `residualShare` of its rate: slips that no fix removes.
    public struct Governance: Sendable, Equatable {
        public var fixProbability: Double
        public var residualShare: Double

        public init(fixProbability: Double, residualShare: Double) {
            self.fixProbability = fixProbability
            self.residualShare = residualShare
        }
    }

    public static let kindNames = ["missing_field", "bad_format", "unknown_code", "bad_admdvs", "amount_mismatch",
                                   "date_order", "duplicate"]

    public init(executor: SettlementLoad.Executor, batchSize: Int, dirtyRate: Double, dirtyKinds: [String: Double], maxInFlight: Int,
                governance: Governance? = nil) {
        self.governance = governance
        self.executor = executor
        self.batchSize = batchSize
        self.dirtyRate = dirtyRate
        self.dirtyKinds = dirtyKinds
        self.maxInFlight = maxInFlight
    }
}

/// `path: "< 200"`: a numeric field of report.json, by dotted path, compared with a number.
public struct ThresholdSpec: Sendable, Equatable {
    public enum Comparison: String, Sendable, CaseIterable {
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "=="

        public func holds(_ value: Double, _ limit: Double) -> Bool {
            switch self {
            case .less: value < limit
            case .lessOrEqual: value <= limit
            case .greater: value > limit
            case .greaterOrEqual: value >= limit
            case .equal: value == limit
            }
        }
    }

    public var path: String
    public var condition: String
    public var comparison: Comparison
    public var limit: Double

    /// Parses "< 200", "<=0.05", "== 0"; nil when it is none of these.
    public init?(path: String, condition: String) {
        let text = condition.trimmingCharacters(in: .whitespaces)
        // Two-character operators first, so "<=" is not read as "<".
        let ordered: [Comparison] = [.lessOrEqual, .greaterOrEqual, .equal, .less, .greater]
        guard let comparison = ordered.first(where: { text.hasPrefix($0.rawValue) }),
              let limit = Double(text.dropFirst(comparison.rawValue.count).trimmingCharacters(in: .whitespaces)),
              limit.isFinite else { return nil }
        self.path = path
        self.condition = text
        self.comparison = comparison
        self.limit = limit
    }
}

/// Reads scenario files; every problem names the file, line and key.
public enum ScenarioLoader {
    public static func load(path: String) throws(FileProblems) -> ScenarioSpec {
        try parse(readTextFile(path, kind: "scenario"), file: path)
    }

    static let topKeys: Set<String> = ["name", "description", "topology", "seed", "duration", "load", "thresholds", "faults",
                                       "pack", "scale", "simulation"]
    /// The simulation model's parameters (docs/SIMULATION.md), microseconds.
    public static let simulationKeys: Set<String> = ["link_us", "link_jitter_us", "hospital_link_us", "hospital_link_jitter_us",
                                                     "message_us", "turn_us", "commit_us", "commit_jitter_us",
                                                     "county_city_link_us", "county_city_link_jitter_us",
                                                     "city_province_link_us", "city_province_link_jitter_us",
                                                     "province_national_link_us", "province_national_link_jitter_us"]
    static let scaleKeys: Set<String> = ["baseline_rate", "p99_ms", "error_rate"]
    static let faultKeys: Set<String> = ["at", "pause", "for", "kill", "restart_after", "link", "delay", "jitter", "loss",
                                         "duplicate", "corrupt", "partition", "direction", "clock_jump", "by", "disk_fail",
                                         "crash", "point", "after"]
    static let loadKeys: Set<String> = ["settlements", "uploads"]
    static let uploadKeys: Set<String> = ["executor", "rate", "start_rate", "stages", "batch_size", "dirty", "max_in_flight"]
    static let dirtyKeys: Set<String> = ["rate", "kinds", "fix_probability", "residual_share"]
    static let settlementKeys: Set<String> = ["executor", "rate", "start_rate", "stages", "mix", "max_in_flight",
                                              "outpatient_yuan", "inpatient_yuan"]
    static let mixKeys: Set<String> = ["route", "inpatient", "reversal", "unfiled_offsite"]
    static let stageKeys: Set<String> = ["duration", "target"]
    static let rangeKeys: Set<String> = ["min", "max"]

    public static func parse(_ text: String, file: String) throws(FileProblems) -> ScenarioSpec {
        let root = try composeYAML(text, file: file)
        var problems: [FileProblem] = []
        guard let top = YAMLMap(root, path: "", file: file, problems: &problems) else { throw FileProblems(problems) }
        top.rejectUnknownKeys(topKeys, subject: nil, problems: &problems)
        let name = top.scalar("name", subject: nil, required: true, problems: &problems) ?? "unnamed"
        let topology = top.scalar("topology", subject: nil, required: true, problems: &problems) ?? ""
        var seed: UInt64 = 1
        if let seedText = top.scalar("seed", subject: nil, required: false, problems: &problems) {
            if let value = UInt64(seedText) { seed = value } else {
                problems.append(FileProblem(file: file, line: top.lineOf("seed"), field: "seed", message: "\"\(seedText)\" is not a whole number ≥ 0"))
            }
        }
        var duration: Int64?
        if let durationText = top.scalar("duration", subject: nil, required: false, problems: &problems) {
            duration = parseDuration(durationText)
            if duration == nil || duration! <= 0 {
                problems.append(FileProblem(file: file, line: top.lineOf("duration"), field: "duration",
                                            message: "\"\(durationText)\" is not a positive duration like 60s, 500ms or 2m"))
            }
        }
        var settlements: SettlementLoad?
        var uploads: UploadLoad?
        if let loadNode = top.node("load"), let load = YAMLMap(loadNode, path: "load", file: file, problems: &problems) {
            load.rejectUnknownKeys(loadKeys, subject: nil, problems: &problems)
            if let node = load.node("settlements") {
                settlements = parseSettlements(node, file: file, problems: &problems)
            }
            if let node = load.node("uploads") {
                uploads = parseUploads(node, file: file, problems: &problems)
            }
        } else if top.node("load") == nil {
            problems.append(FileProblem(file: file, line: nil, field: "load", message: "required but missing: what load to drive (load.settlements, load.uploads)"))
        }
        if settlements == nil && uploads == nil && problems.isEmpty {
            problems.append(FileProblem(file: file, line: top.lineOf("load"), field: "load", message: "no load declared (load.settlements, load.uploads)"))
        }
        var thresholds: [ThresholdSpec] = []
        if let node = top.node("thresholds"), let map = YAMLMap(node, path: "thresholds", file: file, problems: &problems) {
            for (key, value) in map.mapping {
                let path = key.string ?? ""
                guard case .scalar(let scalar) = value, let spec = ThresholdSpec(path: path, condition: scalar.string) else {
                    problems.append(FileProblem(file: file, line: value.mark?.line, field: "thresholds.\(path)",
                                                message: "expected a condition like \"< 200\" (operators <, <=, >, >=, ==)"))
                    continue
                }
                if !ThresholdPaths.isKnownRoot(path) {
                    problems.append(FileProblem(file: file, line: key.mark?.line, field: "thresholds.\(path)",
                                                message: "not a field of report.json (for instance settlements.latency_ms.p99, settlements.error_rate)"))
                    continue
                }
                thresholds.append(spec)
            }
        }
        var faults: [FaultSpec] = []
        if let faultsNode = top.node("faults") {
            if case .sequence(let items) = faultsNode {
                for (index, item) in items.enumerated() {
                    if let fault = parseFault(item, path: "faults[\(index)]", file: file, problems: &problems) { faults.append(fault) }
                }
            } else {
                problems.append(FileProblem(file: file, line: faultsNode.mark?.line, field: "faults", message: "expected a list of faults"))
            }
        }
        // The load's length: the duration key, else the sum of the ramp's stages.
        var durationMs = duration ?? 0
        if duration == nil {
            for executor in [settlements?.executor, uploads?.executor].compactMap({ $0 }) {
                if case .rampingArrivalRate(_, let stages) = executor {
                    durationMs = max(durationMs, stages.reduce(0) { $0 + $1.durationMs })
                }
            }
        }
        if durationMs <= 0 && problems.isEmpty {
            problems.append(FileProblem(file: file, line: nil, field: "duration", message: "required for a constant-arrival-rate load (e.g. duration: 30s)"))
        }
        let pack = top.scalar("pack", subject: nil, required: false, problems: &problems)
        var scale: ScaleSpec?
        if let node = top.node("scale"), let map = YAMLMap(node, path: "scale", file: file, problems: &problems) {
            map.rejectUnknownKeys(scaleKeys, subject: nil, problems: &problems)
            let baseline = numberValue(map, "baseline_rate", required: true, range: 0.001...1_000_000, file: file, problems: &problems)
            let p99 = numberValue(map, "p99_ms", required: true, range: 0.001...3_600_000, file: file, problems: &problems)
            let errors = numberValue(map, "error_rate", required: true, range: 0...1, file: file, problems: &problems)
            if let baseline, let p99, let errors { scale = ScaleSpec(baselineRate: baseline, p99Ms: p99, errorRate: errors) }
            if case .constantArrivalRate? = settlements?.executor {
                problems.append(FileProblem(file: file, line: map.line, field: "scale",
                                            message: "needs a ramping-arrival-rate settlement load whose plateaus (a stage with the previous stage's target) are multiples of baseline_rate"))
            }
        }
        var simulationModel: [String: Int64] = [:]
        if let node = top.node("simulation"), let map = YAMLMap(node, path: "simulation", file: file, problems: &problems) {
            map.rejectUnknownKeys(simulationKeys, subject: nil, problems: &problems)
            for key in simulationKeys.sorted() {
                if let value = map.int(key, subject: nil, required: false, range: 0...60_000_000, problems: &problems) {
                    simulationModel[key] = Int64(value)
                }
            }
        }
        if !problems.isEmpty { throw FileProblems(problems) }
        var spec = ScenarioSpec(name: name, file: file, topology: topology, seed: seed, durationMs: durationMs,
                                settlements: settlements, uploads: uploads, thresholds: thresholds, faults: faults)
        spec.pack = pack
        spec.scale = scale
        spec.simulationModel = simulationModel
        return spec
    }

    private static func parseFault(_ node: Node, path: String, file: String, problems: inout [FileProblem]) -> FaultSpec? {
        guard let map = YAMLMap(node, path: path, file: file, problems: &problems) else { return nil }
        map.rejectUnknownKeys(faultKeys, subject: nil, problems: &problems)
        let before = problems.count
        func duration(_ key: String, required: Bool) -> Int64? {
            guard let text = map.scalar(key, subject: nil, required: required, problems: &problems) else { return nil }
            guard let value = parseDuration(text), value >= 0 else {
                problems.append(FileProblem(file: file, line: map.lineOf(key), field: map.fieldPath(key),
                                            message: "\"\(text)\" is not a duration like 10s or 500ms"))
                return nil
            }
            return value
        }
        func nodeID(_ key: String) -> String? {
            guard let text = map.scalar(key, subject: nil, required: false, problems: &problems) else { return nil }
            guard DivisionCode(text) != nil else {
                problems.append(FileProblem(file: file, line: map.lineOf(key), field: map.fieldPath(key),
                                            message: "\"\(text)\" is not a 6-digit node id (quote it: \"410102\")"))
                return nil
            }
            return text
        }
        func pair(_ key: String) -> (String, String)? {
            let ids: [String]
            if let node = map.node(key), case .sequence(let items) = node {
                ids = items.compactMap { $0.string }
            } else if let text = map.scalar(key, subject: nil, required: false, problems: &problems) {
                ids = text.split(separator: "-").map(String.init)
            } else {
                return nil
            }
            guard ids.count == 2, ids.allSatisfy({ DivisionCode($0) != nil }), ids[0] != ids[1] else {
                problems.append(FileProblem(file: file, line: map.lineOf(key), field: map.fieldPath(key),
                                            message: "expected two different node ids: \"370200-370000\" or [\"370200\", \"370000\"]"))
                return nil
            }
            return (ids[0], ids[1])
        }
        func probability(_ key: String) -> Double {
            numberValue(map, key, required: false, range: 0...1, file: file, problems: &problems) ?? 0
        }
        let at = duration("at", required: true)
        /// `direction:` of a link fault or partition: both ways unless one-way.
        func oneWay() -> Bool? {
            let direction = map.scalar("direction", subject: nil, required: false, problems: &problems) ?? "both"
            guard ["both", "one-way"].contains(direction) else {
                problems.append(FileProblem(file: file, line: map.lineOf("direction"), field: map.fieldPath("direction"),
                                            message: "\"\(direction)\" is not both or one-way"))
                return nil
            }
            return direction == "one-way"
        }
        let named = ["pause", "kill", "link", "partition", "clock_jump", "disk_fail", "crash"].filter { map.node($0) != nil }
        var action: FaultSpec.Action?
        switch named {
        case ["pause"]:
            if let node = nodeID("pause"), let length = duration("for", required: true) { action = .pause(node: node, forMs: length) }
        case ["kill"]:
            if let node = nodeID("kill") { action = .kill(node: node, restartAfterMs: duration("restart_after", required: false)) }
        case ["link"]:
            if let (a, b) = pair("link"), let length = duration("for", required: true), let oneWay = oneWay() {
                let effects = FaultSpec.LinkEffects(a: a, b: b, forMs: length, delayMs: duration("delay", required: false) ?? 0,
                                                    jitterMs: duration("jitter", required: false) ?? 0, loss: probability("loss"),
                                                    duplicate: probability("duplicate"), corrupt: probability("corrupt"), oneWay: oneWay)
                if effects.delayMs == 0 && effects.loss == 0 && effects.duplicate == 0 && effects.corrupt == 0 {
                    problems.append(FileProblem(file: file, line: map.line, field: path,
                                                message: "a link fault needs at least one of delay, loss, duplicate, corrupt"))
                } else {
                    action = .link(effects)
                }
            }
        case ["partition"]:
            if let oneWay = oneWay(), let (from, to) = pair("partition"), let length = duration("for", required: true) {
                action = .partition(from: from, to: to, oneWay: oneWay, forMs: length)
            }
        case ["clock_jump"]:
            if let node = nodeID("clock_jump"), let text = map.scalar("by", subject: nil, required: true, problems: &problems) {
                // Signed: a clock may jump back.
                let back = text.hasPrefix("-")
                if let length = parseDuration(back ? String(text.dropFirst()) : text), length > 0 {
                    action = .clockJump(node: node, byMs: back ? -length : length)
                } else {
                    problems.append(FileProblem(file: file, line: map.lineOf("by"), field: map.fieldPath("by"),
                                                message: "\"\(text)\" is not a duration like 30s, or -30s for a jump back"))
                }
            }
        case ["disk_fail"]:
            if let node = nodeID("disk_fail"), let length = duration("for", required: true) { action = .diskFailure(node: node, forMs: length) }
        case ["crash"]:
            let pointText = map.scalar("point", subject: nil, required: true, problems: &problems)
            let point = pointText.flatMap(CrashPoint.init(rawValue:))
            if let pointText, point == nil {
                problems.append(FileProblem(file: file, line: map.lineOf("point"), field: map.fieldPath("point"),
                                            message: "\"\(pointText)\" is not a crash point: \(CrashPoint.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            let after = map.node("after") == nil ? nil : numberValue(map, "after", required: true, range: 1...1_000_000, file: file, problems: &problems)
            if let node = nodeID("crash"), let point {
                action = .crash(node: node, point: point, after: after.map { Int($0) }, restartAfterMs: duration("restart_after", required: false))
            }
        default:
            problems.append(FileProblem(file: file, line: map.line, field: path,
                                        message: "a fault names exactly one of pause: NODE (with for:), kill: NODE (with optional restart_after:), link: \"A-B\" (with for:), partition: [A, B] (with for:), clock_jump: NODE (with by:, simulated only), disk_fail: NODE (with for:, simulated only) or crash: NODE (with point:, optional after: and restart_after:, real processes only)"))
        }
        guard problems.count == before, let at, let action else { return nil }
        return FaultSpec(atMs: at, action: action, line: map.line)
    }

    /// The arrival executor of a load section: constant-arrival-rate with `rate`, or
    /// ramping-arrival-rate with `stages` (and optional `start_rate`).
    private static func parseExecutor(_ map: YAMLMap, path: String, file: String,
                                      problems: inout [FileProblem]) -> SettlementLoad.Executor? {
        func number(_ map: YAMLMap, _ key: String, required: Bool, range: ClosedRange<Double>) -> Double? {
            numberValue(map, key, required: required, range: range, file: file, problems: &problems)
        }
        let executorName = map.scalar("executor", subject: nil, required: true, problems: &problems)
        var executor: SettlementLoad.Executor?
        switch executorName {
        case "constant-arrival-rate":
            if let rate = number(map, "rate", required: true, range: 0.001...1_000_000) { executor = .constantArrivalRate(ratePerS: rate) }
            if map.node("stages") != nil {
                problems.append(FileProblem(file: file, line: map.lineOf("stages"), field: "\(path).stages",
                                            message: "stages belong to ramping-arrival-rate; constant-arrival-rate takes rate"))
            }
        case "ramping-arrival-rate":
            let start = number(map, "start_rate", required: false, range: 0...1_000_000) ?? 0
            var stages: [SettlementLoad.Stage] = []
            if let stagesNode = map.node("stages"), case .sequence(let sequence) = stagesNode, !sequence.isEmpty {
                for (index, item) in sequence.enumerated() {
                    guard let stage = YAMLMap(item, path: "\(path).stages[\(index)]", file: file, problems: &problems) else { continue }
                    stage.rejectUnknownKeys(stageKeys, subject: nil, problems: &problems)
                    let durationText = stage.scalar("duration", subject: nil, required: true, problems: &problems)
                    let duration = durationText.flatMap(parseDuration)
                    if let durationText, duration == nil || duration! <= 0 {
                        problems.append(FileProblem(file: file, line: stage.lineOf("duration"), field: stage.fieldPath("duration"),
                                                    message: "\"\(durationText)\" is not a positive duration like 10s"))
                    }
                    let target = number(stage, "target", required: true, range: 0...1_000_000)
                    if let duration, duration > 0, let target { stages.append(.init(durationMs: duration, target: target)) }
                }
            } else {
                problems.append(FileProblem(file: file, line: map.lineOf("stages"), field: "\(path).stages",
                                            message: "ramping-arrival-rate needs a non-empty list of { duration, target } stages"))
            }
            executor = .rampingArrivalRate(startRate: start, stages: stages)
        case let other?:
            problems.append(FileProblem(file: file, line: map.lineOf("executor"), field: "\(path).executor",
                                        message: "\"\(other)\" is not constant-arrival-rate or ramping-arrival-rate"))
        case nil:
            break
        }
        return executor
    }

    static func numberValue(_ map: YAMLMap, _ key: String, required: Bool, range: ClosedRange<Double>, file: String,
                            problems: inout [FileProblem]) -> Double? {
        guard let text = map.scalar(key, subject: nil, required: required, problems: &problems) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            problems.append(FileProblem(file: file, line: map.lineOf(key), field: map.fieldPath(key),
                                        message: "\"\(text)\" is not a number from \(range.lowerBound) to \(range.upperBound)"))
            return nil
        }
        return value
    }

    private static func parseUploads(_ node: Node, file: String, problems: inout [FileProblem]) -> UploadLoad? {
        let path = "load.uploads"
        guard let map = YAMLMap(node, path: path, file: file, problems: &problems) else { return nil }
        map.rejectUnknownKeys(uploadKeys, subject: nil, problems: &problems)
        let before = problems.count
        let executor = parseExecutor(map, path: path, file: file, problems: &problems)
        let batchSize = map.int("batch_size", subject: nil, required: true, range: 1...5_000, problems: &problems)
        let maxInFlight = map.int("max_in_flight", subject: nil, required: false, range: 1...100_000, problems: &problems) ?? 100
        var dirtyRate = 0.0
        var kinds: [String: Double] = [:]
        var governance: UploadLoad.Governance?
        if let dirtyNode = map.node("dirty"), let dirty = YAMLMap(dirtyNode, path: "\(path).dirty", file: file, problems: &problems) {
            dirty.rejectUnknownKeys(dirtyKeys, subject: nil, problems: &problems)
            dirtyRate = numberValue(dirty, "rate", required: true, range: 0...1, file: file, problems: &problems) ?? 0
            if let kindsNode = dirty.node("kinds"), let kindMap = YAMLMap(kindsNode, path: "\(path).dirty.kinds", file: file, problems: &problems) {
                kindMap.rejectUnknownKeys(Set(UploadLoad.kindNames), subject: nil, problems: &problems)
                for name in UploadLoad.kindNames {
                    if let weight = numberValue(kindMap, name, required: false, range: 0...1_000_000, file: file, problems: &problems) {
                        kinds[name] = weight
                    }
                }
            }
            if let fix = numberValue(dirty, "fix_probability", required: false, range: 0...1, file: file, problems: &problems) {
                let residual = numberValue(dirty, "residual_share", required: false, range: 0...1, file: file, problems: &problems) ?? 0
                governance = UploadLoad.Governance(fixProbability: fix, residualShare: residual)
            } else if dirty.node("residual_share") != nil {
                problems.append(FileProblem(file: file, line: dirty.lineOf("residual_share"), field: "\(path).dirty.residual_share",
                                            message: "only meaningful with dirty.fix_probability (the governance loop)"))
            }
            if dirtyRate > 0 && kinds.values.reduce(0, +) <= 0 {
                // No kinds given: every kind alike.
                for name in UploadLoad.kindNames { kinds[name] = 1 }
            }
        }
        guard problems.count == before, let executor, let batchSize else { return nil }
        return UploadLoad(executor: executor, batchSize: batchSize, dirtyRate: dirtyRate, dirtyKinds: kinds, maxInFlight: maxInFlight,
                          governance: governance)
    }

    private static func parseSettlements(_ node: Node, file: String, problems: inout [FileProblem]) -> SettlementLoad? {
        let path = "load.settlements"
        guard let map = YAMLMap(node, path: path, file: file, problems: &problems) else { return nil }
        map.rejectUnknownKeys(settlementKeys, subject: nil, problems: &problems)
        let before = problems.count
        func number(_ map: YAMLMap, _ key: String, required: Bool, range: ClosedRange<Double>) -> Double? {
            numberValue(map, key, required: required, range: range, file: file, problems: &problems)
        }
        let executor = parseExecutor(map, path: path, file: file, problems: &problems)
        var mix = SettlementLoad.Mix(routes: [.local: 1])
        if let mixNode = map.node("mix"), let mixMap = YAMLMap(mixNode, path: "\(path).mix", file: file, problems: &problems) {
            mixMap.rejectUnknownKeys(mixKeys, subject: nil, problems: &problems)
            if let routeNode = mixMap.node("route"), let routes = YAMLMap(routeNode, path: "\(path).mix.route", file: file, problems: &problems) {
                routes.rejectUnknownKeys(Set(RouteClass.allCases.map(\.rawValue)), subject: nil, problems: &problems)
                var weights: [RouteClass: Double] = [:]
                for route in RouteClass.allCases {
                    if let weight = number(routes, route.rawValue, required: false, range: 0...1_000_000) { weights[route] = weight }
                }
                if weights.values.reduce(0, +) <= 0 {
                    problems.append(FileProblem(file: file, line: routes.line, field: "\(path).mix.route",
                                                message: "at least one route class needs a weight above 0"))
                }
                mix.routes = weights
            }
            mix.inpatient = number(mixMap, "inpatient", required: false, range: 0...1) ?? 0
            mix.reversal = number(mixMap, "reversal", required: false, range: 0...1) ?? 0
            mix.unfiledOffsite = number(mixMap, "unfiled_offsite", required: false, range: 0...1) ?? 0
        }
        let maxInFlight = map.int("max_in_flight", subject: nil, required: false, range: 1...1_000_000, problems: &problems) ?? 1_000
        func yuanRange(_ key: String, default value: ClosedRange<Int64>) -> ClosedRange<Int64> {
            guard let node = map.node(key), let range = YAMLMap(node, path: "\(path).\(key)", file: file, problems: &problems) else { return value }
            range.rejectUnknownKeys(rangeKeys, subject: nil, problems: &problems)
            let low = range.scalar("min", subject: nil, required: true, problems: &problems).flatMap(Money.fen(fromYuan:))
            let high = range.scalar("max", subject: nil, required: true, problems: &problems).flatMap(Money.fen(fromYuan:))
            guard let low, let high, low > 0, low <= high else {
                problems.append(FileProblem(file: file, line: range.line, field: "\(path).\(key)",
                                            message: "expected { min: YUAN, max: YUAN } with 0 < min <= max, at most 2 decimals"))
                return value
            }
            return low...high
        }
        let outpatient = yuanRange("outpatient_yuan", default: 5_000...80_000)
        let inpatient = yuanRange("inpatient_yuan", default: 200_000...6_000_000)
        guard problems.count == before, let executor else { return nil }
        return SettlementLoad(executor: executor, mix: mix, maxInFlight: maxInFlight, outpatientFen: outpatient, inpatientFen: inpatient)
    }

    /// "60s", "500ms", "2m", "1h", "1m30s" to milliseconds.
    public static func parseDuration(_ text: String) -> Int64? {
        var total: Int64 = 0
        var digits = ""
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            digits = String(rest.prefix(while: { $0.isNumber }))
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = String(rest.prefix(while: { $0.isLetter }))
            rest = rest.dropFirst(unit.count)
            let unitMs: Int64
            switch unit {
            case "ms": unitMs = 1
            case "s": unitMs = 1_000
            case "m": unitMs = 60_000
            case "h": unitMs = 3_600_000
            default: return nil
            }
            // A duration past Int64's milliseconds is no duration (it trapped, found by fuzzing).
            let (ms, overflowed) = value.multipliedReportingOverflow(by: unitMs)
            let (sum, overflowedSum) = total.addingReportingOverflow(ms)
            guard !overflowed, !overflowedSum else { return nil }
            total = sum
        }
        return total
    }
}

/// The top-level fields of report.json a threshold may name.
public enum ThresholdPaths {
    public static let roots: Set<String> = ["duration_s", "settlements", "reversals", "errors", "uploads", "dirty_data", "tickets",
                                            "reconciliation", "scale"]
    public static func isKnownRoot(_ path: String) -> Bool {
        guard let first = path.split(separator: ".").first else { return false }
        return roots.contains(String(first))
    }
}
