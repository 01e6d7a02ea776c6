import Dispatch
import FlyingFox
import FlyingSocks
import Foundation
import SettlementModel
import Synchronization

/// A process's metrics over HTTP: `GET /metrics` in the Prometheus text format. It runs on Swift
/// concurrency's threads, never on the reactor's: a scrape reads the instruments (atomics and
/// locks), not the nodes' state.
public final class MetricsEndpoint: Sendable {
    /// Where a scraper reaches it, e.g. http://127.0.0.1:18100/metrics.
    public let url: String
    private let server: HTTPServer
    private let serving: Task<Void, Never>

    /// The text format's media type (version 0.0.4).
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Listens on `bindAddress` (an IPv4 address, or "*" for every interface) at `port`, and
    /// returns once it does; throws, naming `owner` and the port, when it cannot (a port taken).
    public static func start(_ metrics: ProcessMetrics, bindAddress: String, port: Int, advertisedHost: String,
                             owner: String) throws -> MetricsEndpoint {
        guard let portNumber = UInt16(exactly: port), portNumber > 0 else {
            throw SettleNetError(.node, "\(owner): metrics port \(port) is not a TCP port")
        }
        let server: HTTPServer
        if bindAddress == "*" || bindAddress == "0.0.0.0" {
            server = HTTPServer(address: sockaddr_in.inet(port: portNumber), logger: .disabled)
        } else {
            do {
                server = HTTPServer(address: try sockaddr_in.inet(ip4: bindAddress, port: portNumber), logger: .disabled)
            } catch {
                throw SettleNetError(.node, "\(owner): cannot serve metrics on \(bindAddress):\(port): \(error)")
            }
        }
        let failure = Mutex<String?>(nil)
        let settled = DispatchSemaphore(value: 0)
        let serving = Task {
            await server.appendRoute("GET /metrics") { _ in
                HTTPResponse(statusCode: .ok, headers: [.contentType: contentType], body: Data(metrics.exposition()))
            }
            do {
                try await server.run()
            } catch {
                failure.withLock { $0 = $0 ?? "\(error)" }
                settled.signal()
            }
        }
        Task { @Sendable in
            do { try await server.waitUntilListening(timeout: 10) } catch { failure.withLock { $0 = $0 ?? "not listening after 10 s: \(error)" } }
            settled.signal()
        }
        settled.wait()
        if let reason = failure.withLock({ $0 }) {
            serving.cancel()
            throw SettleNetError(.node, "\(owner): cannot bind the metrics port \(bindAddress):\(port) (move it with the topology's metrics_port, or turn it off with `metrics_port: off`): \(reason)")
        }
        return MetricsEndpoint(url: "http://\(advertisedHost):\(port)/metrics", server: server, serving: serving)
    }

    private init(url: String, server: HTTPServer, serving: Task<Void, Never>) {
        self.url = url
        self.server = server
        self.serving = serving
    }

    /// Stops listening; a scrape under way is cut off.
    public func stop() { serving.cancel() }
}
