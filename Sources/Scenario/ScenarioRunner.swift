import ClusterControl
import Foundation
import LinkSecurity
import Reconciliation
import NetworkTopology
import SettlementModel

/// What `settlenet scenario run` was asked to do.
public struct ScenarioRunOptions: Sendable {
    public var scenarioPath: String
    public var topologyOverride: String?
    public var seedOverride: UInt64?
    public var outputDirectory: String?
    /// Drive a cluster already running in this data directory instead of launching one.
    public var attachDataDirectory: String?
    /// The settlenet binary, to start node processes.
    public var executable: String
    public var build: String
    /// The key directory of a secured topology (`--keys`); default: the topology's, else the cluster's own.
    public var keys: String?
    /// An earlier run drawn beside this one in report.html (`--baseline`).
    public var baseline: Baseline?

    public init(scenarioPath: String, topologyOverride: String? = nil, seedOverride: UInt64? = nil,
                outputDirectory: String? = nil, attachDataDirectory: String? = nil, executable: String, build: String) {
        self.scenarioPath = scenarioPath
        self.topologyOverride = topologyOverride
        self.seedOverride = seedOverride
        self.outputDirectory = outputDirectory
        self.attachDataDirectory = attachDataDirectory
        self.executable = executable
        self.build = build
    }
}

/// Runs a scenario from its file to its three reports, launching and stopping its cluster
/// unless attached to a running one.
public enum ScenarioRunner {
    public struct Outcome: Sendable {
        public var report: RunReport
        public var outputDirectory: String

        public init(report: RunReport, outputDirectory: String) {
            self.report = report
            self.outputDirectory = outputDirectory
        }
    }

    public static func run(_ options: ScenarioRunOptions, log: @escaping (String) -> Void,
                           progress: (Progress) -> Void) throws(ScenarioError) -> Outcome {
        var spec: ScenarioSpec
        do { spec = try ScenarioLoader.load(path: options.scenarioPath) } catch {
            throw ScenarioError(code: .invalidScenario, message: "scenario problems, nothing started:\n\(error)")
        }
        if let seed = options.seedOverride { spec.seed = seed }
        let load = spec.settlements

        var topology: Topology
        var cluster: Cluster?
        if let attach = options.attachDataDirectory {
            let attached = Cluster(dataDirectory: attach)
            let record: ClusterRecord
            do { record = try attached.record() } catch { throw ScenarioError(code: .clusterUnavailable, message: "\(error)") }
            guard !record.nodes.isEmpty, (try? attached.status())?.allSatisfy({ $0.up && $0.signedIn }) == true else {
                throw ScenarioError(code: .clusterUnavailable, message: "the cluster in \(attach) is not fully up and signed in (see `settlenet cluster status --data-dir \(attach)`)")
            }
            if let crash = spec.faults.first(where: { if case .crash = $0.action { true } else { false } }), record.crashPoints != true {
                throw ScenarioError(code: .invalidScenario, message: "\(spec.file):\(crash.line.map(String.init) ?? "?"): field faults: a crash needs nodes started with crash points; the cluster in \(attach) was not (start it with `settlenet cluster up --crash-points`)")
            }
            do { topology = try TopologyLoader.load(path: record.topology).withBasePort(record.basePort) } catch {
                throw ScenarioError(code: .invalidScenario, message: "topology problems:\n\(error)")
            }
        } else {
            // --topology resolves like the scenario's own topology key.
            if let override = options.topologyOverride { spec.topology = override }
            guard let path = spec.resolvedTopologyPath() else {
                throw ScenarioError(code: .invalidScenario, message: "\(spec.file): topology \"\(spec.topology)\" not found (relative paths resolve from the working directory, then from the scenario's folder)")
            }
            do { topology = try TopologyLoader.load(path: path) } catch {
                throw ScenarioError(code: .invalidScenario, message: "topology problems, nothing started:\n\(error)")
            }
        }
        // Check the mix against the topology before anything starts.
        if let load { _ = try LoadPlanner(topology: topology, load: load, seed: spec.seed) }
        for fault in spec.faults {
            let place = "\(spec.file):\(fault.line.map(String.init) ?? "?")"
            if case .clockJump = fault.action {
                throw ScenarioError(code: .invalidScenario, message: "\(place): field faults: a clock_jump needs a simulated clock; run this scenario with `settlenet sim`")
            }
            if case .diskFailure = fault.action {
                throw ScenarioError(code: .invalidScenario, message: "\(place): field faults: a disk_fail needs a simulated disk; run this scenario with `settlenet sim`")
            }
            for node in fault.nodes where topology.node(DivisionCode(node)!) == nil {
                throw ScenarioError(code: .invalidScenario, message: "\(place): fault names node \(node), which is not in \(topology.file)")
            }
            if fault.nodes.count == 2 {
                let (a, b) = (DivisionCode(fault.nodes[0])!, DivisionCode(fault.nodes[1])!)
                guard topology.node(a)?.parent == b || topology.node(b)?.parent == a else {
                    throw ScenarioError(code: .invalidScenario, message: "\(place): \(fault.node) is not a link of \(topology.file) (a link joins a node and its parent)")
                }
            }
        }

        let stamp = CivilTime(unixMs: Int64(Date().timeIntervalSince1970 * 1000)).compact
        let output = options.outputDirectory ?? "run/reports/\(spec.name)-\(stamp)"
        do { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
            throw ScenarioError(code: .runFailed, message: "cannot create output directory \(output): \(error)")
        }

        var packing = Packing.none
        if let pack = spec.pack {
            guard let parsed = Packing(pack) else {
                throw ScenarioError(code: .invalidScenario, message: "\(spec.file): field pack: \"\(pack)\" is not \(Packing.help)")
            }
            packing = parsed
        }
        if options.attachDataDirectory == nil {
            let launched = Cluster(dataDirectory: "\(output)/cluster", log: log)
            // A large topology takes longer to sign in: the cluster's own default grows with the nodes.
            do {
                // Crash faults arm points the nodes only watch for when started with them.
                let crashes = spec.faults.contains { if case .crash = $0.action { true } else { false } }
                topology = try launched.upOnFreePorts(topology: topology, executable: options.executable, packing: packing,
                                                      keys: options.keys, crashPoints: crashes).topology
            } catch {
                throw ScenarioError(code: .clusterUnavailable, message: "\(error)")
            }
            cluster = launched
        }
        defer {
            if let cluster {
                log("stopping the cluster")
                _ = try? cluster.down()
            }
        }

        let startedAt = Date()
        let dataDirectory = options.attachDataDirectory ?? "\(output)/cluster"
        let layout = DataLayout(root: dataDirectory)
        let audit = DataQualityAudit(topology: topology, dataDirectory: dataDirectory)
        let measurement: Measurement
        let uploadMeasurement: UploadMeasurement
        var faultRecords: [FaultRecord] = []
        var countsBefore: [DivisionCode: [String: Int]] = [:]
        let startMs = Int64(startedAt.timeIntervalSince1970 * 1000)
        do {
            if spec.uploads != nil { countsBefore = try audit.counts() }
            // Secured: the driver's hospitals present their institutions' keys, from where the cluster took its own.
            let hospitalKeys = try HospitalKeys.of(topology, explicit: options.keys,
                                                   recorded: (try? Cluster(dataDirectory: dataDirectory).record())?.keys)
            let driver = try LoadDriver(topology: topology, load: load, uploads: spec.uploads, seed: spec.seed,
                                        durationMs: spec.durationMs, hospitalKeys: hospitalKeys)
            log("running \(spec.name): \(driver.expectedArrivals) settlements and \(driver.expectedBatches) upload batches over \(Double(spec.durationMs) / 1000) s, seed \(spec.seed)")
            // Decision traces of an earlier run on an attached cluster would count again.
            for node in topology.nodes { try? FileManager.default.removeItem(atPath: layout.linkDecisionsPath(node.id)) }
            let injector = FaultInjector(faults: spec.faults, cluster: Cluster(dataDirectory: dataDirectory),
                                         linkFaultsFile: layout.linkFaultsFile, seed: spec.seed, log: log)
            defer { injector.clearAll(nowUs: Int64(Date().timeIntervalSince(startedAt) * 1e6)) }
            (measurement, uploadMeasurement) = try driver.run(progress: progress, tick: injector.tick)
            injector.clearAll(nowUs: Int64(Date().timeIntervalSince(startedAt) * 1e6))
            faultRecords = injector.records
        } catch {
            throw ScenarioError(code: .runFailed, message: "the load could not be carried out: \(error)")
        }
        var report = ReportBuilder.build(spec: spec, topologyPath: topology.file, startedAt: startedAt, measurement: measurement,
                                         stages: ArrivalSchedule.stageStarts((load?.executor ?? spec.uploads?.executor)!),
                                         build: options.build)
        report.faults = faultRecords
        report.pack = options.attachDataDirectory.flatMap { try? Cluster(dataDirectory: $0).record().packing }
            ?? (packing == .none ? nil : packing.description)
        if spec.uploads != nil {
            do {
                log("waiting for the provincial tiers to hand every record to the national store")
                if try !audit.waitForNationalStore(timeoutS: 30) { log("warning: records still queued for the national store after 30 s") }
                try addUploadFigures(to: &report, spec: spec, audit: audit, countsBefore: countsBefore, sinceMs: startMs,
                                     sent: uploadMeasurement)
            } catch {
                throw ScenarioError(code: .runFailed, message: "cannot read the ledgers in \(dataDirectory): \(error)")
            }
        }
        do {
            try addTicketFigures(to: &report, audit: audit, sinceMs: startMs, timeoutS: 5)
        } catch {
            log("warning: cannot read the ticket registry: \(error)")
        }
        // After an overload the nodes may still be resolving settlements in doubt: reconcile what
        // they settle on, not a moment of the catch-up.
        waitForQuiet(Cluster(dataDirectory: dataDirectory), topology: topology, timeoutS: 60, log: log)
        do {
            // Every settlement is answered by now; the provincial outboxes were waited for above.
            let result = Reconciler(topology: topology).check(try ClusterSnapshot.read(topology: topology, dataDirectory: dataDirectory))
            report.reconciliation = ReconciliationFigures(result)
            log(ReconciliationText.verdict(result))
        } catch {
            log("warning: cannot reconcile the ledgers in \(dataDirectory): \(error)")
        }
        do {
            report.network = try NetworkFigures.read(topology: topology, dataDirectory: dataDirectory,
                                                     settlements: report.settlements.attempted)
        } catch {
            log("warning: cannot read the time per hop from the ledgers in \(dataDirectory): \(error)")
        }
        report.faults = FaultInjector.withEffects(report.faults, traceFiles: topology.nodes.map { layout.linkDecisionsPath($0.id) })
        // Thresholds may name upload, ticket and reconciliation figures: evaluate again with them in the report.
        report = ReportBuilder.applyThresholds(spec.thresholds, to: report)
        try writeReports(report, into: output, baseline: options.baseline)
        return Outcome(report: report, outputDirectory: output)
    }

    /// The upload and dirty-data figures, from what the ledgers counted since `countsBefore`
    /// and what the hospitals sent; the governance loop's, if the scenario runs one.
    public static func addUploadFigures(to report: inout RunReport, spec: ScenarioSpec, audit: DataQualityAudit,
                                        countsBefore: [DivisionCode: [String: Int]], sinceMs: Int64,
                                        sent: UploadMeasurement) throws {
        let (uploads, dirty) = try audit.figures(before: countsBefore, sinceMs: sinceMs, sent: sent,
                                                 loadSeconds: Double(spec.durationMs) / 1000)
        report.uploads = uploads
        report.dirtyData = dirty
        if let loop = spec.uploads?.governance {
            report.dirtyData?.governance = ReportBuilder.governance(loop, sent: sent, timeline: report.timeline,
                                                                    loadSeconds: Double(spec.durationMs) / 1000)
        }
        for (code, count) in sent.errorsByCode { report.errors.byCode[code, default: 0] += count }
    }

    /// The tickets opened since `sinceMs` and the backlog over the run's timeline.
    public static func addTicketFigures(to report: inout RunReport, audit: DataQualityAudit, sinceMs: Int64, timeoutS: Double) throws {
        report.tickets = try audit.tickets(sinceMs: sinceMs, timeoutS: timeoutS)
        let step = report.timelineStepS ?? 1
        let backlog = try audit.ticketBacklog(sinceMs: sinceMs, endSeconds: report.timeline.map { $0.second + step })
        for index in report.timeline.indices { report.timeline[index].ticketsOpen = backlog[index] }
    }

    /// report.json, report.md and report.html into `output`.
    /// `baseline`: an earlier run drawn beside this one in report.html.
    public static func writeReports(_ report: RunReport, into output: String, baseline: Baseline? = nil) throws(ScenarioError) {
        do {
            try JSONEncoder.settlenet().encode(report).write(to: URL(fileURLWithPath: "\(output)/report.json"))
            try ReportRendering.markdown(report).write(toFile: "\(output)/report.md", atomically: true, encoding: .utf8)
            try ReportRendering.html(report, baseline: baseline).write(toFile: "\(output)/report.html", atomically: true, encoding: .utf8)
        } catch {
            throw ScenarioError(code: .runFailed, message: "cannot write the reports into \(output): \(error)")
        }
    }

    /// Waits until no node has requests pending or settlements in doubt (status files), up to
    /// `timeoutS`, saying what it waits for every 5 s.
    static func waitForQuiet(_ cluster: Cluster, topology: Topology, timeoutS: Double, log: (String) -> Void) {
        let started = Date()
        var lastSaid = started
        while true {
            let busy = topology.nodes.compactMap { cluster.readStatus($0.id.value) }
                .filter { $0.state == "running" && ($0.pending > 0 || ($0.resolving ?? 0) > 0) }
            if busy.isEmpty { return }
            if Date().timeIntervalSince(started) >= timeoutS {
                log("warning: after \(Int(timeoutS)) s, \(busy.count) nodes still have requests pending or settlements in doubt; reconciling anyway")
                return
            }
            if Date().timeIntervalSince(lastSaid) >= 5 {
                lastSaid = Date()
                log("waiting for \(busy.count) nodes to finish: \(busy.reduce(0) { $0 + $1.pending }) requests pending, \(busy.reduce(0) { $0 + ($1.resolving ?? 0) }) settlements in doubt")
            }
            usleep(200_000)
        }
    }
}
