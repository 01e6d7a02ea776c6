import SettlementModel
import ArgumentParser
import Foundation
import NetworkTopology

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Generate, check and show topology files.",
        subcommands: [Generate.self, Validate.self, Show.self]
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
                throw SettleNetError(.command, "topology problems:\n\(error)")
            }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a topology from the division data: the whole country or chosen provinces.",
            discussion: """
                Reads provinces.csv, cities.csv and areas.csv (the 2023 division codes kept in \
                Topologies/divisions/) and writes one node per provincial unit, city and county, with a \
                policy per province and an endpoint per node. The file's header says how municipalities, \
                province-administered county-level units, functional zones and the Production and \
                Construction Corps (66) are handled. The result is validated before it is written.

                Examples:
                  settlenet topology generate --name national --population 200 --hospitals 2 --out Topologies/national.yaml
                  settlenet topology generate --name shandong --provinces 37 --counterparts 41 --base-port 24000 --out Topologies/shandong.yaml
                  settlenet topology generate --name two-hosts --provinces 37,41 --hosts east=10.77.0.1,west=10.77.0.2
                """
        )
        @Option(help: "The topology's name.") var name: String = "national"
        @Option(help: "Provinces to include in full, as 2-digit codes (66 is the Corps); default: all 32.") var provinces: String?
        @Option(help: "Provinces to include in outline only (province, one city, two counties), as cross-province counterparts.") var counterparts: String?
        @Option(help: "The directory with provinces.csv, cities.csv and areas.csv.") var divisions: String = "Topologies/divisions"
        @Option(help: "The address of every endpoint (when --hosts is not given).") var host: String = "127.0.0.1"
        @Option(help: "Named hosts, NAME=ADDRESS,...: provinces are placed on them in turn.") var hosts: String?
        @Option(help: "The first port; node N listens on base port + N.") var basePort: Int = 20_000
        @Option(help: "Hospitals registered at each county.") var hospitals: Int = 3
        @Option(help: "Synthetic insured persons per county.") var population: Int = 1_000
        @Option(help: "Write the topology here instead of standard output.") var out: String?

        func run() throws {
            let data: DivisionData
            do { data = try DivisionData.load(directory: divisions) } catch {
                throw SettleNetError(.command, "cannot read the division data (--divisions \(divisions)):\n\(error)")
            }
            var options = TopologyGenerator.Options(name: name)
            options.provinces = provinces.map(Self.codes)
            options.counterparts = counterparts.map(Self.codes) ?? []
            options.host = host
            options.basePort = basePort
            options.hospitals = hospitals
            options.population = population
            if let hosts {
                options.hosts = try hosts.split(separator: ",").map { pair in
                    let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                        throw SettleNetError(.command, "--hosts: \"\(pair)\" is not NAME=ADDRESS")
                    }
                    return (parts[0], parts[1])
                }
            }
            let output: TopologyGenerator.Output
            do { output = try TopologyGenerator.generate(data, options: options) } catch { throw SettleNetError(.command, "\(error)") }
            // Never write a file that would not load.
            do { _ = try TopologyLoader.parse(output.yaml, file: out ?? "<generated>") } catch {
                throw SettleNetError(.command, "the generated topology does not validate (a generator bug):\n\(error)")
            }
            let counts = output.counts
            let summary = "\(counts.nodes) nodes: 1 national, \(counts.provinces) provincial units, \(counts.cities) cities, \(counts.counties) counties (\(counts.functionalZonesDropped) functional zones dropped)"
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: Data(output.yaml.utf8)) else {
                    throw SettleNetError(.command, "cannot write \(out)")
                }
                print("wrote \(out): \(summary)")
            } else {
                print(output.yaml, terminator: "")
                FileHandle.standardError.write(Data((summary + "\n").utf8))
            }
        }

        static func codes(_ list: String) -> [String] {
            list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }
}
