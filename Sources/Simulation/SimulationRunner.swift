import Foundation
import Logging
import NetworkTopology
import NodeRuntime
import Reconciliation
import Scenario
import SettlementCore
import SettlementModel

/// What `settlenet sim` was asked to do.
public struct SimulationOptions: Sendable {
    public var scenarioPath: String
    public var topologyOverride: String?
    public var seedOverride: UInt64?
    public var outputDirectory: String?
    /// Keep the nodes' ledgers here (for `settlenet reconcile`); else they live in a temporary
    /// directory removed at the end.
    public var keepLedgers: String?
    /// The model's parameters set here win over the scenario's `simulation:` section.
    public var modelOverrides: [String: Int64] = [:]
    /// An earlier run drawn beside this one in report.html (`--baseline`).
    public var baseline: Baseline?
    public var build: String

    public init(scenarioPath: String, build: String) {
        self.scenarioPath = scenarioPath
        self.build = build
    }
}

/// A moment of a simulated run, for the progress line.
public struct SimulationProgress: Sendable {
    public var virtualS: Double
    public var durationS: Double
    public var events: Int
    public var wallS: Double
}

/// Runs a scenario file on the simulated network, from its file to its three reports: the
/// scenario runner's load planner, hospitals, thresholds, reconciliation and reports, on
/// virtual time.
public enum SimulationRunner {
    /// Past this many settlements `sim` leaves report.json's `network` out (see `run`).
    public static let networkFiguresLimit = 2_000_000

    public static func run(_ options: SimulationOptions, log: @escaping (String) -> Void,
                           progress: (SimulationProgress) -> Void) throws(ScenarioError) -> ScenarioRunner.Outcome {
        var spec: ScenarioSpec
        do { spec = try ScenarioLoader.load(path: options.scenarioPath) } catch {
            throw ScenarioError(code: .invalidScenario, message: "scenario problems, nothing simulated:\n\(error)")
        }
        if let seed = options.seedOverride { spec.seed = seed }
        if let override = options.topologyOverride { spec.topology = override }
        guard let path = spec.resolvedTopologyPath() else {
            throw ScenarioError(code: .invalidScenario, message: "\(spec.file): topology \"\(spec.topology)\" not found (relative paths resolve from the working directory, then from the scenario's folder)")
        }
        let topology: Topology
        do { topology = try TopologyLoader.load(path: path) } catch {
            throw ScenarioError(code: .invalidScenario, message: "topology problems, nothing simulated:\n\(error)")
        }
        if let load = spec.settlements {
            do { _ = try LoadPlanner(topology: topology, load: load, seed: spec.seed) } catch {
                throw ScenarioError(code: .invalidScenario, message: "\(error)")
            }
        }
        for fault in spec.faults {
            let place = "\(spec.file):\(fault.line.map(String.init) ?? "?")"
            if case .crash = fault.action {
                throw ScenarioError(code: .invalidScenario, message: "\(place): field faults: a crash stops a real process at a point of its commit cycle; run this scenario with `settlenet scenario run`, or use kill: a simulation's kill loses what no sync covered")
            }
            for node in fault.nodes where DivisionCode(node).flatMap(topology.node) == nil {
                throw ScenarioError(code: .invalidScenario, message: "\(place): fault names node \(node), which is not in \(topology.file)")
            }
            if fault.nodes.count == 2, let a = DivisionCode(fault.nodes[0]), let b = DivisionCode(fault.nodes[1]),
               topology.node(a)?.parent != b && topology.node(b)?.parent != a {
                throw ScenarioError(code: .invalidScenario, message: "\(place): \(fault.node) is not a link of \(topology.file) (a link joins a node and its parent)")
            }
        }

        let output = options.outputDirectory ?? "run/reports/\(spec.name)-sim-\(CivilTime(unixMs: wallClockMs()).compact)"
        let dataDirectory = options.keepLedgers ?? "\(output)/.ledgers-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            if options.keepLedgers != nil, FileManager.default.fileExists(atPath: "\(dataDirectory)/nodes") {
                throw ScenarioError(code: .invalidScenario, message: "--keep-ledgers \(dataDirectory): it holds ledgers already (nodes/); give an empty or new directory")
            }
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch let error as ScenarioError {
            throw error
        } catch {
            throw ScenarioError(code: .runFailed, message: "cannot create \(output) or \(dataDirectory): \(error)")
        }
        defer { if options.keepLedgers == nil { try? FileManager.default.removeItem(atPath: dataDirectory) } }

        let model = SimulationModel(overriding: spec.simulationModel.merging(options.modelOverrides) { _, given in given })
        let wallStart = monotonicUs()
        var report: RunReport
        do {
            // The nodes' warnings and errors, in one file (their info lines would be most of a run's time).
            let logger = Logger(label: "settlenet.sim") { label in
                (try? FileLogHandler(label: label, path: "\(output)/sim.log", level: .warning)).map { $0 as any LogHandler }
                    ?? SwiftLogNoOpLogHandler()
            }
            let simulation = try Simulation(topology: topology, dataDirectory: dataDirectory, model: model,
                                            seed: spec.seed, logger: logger)
            defer { try? simulation.stop() }   // after a failure; a run that ends stops it below
            func wallS() -> String { String(format: "%.1f s", Double(monotonicUs() - wallStart) / 1e6) }
            log("made \(topology.nodes.count) nodes and their ledgers (\(wallS()))")
            try simulation.start()
            log("every node signed in after \(String(format: "%.2f", Double(simulation.nowUs) / 1e6)) s of virtual time (\(wallS()))")
            let startMs = simulation.epochMs + simulation.nowUs / 1_000
            let startedAt = Date(timeIntervalSince1970: Double(startMs) / 1_000)
            let audit = DataQualityAudit(topology: topology, dataDirectory: dataDirectory)
            // The ledgers are new (a directory that holds some is refused): nothing counted before.
            let countsBefore: [DivisionCode: [String: Int]] = [:]
            let hospitals = try Hospitals(topology: topology, load: spec.settlements, uploads: spec.uploads, seed: spec.seed,
                                          durationMs: spec.durationMs,
                                          wallClockMs: { [unowned simulation] in simulation.epochMs + simulation.nowUs / 1_000 },
                                          outlet: { [unowned simulation] request, county in try simulation.fromHospital(request, county: county) })
            log("simulating \(spec.name) on \(topology.file) (\(topology.nodes.count) nodes): \(hospitals.expectedArrivals) settlements and \(hospitals.expectedBatches) upload batches over \(Double(spec.durationMs) / 1_000) s of virtual time, seed \(spec.seed)")
            try simulation.drive(hospitals, faults: spec.faults, seed: spec.seed) { loadUs in
                progress(SimulationProgress(virtualS: Double(loadUs) / 1e6, durationS: Double(spec.durationMs) / 1_000,
                                            events: simulation.events, wallS: Double(monotonicUs() - wallStart) / 1e6))
            }
            log("load simulated (\(wallS())); \(simulation.events) events")
            if try !simulation.settle(withinUs: 120_000_000) {
                log("warning: after 120 s of virtual time some nodes still wait for answers or resolve settlements in doubt; reconciling anyway")
            }
            // The digest through the nodes' own connections; then they close, and the
            // audits and reconciliation read the files.
            log("settled (\(wallS())); digesting \(topology.nodes.count) ledgers")
            let ledgersDigest = try simulation.ledgersDigest()
            log("ledgers digested (\(wallS())); closing them")
            try simulation.stop()
            log("ledgers closed (\(wallS()))")
            let (measurement, uploads) = hospitals.finish()
            report = ReportBuilder.build(spec: spec, topologyPath: topology.file, startedAt: startedAt, measurement: measurement,
                                         stages: ArrivalSchedule.stageStarts((spec.settlements?.executor ?? spec.uploads?.executor)!),
                                         build: options.build)
            if spec.uploads != nil {
                try ScenarioRunner.addUploadFigures(to: &report, spec: spec, audit: audit, countsBefore: countsBefore,
                                                    sinceMs: startMs, sent: uploads)
            }
            // The run settled with every ticket message delivered: nothing to wait for.
            try ScenarioRunner.addTicketFigures(to: &report, audit: audit, sinceMs: startMs, timeoutS: 0)
            log("audits done (\(wallS())); reconciling")
            // A province at a time: a national day's ledgers at once would be about 40 GB of rows.
            var lastLineUs = monotonicUs()
            let result = try Reconciler(topology: topology).checkByProvince(dataDirectory: dataDirectory) { done, provinces in
                if monotonicUs() - lastLineUs >= 10_000_000 {
                    lastLineUs = monotonicUs()
                    log("reconciled \(done) of \(provinces) provinces (\(wallS()))")
                }
            }
            report.reconciliation = ReconciliationFigures(result)
            let layout = DataLayout(root: dataDirectory)
            report.faults = FaultInjector.withEffects(simulation.faultRecords,
                                                      traceFiles: topology.nodes.map { layout.linkDecisionsPath($0.id) })
            log(ReconciliationText.verdict(result) + " (\(wallS()))")
            // One more pass over every ledger: on the national day (18 million settlements) it would
            // add minutes to an hour's run, so a run that big leaves it out and says so.
            if report.settlements.attempted <= Self.networkFiguresLimit {
                report.network = try NetworkFigures.read(topology: topology, dataDirectory: dataDirectory,
                                                         settlements: report.settlements.attempted, closed: true)
                log("time per hop read (\(wallS()))")
            } else {
                log("time per hop not read: \(report.settlements.attempted) settlements, more than \(Self.networkFiguresLimit) (a shorter run of the same load gives it)")
            }
            report.simulation = SimulationFigures(model: model.parameters, virtualS: Double(simulation.nowUs) / 1e6,
                                                  events: simulation.events, wallS: Double(monotonicUs() - wallStart) / 1e6,
                                                  ledgersDigest: ledgersDigest)
            report = ReportBuilder.applyThresholds(spec.thresholds, to: report)
        } catch let error as ScenarioError {
            throw error
        } catch {
            throw ScenarioError(code: .runFailed, message: "the simulation could not be carried out: \(error)")
        }
        try ScenarioRunner.writeReports(report, into: output, baseline: options.baseline)
        return ScenarioRunner.Outcome(report: report, outputDirectory: output)
    }
}
