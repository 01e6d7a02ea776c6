import Dispatch
import FlyingFox
import FlyingSocks
import Foundation
import Synchronization

/// One sample of the Prometheus text format: `name{label="value",...} number`.
public struct MetricSample: Equatable, Sendable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

/// Reads the Prometheus text format back (`cluster metrics`): the samples, comments skipped.
/// Enough of the format for what a SettleNet node writes; the tests check the node's output
/// with Python's prometheus_client parser, the reference.
public enum MetricsText {
    public static func samples(_ text: String) throws -> [MetricSample] {
        var samples: [MetricSample] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let sample = sample(Substring(line)) else {
                throw MetricsTextError(line: number + 1, text: String(line.prefix(120)))
            }
            samples.append(sample)
        }
        return samples
    }

    static func sample(_ line: Substring) -> MetricSample? {
        var rest = line
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard !name.isEmpty else { return nil }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let equals = rest.firstIndex(of: "=") else { return nil }
                let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,"))
                rest = rest[rest.index(after: equals)...]
                guard rest.first == "\"" else { return nil }
                rest = rest.dropFirst()
                var value = ""
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(character == "n" ? "\n" : character)
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        break
                    } else {
                        value.append(character)
                    }
                }
                labels[key] = value
                while rest.first == "," || rest.first == " " { rest = rest.dropFirst() }
                guard !rest.isEmpty else { return nil }
            }
            rest = rest.dropFirst()
        }
        let fields = rest.split(separator: " ")
        guard let first = fields.first else { return nil }
        let value: Double?
        switch first {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default: value = Double(first)
        }
        guard let value else { return nil }
        return MetricSample(name: name, labels: labels, value: value)
    }

    /// GETs `url` (http://host:port/path) and returns the body, or throws after `timeoutSeconds`.
    public static func scrape(_ url: String, timeoutSeconds: Double = 5) throws -> String {
        guard let parsed = URL(string: url), parsed.scheme == "http", let host = parsed.host, let port = parsed.port,
              let portNumber = UInt16(exactly: port) else {
            throw ScrapeError(url: url, reason: "not an http://host:port/ URL")
        }
        let path = parsed.path.isEmpty ? "/" : parsed.path
        let result = Mutex<Result<String, ScrapeError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            do {
                var client = HTTPClient()
                let request = HTTPRequest(method: .GET, version: .http11, path: path, query: [],
                                          headers: [.host: "\(host):\(port)"], body: Data())
                let response = try await client.sendHTTPRequest(request, to: try sockaddr_in.inet(ip4: host, port: portNumber))
                let body = try await response.bodyData
                if response.statusCode.code == 200 {
                    result.withLock { $0 = .success(String(decoding: body, as: UTF8.self)) }
                } else {
                    result.withLock { $0 = .failure(ScrapeError(url: url, reason: "HTTP \(response.statusCode.code)")) }
                }
            } catch {
                result.withLock { $0 = $0 ?? .failure(ScrapeError(url: url, reason: "\(error)")) }
            }
            done.signal()
        }
        if done.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            task.cancel()
            throw ScrapeError(url: url, reason: "no answer in \(timeoutSeconds) s")
        }
        return try result.withLock { $0 }!.get()
    }
}

public struct MetricsTextError: Error, CustomStringConvertible {
    public var line: Int
    public var text: String
    public var description: String { "line \(line) is not a sample: \(text)" }
}

public struct ScrapeError: Error, CustomStringConvertible {
    public var url: String
    public var reason: String
    public var description: String { "\(url): \(reason)" }
}
