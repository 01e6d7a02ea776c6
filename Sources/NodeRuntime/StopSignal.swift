import Foundation
import Synchronization

/// Set by SIGTERM or SIGINT; the node loop checks it between poll rounds (at most 50 ms apart).
/// An atomic store is async-signal-safe, so the C signal handler may set it.
let stopRequestedFlag = Atomic<Bool>(false)

public enum StopSignal {
    /// Installs SIGTERM and SIGINT handlers that ask the node loop to stop gracefully.
    public static func install() {
        signal(SIGTERM) { _ in stopRequestedFlag.store(true, ordering: .relaxed) }
        signal(SIGINT) { _ in stopRequestedFlag.store(true, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
        // Whoever started us may have left these blocked; a node must hear them.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    public static var isRequested: Bool { stopRequestedFlag.load(ordering: .relaxed) }

    /// For tests and embedding: ask the loop to stop as a signal would.
    public static func request() { stopRequestedFlag.store(true, ordering: .relaxed) }
}
