import ClusterControl
import Foundation
import Persistence
import LinkSecurity
import NetworkTopology
import Scenario
import SettlementCore
import SettlementModel
import ZeroMQ

/// `settlenet bench`: the transport baseline and the four figures of the real network, measured
/// in one invocation on one machine, so that the ratios compare like with like.
public enum BenchRun {
    public struct Options: Sendable {
        public var topologyPath: String
        public var output: String
        public var executable: String
        public var build: String
        public var seconds: Double
        public var baselineWindow: Int
        public var windows: [Int]
        public var latencyRate: Int
        public var latencySeconds: Int
        public var uploadWindow: Int
        public var uploadBatchSize: Int
        public var seed: UInt64
        /// In-flight window and rounds of each kind for the security step (6); 0 rounds skips it.
        public var securityWindow: Int = 128
        public var securityRounds: Int = 2
        /// Rounds of the baseline and the closed loop, taking turns (A B A B ...): each figure is
        /// the median, and the spread is kept. The machine's noise is larger than most changes.
        public var rounds: Int = 3
        /// How the clusters measured pack nodes into processes: each is launched beside the
        /// others and measured in turn. The first also carries the upload and security steps.
        public var packings: [Packing] = [.province, .none]

        public init(topologyPath: String, output: String, executable: String, build: String, seconds: Double = 8,
                    baselineWindow: Int = 256, windows: [Int] = [32, 128, 256], latencyRate: Int = 1_000, latencySeconds: Int = 15,
                    uploadWindow: Int = 8, uploadBatchSize: Int = 1_000, seed: UInt64 = 20_261_123) {
            self.topologyPath = topologyPath; self.output = output; self.executable = executable; self.build = build
            self.seconds = seconds; self.baselineWindow = baselineWindow; self.windows = windows; self.latencyRate = latencyRate
            self.latencySeconds = latencySeconds; self.uploadWindow = uploadWindow; self.uploadBatchSize = uploadBatchSize
            self.seed = seed
        }
    }

    /// One cluster under test: the topology launched with one packing of nodes into processes.
    struct Network {
        var packing: Packing
        var topology: Topology
        var cluster: Cluster
        var dataDirectory: String
        var driver: ClosedLoop
    }

    public static func run(_ options: Options, log: @escaping (String) -> Void) throws -> BenchReport {
        try FileManager.default.createDirectory(atPath: options.output, withIntermediateDirectories: true)
        let topology = try TopologyLoader.load(path: options.topologyPath)
        var report = BenchReport(machine: .init(cores: ProcessInfo.processInfo.activeProcessorCount, build: options.build,
                                                libzmq: Context.versionString, sqlite: Ledger.sqliteVersion, topology: topology.file,
                                                startedAt: ISO8601DateFormatter().string(from: Date())))

        let frames = WireCodec.sealed(WireCodec.frames(try sampleCrossProvinceRequest(topology)))
        // Before any cluster runs: the machine's own cost of a wake-up, for the driver's figure.
        log("0/6 the cost of a wake-up on this machine: 1,000 timed 1 ms sleeps, 1,000 wakes by a pipe")
        report.machine.wakeCost = try WakeCost.measure()
        if let wake = report.machine.wakeCost {
            log(String(format: "    timed %.1f µs, by a pipe %.1f µs of the woken thread's CPU", wake.timedUs, wake.byDescriptorUs))
        }

        // Every packing's cluster runs side by side on ports of its own; an idle one costs next to nothing.
        var networks: [Network] = []
        defer { for network in networks { _ = try? network.cluster.down() } }
        for packing in options.packings {
            let dataDirectory = "\(options.output)/cluster-\(packing)"
            try? FileManager.default.removeItem(atPath: dataDirectory)
            let cluster = Cluster(dataDirectory: dataDirectory, log: log)
            let (placed, record) = try cluster.upOnFreePorts(topology: topology, executable: options.executable, packing: packing,
                                                             preferOwn: networks.isEmpty)
            // Native links: libzmq's I/O thread would be woken for every send and answer, on the
            // cores the cluster is measured on.
            let driver = try ClosedLoop(topology: placed, native: true)
            let pids = Set(record.nodes.map(\.pid))
            driver.clusterCPUSeconds = { processCPUSeconds(pids) }
            networks.append(Network(packing: packing, topology: placed, cluster: cluster, dataDirectory: dataDirectory, driver: driver))
        }

        // 1 and 2 take turns, round after round.
        var baselines: [TransportBaseline.Result] = [], durables: [TransportBaseline.Result] = []
        let journals = "\(options.output)/journals"
        try FileManager.default.createDirectory(atPath: journals, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: journals) }
        var byRun: [String: [ClosedLoop.Result]] = [:]
        for round in 1...max(1, options.rounds) {
            // 1. The transport alone, on ports of its own each round (a relay's port lingers after it stops).
            guard let relayPort = Cluster.freePorts(TransportBaseline.relayCount + 1, host: topology.host) else {
                throw SettleNetError(.bench, "no 7 consecutive free ports on \(topology.host) from 20000 up to the ephemeral port range for the relay chain; free some ports and run again")
            }
            log("1/6 transport baseline, round \(round) of \(options.rounds): 7 processes (6 zmq_proxy relays and an echo), \(options.baselineWindow) in flight, \(options.seconds) s")
            let baseline = try TransportBaseline.measure(executable: options.executable, host: topology.host, basePort: relayPort,
                                                         window: options.baselineWindow, seconds: options.seconds, frames: frames)
            log(String(format: "    %.0f round trips/s", baseline.perSecond))
            baselines.append(baseline)
            guard let durablePort = Cluster.freePorts(TransportBaseline.relayCount + 1, host: topology.host) else {
                throw SettleNetError(.bench, "no 7 consecutive free ports on \(topology.host) for the durable relay chain; free some ports and run again")
            }
            log("1/6 durable chain, round \(round): the same relays, each fdatasyncing what it drained before passing answers back, the first its requests too and the echo before echoing: 8 syncs in series, as a settlement")
            let durable = try TransportBaseline.measure(executable: options.executable, host: topology.host, basePort: durablePort,
                                                        window: options.baselineWindow, seconds: options.seconds, frames: frames,
                                                        journals: journals)
            log(String(format: "    %.0f round trips/s", durable.perSecond))
            durables.append(durable)
            for network in networks {
                for window in options.windows {
                    log("2/6 cross-province settlements, packed \(network.packing), round \(round) of \(options.rounds), closed loop, \(window) in flight, \(options.seconds) s")
                    var result = try network.driver.settlements(window: window, seconds: options.seconds,
                                                                seed: options.seed &+ UInt64(window) &+ UInt64(round) << 32)
                    result.packing = network.packing.description
                    log(String(format: "    %.0f settlements/s, p50 %.2f ms, p99 %.2f ms, %d errors", result.perSecond, result.p50Ms, result.p99Ms, result.errors))
                    byRun["\(network.packing) \(window)", default: []].append(result)
                }
            }
        }
        report.baseline = median(baselines, by: \.perSecond)
        report.baseline?.samples = baselines.map(\.perSecond)
        report.durableBaseline = median(durables, by: \.perSecond)
        report.durableBaseline?.samples = durables.map(\.perSecond)
        for network in networks {
            for window in options.windows {
                let rounds = byRun["\(network.packing) \(window)"] ?? []
                guard var middle = median(rounds, by: \.perSecond) else { continue }
                middle.samples = rounds.map(\.perSecond)
                middle.errors = rounds.reduce(0) { $0 + $1.errors }
                middle.errorCodes = rounds.reduce(into: [:]) { all, round in all.merge(round.errorCodes, uniquingKeysWith: +) }
                report.settlements.append(middle)
            }
        }

        var memorySample: [String: Double] = [:]
        var reconciled = true
        for network in networks {
            for routes in [LatencyMix.crossProvince, .allRoutes] {
                log("3/6 latency, packed \(network.packing): \(options.latencyRate) settlements a second, \(routes.description), for \(options.latencySeconds) s (open model)")
                let slowBefore = try slowSyncs(network.cluster)
                let outcome = try measureLatency(network, routes: routes, options: options) { elapsedS in
                    // Steady state: halfway through the fixed-rate load of the network that packs least.
                    if memorySample.isEmpty, network.packing == networks.last?.packing, elapsedS >= Double(options.latencySeconds) / 2 {
                        memorySample = (try? residentMB(network.cluster)) ?? [:]
                    }
                }
                let latency = outcome.report.settlements
                report.latency.append(.init(packing: network.packing.description, routes: routes.rawValue, ratePerS: options.latencyRate,
                                            seconds: options.latencySeconds, attempted: latency.attempted,
                                            succeeded: latency.succeeded, failed: latency.failed, dropped: latency.dropped,
                                            p50Ms: latency.latencyMs.p50, p90Ms: latency.latencyMs.p90, p99Ms: latency.latencyMs.p99,
                                            p999Ms: latency.latencyMs.p999, maxMs: latency.latencyMs.max,
                                            driverCPUPct: outcome.report.driver?.cpuSharePct,
                                            slowSyncs: try slowSyncs(network.cluster).map { $0 - (slowBefore ?? 0) }))
                reconciled = reconciled && outcome.report.reconciliation?.passed == true
                log(String(format: "    p50 %.2f ms, p99 %.2f ms, p999 %.2f ms; every ledger reconciled: %@; ledger syncs of 50 ms or more: %lld",
                           latency.latencyMs.p50, latency.latencyMs.p99, latency.latencyMs.p999,
                           outcome.report.reconciliation?.passed == true ? "yes" : "NO", report.latency.last?.slowSyncs ?? 0))
            }
        }
        report.reconciled = reconciled
        // The floor for that latency: the relay chain under the same open model.
        guard let floorPort = Cluster.freePorts(TransportBaseline.relayCount + 1, host: topology.host) else {
            throw SettleNetError(.bench, "no 7 consecutive free ports on \(topology.host) for the relay chain; free some ports and run again")
        }
        report.baselineLatency = try TransportBaseline.measure(executable: options.executable, host: topology.host, basePort: floorPort,
                                                               window: 0, seconds: Double(options.latencySeconds), frames: frames,
                                                               openModelRatePerS: options.latencyRate)
        // And the durable chain: what eight syncs in series cost at that rate on this disk.
        report.durableBaselineLatency = try TransportBaseline.measure(executable: options.executable, host: topology.host, basePort: floorPort,
                                                                      window: 0, seconds: Double(options.latencySeconds), frames: frames,
                                                                      journals: journals, openModelRatePerS: options.latencyRate)

        let measured = networks.last!
        log("4/6 memory: resident set per node at steady state, packed \(measured.packing) (sampled during step 3)")
        if memorySample.isEmpty { memorySample = try residentMB(measured.cluster) }
        report.memory = .init(residentMB: memorySample, packing: measured.packing.description)
        log(String(format: "    largest %.1f MB, mean %.1f MB over %d nodes", report.memory!.maxMB, report.memory!.meanMB, memorySample.count))

        let first = networks[0]
        log("5/6 uploads, packed \(first.packing): clean batches of \(options.uploadBatchSize) records, \(options.uploadWindow) in flight, \(options.seconds) s, until the national store holds them")
        let national = topology.nodes.first { $0.tier == .national }!.id
        let store = try Ledger(path: DataLayout(root: first.dataDirectory).ledgerPath(national))
        func stored() throws -> Int { try store.read { try $0.count(table: .uploadClaims) } }
        let before = try stored()
        let cpuBefore = first.driver.clusterCPUSeconds?()
        let startedUs = monotonicUs()
        let (batches, accepted) = try first.driver.uploads(window: options.uploadWindow, seconds: options.seconds,
                                                           batchSize: options.uploadBatchSize, seed: options.seed)
        var now = try stored()
        let deadline = monotonicUs() + 60_000_000
        while now - before < accepted && monotonicUs() < deadline {
            usleep(20_000)
            now = try stored()
        }
        let seconds = Double(monotonicUs() - startedUs) / 1e6
        report.uploads = .init(batchSize: options.uploadBatchSize, window: options.uploadWindow, accepted: accepted,
                               storedNational: now - before, seconds: seconds, perSecond: Double(now - before) / seconds,
                               errors: batches.errors, askedAgain: batches.askedAgain ?? 0)
        // Like the settlements' figure: steadier than the rate on a machine whose speed changes.
        if let cpuBefore, let cpuAfter = first.driver.clusterCPUSeconds?(), now > before {
            report.uploads!.cpuUsPerRecord = (cpuAfter - cpuBefore) * 1e6 / Double(now - before)
        }
        log(String(format: "    %d records in the national store in %.1f s: %.0f records/s, cluster CPU %.1f µs each", now - before, seconds,
                   report.uploads!.perSecond, report.uploads!.cpuUsPerRecord ?? 0))
        if options.securityRounds > 0 {
            report.security = try measureSecurityCost(first, options: options, log: log)
        }
        report.evaluateTargets()
        return report
    }

    /// What the latency step sends.
    enum LatencyMix: String, CustomStringConvertible {
        case crossProvince = "cross_province"
        case allRoutes = "all"

        var description: String { self == .crossProvince ? "cross-province only" : "every route class" }
        var yaml: String {
            self == .crossProvince ? "route: { cross_province: 1 }"
                : "route: { local: 1, intra_city: 1, intra_province: 1, cross_province: 1 }"
        }
    }

    /// Step 3 on one network: the scenario runner's open model at the latency rate, then reconciliation.
    static func measureLatency(_ network: Network, routes: LatencyMix, options: Options,
                               progress: @escaping (Double) -> Void) throws -> ScenarioRunner.Outcome {
        let name = "latency-\(network.packing)-\(routes.rawValue)"
        let scenarioFile = "\(options.output)/\(name).yaml"
        try """
            name: bench-\(name)
            topology: \(network.topology.file)
            seed: \(options.seed)
            duration: \(options.latencySeconds)s
            load:
              settlements:
                executor: constant-arrival-rate
                rate: \(options.latencyRate)
                mix:
                  \(routes.yaml)
                  inpatient: 0.2
                max_in_flight: 5000
            """.write(toFile: scenarioFile, atomically: true, encoding: .utf8)
        return try ScenarioRunner.run(
            ScenarioRunOptions(scenarioPath: scenarioFile, outputDirectory: "\(options.output)/\(name)",
                               attachDataDirectory: network.dataDirectory, executable: options.executable, build: options.build),
            log: { _ in }, progress: { progress($0.elapsedS) })
    }

    /// Step 6: the same closed loop on the secured twin of the topology, launched beside the
    /// plaintext cluster, the two taking turns so that machine noise falls on both alike.
    static func measureSecurityCost(_ plain: Network, options: Options,
                                    log: @escaping (String) -> Void) throws -> BenchReport.Security {
        let topology = plain.topology
        // Both speak ZMTP themselves, one in clear and one under CURVE: the two are driven alike.
        let plaintext = try ClosedLoop(topology: topology, native: true)
        plaintext.clusterCPUSeconds = plain.driver.clusterCPUSeconds
        guard !topology.isSecured else {
            throw SettleNetError(.bench, "\(topology.file) is secured already: give bench the plaintext topology, it makes the secured twin itself")
        }
        // The twin: the same file with security on, its keys made in its own data directory.
        let twinFile = "\(options.output)/secured-\(URL(fileURLWithPath: topology.file).lastPathComponent)"
        let text = try String(contentsOfFile: topology.file, encoding: .utf8)
        try (text + "\n# Added by settlenet bench: the secured twin.\nsecurity:\n  curve: true\n").write(toFile: twinFile, atomically: true, encoding: .utf8)
        let dataDirectory = "\(options.output)/secured-cluster"
        try? FileManager.default.removeItem(atPath: dataDirectory)
        let cluster = Cluster(dataDirectory: dataDirectory, log: { _ in })
        log("6/6 security: launching the secured twin packed \(plain.packing) (CURVE on every link, each port admitting its keys, a key per institution), then \(options.securityRounds) rounds of each, \(options.securityWindow) in flight, \(options.seconds) s")
        let (twin, record) = try cluster.upOnFreePorts(topology: try TopologyLoader.load(path: twinFile), executable: options.executable,
                                                       packing: plain.packing, preferOwn: false)
        defer { _ = try? cluster.down() }
        let keys = try HospitalKeys.of(twin, explicit: nil, recorded: record.keys)
        let secured = try ClosedLoop(topology: twin, hospitalKeys: keys, native: true)
        var plainResults: [ClosedLoop.Result] = [], securedResults: [ClosedLoop.Result] = []
        for round in 0..<options.securityRounds {
            let seed = options.seed &+ 6_000 &+ UInt64(round)
            // A B, then B A: whichever runs second in a round does not always get the warmer machine.
            let securedFirst = round % 2 == 1
            if securedFirst { securedResults.append(try secured.settlements(window: options.securityWindow, seconds: options.seconds, seed: seed)) }
            plainResults.append(try plaintext.settlements(window: options.securityWindow, seconds: options.seconds, seed: seed))
            if !securedFirst { securedResults.append(try secured.settlements(window: options.securityWindow, seconds: options.seconds, seed: seed)) }
            log(String(format: "    round %d: plaintext %.0f/s, secured %.0f/s", round + 1, plainResults.last!.perSecond, securedResults.last!.perSecond))
        }
        var cost = BenchReport.Security(window: options.securityWindow, seconds: options.seconds, plaintext: plainResults, secured: securedResults)
        log(String(format: "    secured / plaintext settlements: %.1f %%", 100 * cost.ratio))

        // The encryption alone: the relay chain of step 1, plaintext then CURVE.
        guard let ports = Cluster.freePorts(2 * (TransportBaseline.relayCount + 1), host: topology.host) else {
            throw SettleNetError(.bench, "no \(2 * (TransportBaseline.relayCount + 1)) consecutive free ports on \(topology.host) for the relay chains")
        }
        let frames = WireCodec.sealed(WireCodec.frames(try sampleCrossProvinceRequest(topology)))
        let plainChain = try TransportBaseline.measure(executable: options.executable, host: topology.host, basePort: ports,
                                                       window: options.baselineWindow, seconds: options.seconds, frames: frames)
        let curveChain = try TransportBaseline.measure(executable: options.executable, host: topology.host,
                                                       basePort: ports + TransportBaseline.relayCount + 1, window: options.baselineWindow,
                                                       seconds: options.seconds, frames: frames, curve: try CurveKeyPair.generate())
        cost.transportPlaintextPerS = plainChain.perSecond
        cost.transportCurvePerS = curveChain.perSecond
        log(String(format: "    relay chain: plaintext %.0f, CURVE %.0f round trips/s (%.1f %%)", plainChain.perSecond, curveChain.perSecond,
                   100 * (cost.transportRatio ?? 0)))
        return cost
    }

    /// The request a cross-province settlement carries, as the sizes of the baseline's messages.
    static func sampleCrossProvinceRequest(_ topology: Topology) throws -> WireRequest {
        let load = SettlementLoad(executor: .constantArrivalRate(ratePerS: 1), mix: .init(routes: [.crossProvince: 1]), maxInFlight: 1)
        var planner = try LoadPlanner(topology: topology, load: load, seed: 1)
        let plan = planner.next()
        var factory = RequestFactory(institution: plan.institution, treatment: plan.origin)
        return factory.settlement(psnNo: plan.psnNo, insured: plan.insured, bill: plan.bill, inpatient: false, nowMs: wallClockMs())
    }

    /// User and system CPU seconds the processes `pids` have used so far, every thread (/proc/PID/stat).
    static func processCPUSeconds(_ pids: Set<Int32>) -> Double {
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        return pids.reduce(0) { total, pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let afterName = stat.lastIndex(of: ")") else { return total }
            // After "pid (comm)": state is field 3, utime 14 and stime 15.
            let fields = stat[stat.index(after: afterName)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return total }
            return total + (user + system) / ticksPerSecond
        }
    }

    /// Ledger syncs of 50 ms or more so far, summed over the cluster's nodes as their status
    /// files last reported them; nil when none reports them.
    static func slowSyncs(_ cluster: Cluster) throws -> Int64? {
        let counts = try cluster.record().nodes.compactMap { cluster.readStatus($0.id)?.slowSyncs }
        return counts.isEmpty ? nil : counts.reduce(0, +)
    }

    /// Every running node's resident set (VmRSS), in MB: a packed process's shared among its nodes.
    static func residentMB(_ cluster: Cluster) throws -> [String: Double] {
        var sizes: [String: Double] = [:]
        let nodes = try cluster.record().nodes
        let nodesPerProcess = Dictionary(grouping: nodes, by: \.pid).mapValues(\.count)
        for node in nodes {
            guard let status = try? String(contentsOfFile: "/proc/\(node.pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kB = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { continue }
            sizes[node.id] = kB / 1024 / Double(nodesPerProcess[node.pid] ?? 1)
        }
        return sizes
    }
}

/// The middle one of `results` by `key` (the lower middle of an even count).
func median<T>(_ results: [T], by key: (T) -> Double) -> T? {
    let sorted = results.sorted { key($0) < key($1) }
    return sorted.isEmpty ? nil : sorted[(sorted.count - 1) / 2]
}
