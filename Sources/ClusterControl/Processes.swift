import Foundation
import SettlementModel

/// The operating-system side of node processes: start, probe, signal, wait.
enum Processes {
    /// Starts `arguments[0]` with `arguments` in a new session (so a Ctrl-C at the operator's
    /// terminal does not reach the nodes), standard output and error appended to `logPath`.
    static func spawn(_ arguments: [String], logPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        markDescriptorsCloseOnExec()
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+, 0x80) is behind _GNU_SOURCE and not imported into Swift.
        // A caller's blocked signals (test runners block SIGTERM on their threads) must not be
        // inherited: a node has to hear `cluster down`.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(0x80 | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw SettleNetError(.cluster, "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Nothing but standard input, output and error may leak into a node: an inherited pipe
    /// would keep whoever reads it waiting for end-of-file as long as the node lives.
    /// (posix_spawn_file_actions_addclosefrom_np is not imported into Swift.)
    private static func markDescriptorsCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let fd = Int32(entry), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// True while `pid` is a live `settlenet node` process started with `--data-dir dataDirectory`
    /// and, when `nodeID` is given, hosting that node.
    static func isNode(_ pid: pid_t, nodeID: String?, dataDirectory: String) -> Bool {
        guard pid > 0 else { return false }
        reap(pid)
        guard let arguments = commandLine(pid) else { return false }
        let pairs = zip(arguments, arguments.dropFirst())
        // A packed process names each of its nodes with its own --id.
        let hosts = nodeID.map { id in pairs.contains { $0 == "--id" && $1 == id } } ?? true
        return hosts && arguments.contains("node") && pairs.contains { $0 == "--data-dir" && $1 == dataDirectory }
    }

    /// The arguments of live process `pid`. A process that has just been spawned shows an empty
    /// command line for a moment (posix_spawn returns once the child's new memory exists, before
    /// the kernel has placed its arguments in it; milliseconds, longer on a loaded machine): that
    /// is waited out, up to 1 s, rather than taken for another process. Nil when the process is
    /// gone (or shows no arguments within 1 s).
    static func commandLine(_ pid: pid_t) -> [String]? {
        for _ in 0..<500 {
            guard isAlive(pid) else { return nil }
            if let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty {
                return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            }
            usleep(2_000)
        }
        return nil
    }

    /// True while `pid` is a live process (not a zombie), whoever's it is.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"),
           stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z") {
            return false
        }
        return true
    }

    /// Collects the exit status of `pid` if it is our child and has exited (no zombies left).
    static func reap(_ pid: pid_t) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }

    static func signal(_ pid: pid_t, _ signal: Int32) {
        _ = kill(pid, signal)
    }
}

