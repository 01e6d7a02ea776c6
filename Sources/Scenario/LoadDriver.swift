import Foundation
import NetworkTopology
import SettlementCore
import SettlementModel
import LinkSecurity
import ZeroMQ

/// Drives a scenario's load against a running cluster: the `Hospitals` on the wall clock, over
/// real links (one DEALER per county node, or per institution on secured links), all owned by
/// one thread that waits for answers until the next arrival is due.
public final class LoadDriver {
    public let hospitals: Hospitals
    private let context: Context
    private let links: HospitalLinks

    /// `hospitalKeys`: the institutions' keys, on a secured topology.
    public init(topology: Topology, load: SettlementLoad?, uploads: UploadLoad? = nil, catalog: Catalog = .national(),
                seed: UInt64, durationMs: Int64, hospitalKeys: HospitalKeys? = nil) throws {
        // One socket per county (the whole country has 2,851, beyond libzmq's default of
        // 1,023), or per institution on secured links.
        let socketCount = HospitalLinks.socketCount(topology, secured: hospitalKeys != nil)
        let context = try Context(maxSockets: Int32(max(1_023, socketCount + 64)))
        let links = try HospitalLinks(context: context, topology: topology, keys: hospitalKeys, native: true) { socket in
            try socket.setLinger(milliseconds: 0)
            try socket.setSendHighWaterMark(1_000_000)
            try socket.setReceiveHighWaterMark(1_000_000)
        }
        self.context = context
        self.links = links
        hospitals = try Hospitals(topology: topology, load: load, uploads: uploads, catalog: catalog, seed: seed,
                                  durationMs: durationMs, wallClockMs: { wallClockMs() },
                                  outlet: { request, county in try links.send(request, county: county) })
    }

    public var expectedArrivals: Int { hospitals.expectedArrivals }
    public var expectedBatches: Int { hospitals.expectedBatches }

    /// Until when to wait for answers (microseconds of the run) when the next arrival is due at
    /// `dueUs`: exactly then, to the microsecond. Rounded down to a millisecond, every wait under
    /// one was a poll that returned at once and the driver spun the core the network needed;
    /// rounded up, each arrival left up to a millisecond late. Nothing due within 50 ms: the
    /// next 50 ms mark, to look at progress and the end, which stays put until it passes
    /// (the poller arms its timer again only for a new deadline).
    public static func waitDeadlineUs(nowUs: Int64, dueUs: Int64?) -> Int64 {
        let mark = (max(0, nowUs) / 50_000 + 1) * 50_000
        guard let dueUs else { return mark }
        return min(max(dueUs, nowUs), mark)
    }

    public func run(progress: (Progress) -> Void, tick onTick: (Int64) -> Void = { _ in }) throws -> (Measurement, UploadMeasurement) {
        let start = monotonicUs()
        // The driver's cost: its thread, and libzmq's I/O threads where its links use libzmq.
        let cpuStart = threadCPUTimeUs() + Context.ioThreadsCPUTimeUs()
        while true {
            var now = monotonicUs() - start
            onTick(now)
            try hospitals.step(nowUs: now)
            if hospitals.isFinished(nowUs: now) { break }
            let readable = try links.poller.wait(untilUs: start + Self.waitDeadlineUs(nowUs: now, dueUs: hospitals.nextDueUs))
            now = monotonicUs() - start
            for index in readable {
                while let frames = try links.sockets[index].receive(wait: false) { try hospitals.received(frames, nowUs: now) }
            }
            hospitals.noteProgress(nowUs: now, progress)
        }
        var (measurement, uploads) = hospitals.finish()
        measurement.driverCPUUs = threadCPUTimeUs() + Context.ioThreadsCPUTimeUs() - cpuStart
        measurement.driverWallUs = monotonicUs() - start
        return (measurement, uploads)
    }
}
