import ClusterControl
import Foundation
import Reconciliation
import Testing

/// Every `--help` page, as argument-parser wraps it for the terminal: the texts break lines only
/// between paragraphs, list items and examples, never inside a sentence (hard breaks fought the
/// parser's own wrapping: `cluster export --help` broke lines mid-sentence).
@Suite struct HelpTests {
    /// Every command path, found from the SUBCOMMANDS sections of the pages themselves.
    func commandPaths() throws -> [[String]] {
        var paths: [[String]] = [[]]
        var index = 0
        while index < paths.count {
            let page = try help(paths[index], columns: 200)
            var inSubcommands = false
            for line in page.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("SUBCOMMANDS:") { inSubcommands = true; continue }
                if inSubcommands && !line.hasPrefix("  ") { inSubcommands = false }
                guard inSubcommands, let name = line.split(separator: " ").first, !line.hasPrefix("   ") else { continue }
                let command = String(name)
                if command != "help" && !paths.contains(paths[index] + [command]) { paths.append(paths[index] + [command]) }
            }
            index += 1
        }
        return paths
    }

    func help(_ path: [String], columns: Int) throws -> String {
        let result = try runProgram("/usr/bin/env", ["COLUMNS=\(columns)", settlenetBinary] + path + ["--help"])
        #expect(result.status == 0, "\(path.joined(separator: " ")) --help: \(result.error)")
        return result.output
    }

    /// Example lines: one command a line.
    static let commands = ["settlenet", "kubectl", "systemctl", "sudo", "Scripts/", ".build/"]

    @Test func noHelpPageBreaksALineInsideASentence() throws {
        let paths = try commandPaths()
        #expect(paths.count > 20, "found only \(paths.map { $0.joined(separator: " ") })")
        for path in paths {
            // Wide enough that the parser wraps nothing of the texts: every break left is the text's own.
            let lines = try help(path, columns: 10_000).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (line, next) in zip(lines, lines.dropFirst()) {
                let indent = line.prefix { $0 == " " }.count, nextIndent = next.prefix { $0 == " " }.count
                let text = line.trimmingCharacters(in: .whitespaces), nextText = next.trimmingCharacters(in: .whitespaces)
                guard !text.isEmpty, !nextText.isEmpty, indent == nextIndent, let first = nextText.first,
                      first.isLowercase, !text.hasSuffix(":"), !text.hasSuffix("."),
                      !Self.commands.contains(where: { text.hasPrefix($0) || nextText.hasPrefix($0) }) else { continue }
                Issue.record("settlenet \(path.joined(separator: " ")) --help breaks a sentence:\n\(line)\n\(next)")
            }
        }
    }

    /// Every command that prints JSON has its example in docs/JSON.md, and every example there
    /// is JSON; the ones of public types read back as those types.
    @Test func everyJSONOutputIsDocumentedWithAnExample() throws {
        let doc = try String(contentsOfFile: "\(repositoryRoot)/docs/JSON.md", encoding: .utf8)
        for path in try commandPaths() where try help(path, columns: 10_000).contains("--json") {
            #expect(doc.contains("## `settlenet \(path.joined(separator: " ")) --json`"), "docs/JSON.md has no section for \(path)")
        }
        #expect(doc.contains("## `settlenet settle`"))
        var examples: [String: String] = [:]
        var section = ""
        for part in doc.components(separatedBy: "```") {
            if let heading = part.components(separatedBy: "\n").last(where: { $0.hasPrefix("## ") }) { section = heading }
            guard part.hasPrefix("json\n") else { continue }
            let json = String(part.dropFirst(5))
            #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "not JSON under \(section):\n\(json)")
            #expect(!json.contains("\\/"), "an escaped / under \(section)")
            examples[section] = examples[section] ?? json
        }
        func example(_ command: String) throws -> Data {
            Data(try #require(examples["## `settlenet \(command)`"], "no example for \(command)").utf8)
        }
        _ = try JSONDecoder().decode([NodeStatusRow].self, from: example("cluster status --json"))
        _ = try JSONDecoder().decode([RouteProbe.Outcome].self, from: example("cluster probe --json"))
        _ = try JSONDecoder().decode(ReconciliationResult.self, from: example("reconcile --json"))
    }
}
