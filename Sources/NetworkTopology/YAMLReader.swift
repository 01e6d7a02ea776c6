import Foundation
import Yams

/// One thing wrong with an input file, located precisely enough for a person to fix it.
public struct FileProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    /// The node (or other named item) the problem belongs to, when there is one.
    public var subject: String?
    /// The dotted path of the field, e.g. `nodes[3].parent`.
    public var field: String?
    public var message: String

    public init(file: String, line: Int?, subject: String? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.subject = subject
        self.field = field
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ":"
        if let subject { text += " \(subject)" }
        if let field { text += " field \(field):" }
        return text + " " + message
    }
}

/// All problems found in one file; thrown when there is at least one.
public struct FileProblems: Error, Sendable, CustomStringConvertible {
    public var problems: [FileProblem]
    public init(_ problems: [FileProblem]) { self.problems = problems }
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

/// Typed access to a YAML mapping that records a located problem for every missing key,
/// wrong type or unknown key, instead of stopping at the first.
struct YAMLMap {
    let mapping: Node.Mapping
    private let values: [String: Node]
    let path: String
    let file: String
    let line: Int?

    init?(_ node: Node, path: String, file: String, problems: inout [FileProblem]) {
        guard case .mapping(let mapping) = node else {
            problems.append(FileProblem(file: file, line: node.mark?.line, field: path.isEmpty ? nil : path,
                                        message: "expected a mapping (key: value)"))
            return nil
        }
        self.mapping = mapping
        // Looked up by text: Yams's own subscript compares nodes one by one, resolving tags
        // with regular expressions, which costs seconds on a national topology.
        var values: [String: Node] = [:]
        for (key, value) in mapping { if let name = key.string { values[name] = value } }
        self.values = values
        self.path = path
        self.file = file
        self.line = node.mark?.line
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func node(_ key: String) -> Node? { values[key] }

    /// Reports every key not in `allowed`, naming its line.
    func rejectUnknownKeys(_ allowed: Set<String>, subject: String?, problems: inout [FileProblem]) {
        for (key, _) in mapping {
            let name = key.string ?? "?"
            if !allowed.contains(name) {
                problems.append(FileProblem(file: file, line: key.mark?.line, subject: subject, field: fieldPath(name),
                                            message: "unknown key; expected one of: \(allowed.sorted().joined(separator: ", "))"))
            }
        }
    }

    /// The scalar text of `key` exactly as written (numbers stay text: no float rounding).
    func scalar(_ key: String, subject: String?, required: Bool, problems: inout [FileProblem]) -> String? {
        guard let value = node(key) else {
            if required {
                problems.append(FileProblem(file: file, line: line, subject: subject, field: fieldPath(key), message: "required but missing"))
            }
            return nil
        }
        guard case .scalar(let scalar) = value else {
            problems.append(FileProblem(file: file, line: value.mark?.line, subject: subject, field: fieldPath(key), message: "expected a single value"))
            return nil
        }
        return scalar.string
    }

    func int(_ key: String, subject: String?, required: Bool, range: ClosedRange<Int>, problems: inout [FileProblem]) -> Int? {
        guard let text = scalar(key, subject: subject, required: required, problems: &problems) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            problems.append(FileProblem(file: file, line: node(key)?.mark?.line, subject: subject, field: fieldPath(key),
                                        message: "\"\(text)\" is not a whole number from \(range.lowerBound) to \(range.upperBound)"))
            return nil
        }
        return value
    }

    func bool(_ key: String, subject: String?, problems: inout [FileProblem]) -> Bool? {
        guard let text = scalar(key, subject: subject, required: false, problems: &problems) else { return nil }
        switch text {
        case "true", "yes": return true
        case "false", "no": return false
        default:
            problems.append(FileProblem(file: file, line: node(key)?.mark?.line, subject: subject, field: fieldPath(key),
                                        message: "\"\(text)\" is not true or false"))
            return nil
        }
    }

    func lineOf(_ key: String) -> Int? { node(key)?.mark?.line ?? line }
}

/// Parses YAML text into a node tree, reporting a syntax error with its line.
func composeYAML(_ text: String, file: String) throws(FileProblems) -> Node {
    do {
        // Every value is read as text and converted by the reader (YAMLMap), so no implicit tag
        // resolution: the default resolver runs regular expressions on every scalar and key.
        guard let node = try Yams.compose(yaml: text, Resolver.basic) else {
            throw FileProblems([FileProblem(file: file, line: nil, message: "the file is empty")])
        }
        return node
    } catch let problems as FileProblems {
        throw problems
    } catch let error as YamlError {
        throw FileProblems([FileProblem(file: file, line: yamlErrorLine(error), message: "not valid YAML: \(error)")])
    } catch {
        throw FileProblems([FileProblem(file: file, line: nil, message: "not valid YAML: \(error)")])
    }
}

private func yamlErrorLine(_ error: YamlError) -> Int? {
    switch error {
    case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
        return mark.line
    default:
        return nil
    }
}

/// Reads a whole input file as UTF-8 text; a missing or unreadable file is a located problem.
func readTextFile(_ path: String, kind: String) throws(FileProblems) -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
        throw FileProblems([FileProblem(file: path, line: nil, message: "\(kind) file \(reason)")])
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw FileProblems([FileProblem(file: path, line: nil, message: "not UTF-8 text")])
    }
    return text
}
