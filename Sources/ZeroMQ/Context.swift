import CZeroMQ
#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ context: owns the I/O threads; every socket is made from one.
/// libzmq contexts are thread-safe, so a Context can be shared.
public final class Context: @unchecked Sendable {  // zmq contexts are thread-safe by contract
    let handle: UnsafeMutableRawPointer

    /// `maxSockets`: libzmq's default of 1023 is too few for a process hosting many nodes, or
    /// a load driver with a socket per county of the whole country.
    public init(ioThreads: Int32 = 1, maxSockets: Int32? = nil) throws(ZeroMQError) {
        guard let handle = zmq_ctx_new() else {
            throw ZeroMQError(code: zmq_errno(), operation: "zmq_ctx_new")
        }
        self.handle = handle
        try zmqCall("zmq_ctx_set(IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) }
        if let maxSockets {
            try zmqCall("zmq_ctx_set(MAX_SOCKETS)") { zmq_ctx_set(handle, ZMQ_MAX_SOCKETS, maxSockets) }
        }
    }

    /// Makes a socket of the given type; the caller becomes its one owner.
    public func socket(_ type: SocketType) throws(ZeroMQError) -> Socket {
        try Socket(context: self, type: type)
    }

    deinit {
        // zmq_ctx_term blocks until every socket is closed; sockets hold a strong reference
        // to their context, so by the time this runs they are gone. Retry on EINTR.
        while zmq_ctx_term(handle) == -1 && zmq_errno() == EINTR {}
    }

    /// The CPU time, in microseconds, that libzmq's I/O threads of this process (named
    /// `ZMQbg/IO/n`) have used: the sending and receiving that a thread calling `zmq_send` hands
    /// over to them. A load driver's own cost is its thread's time plus theirs; its thread's
    /// alone left out a third of it (4 % of a core at 1,000 settlements a second).
    public static func ioThreadsCPUTimeUs() -> Int64 {
        guard let tasks = opendir("/proc/self/task") else { return 0 }
        defer { closedir(tasks) }
        var totalNs: Int64 = 0
        while let entry = readdir(tasks) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard tid.first?.isNumber == true, readLine("/proc/self/task/\(tid)/comm")?.hasPrefix("ZMQbg/IO") == true,
                  let schedstat = readLine("/proc/self/task/\(tid)/schedstat"),
                  let ns = Int64(schedstat.prefix { $0 != " " }) else { continue }
            totalNs += ns      // schedstat's first field: nanoseconds on a CPU
        }
        return totalNs / 1_000
    }

    /// The first line of a small file, or nil.
    private static func readLine(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 128)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        return zmqText(buffer).trimmingSuffix()
    }

    /// A process holding thousands of connections (a packed province, a load driver with a
    /// link per county or per institution) needs more descriptors than the usual soft limit of
    /// 1,024: take the hard limit the operator allows. libzmq would otherwise fail its
    /// connections asynchronously, far from the cause.
    public static func raiseOpenFilesLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// The libzmq version linked in, e.g. (4, 3, 4).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }
}

private extension String {
    func trimmingSuffix() -> String { hasSuffix("\n") ? String(dropLast()) : self }
}
