import ArgumentParser
import Foundation
import NetworkTopology

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Check and show topology files.",
        subcommands: [Validate.self, Show.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report every problem in a topology file, with its line, node and field.",
            discussion: "Exit code 0 when the file is valid, 1 when it has problems."
        )
        @Argument(help: "The topology file, e.g. Topologies/minimal.yaml.") var file: String

        func run() throws {
            do {
                let topology = try TopologyLoader.load(path: file)
                print("\(file): valid, \(topology.nodes.count) nodes (\(topology.counties.count) counties)")
            } catch {
                for problem in error.problems { print(problem) }
                print("\(file): \(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")")
                throw ExitCode(1)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a topology's tree with endpoints and policies.")
        @Argument(help: "The topology file.") var file: String
        @Option(help: "Show endpoints for this base port instead of the file's.") var basePort: Int?

        func run() throws {
            do {
                var topology = try TopologyLoader.load(path: file)
                if let basePort { topology = topology.withBasePort(basePort) }
                print(topology.renderTree())
            } catch {
                throw Failure("topology problems:\n\(error)")
            }
        }
    }
}
