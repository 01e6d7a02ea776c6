import SettlementModel
import ArgumentParser
import Foundation
import LinkSecurity
import NetworkTopology

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make the CURVE keys of a secured topology.",
        subcommands: [Generate.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a CURVE key pair (Z85) for every node and every hospital client of a topology.",
            discussion: """
                Writes OUT/public/<name>.key (mode 0644) and OUT/secret/<name>.key (mode 0600, in a 0700 \
                directory) for every node (<name> is its division code) and for the first --hospitals \
                institutions of each county (<name> is the institution code, H<county>00001 ...). A \
                node admits the public keys of its children, its parent and (county) the institutions \
                registered there; nothing else gets in (docs/SECURITY.md).

                Existing pairs are kept: run it again after adding nodes to make only the new ones. \
                Give the directory to the cluster with `cluster up --keys OUT` (or name it in the \
                topology's security.keys); each host needs the public directory and its own secrets.

                Example:
                  settlenet keys generate --topology Topologies/minimal-secure.yaml --out run/keys
                  settlenet cluster up --topology Topologies/minimal-secure.yaml --data-dir run/secure --keys run/keys
                """
        )
        @Option(help: "The topology file.") var topology: String
        @Option(help: "The key directory to write.") var out: String
        @Option(help: "Hospital clients per county with a key (default: every institution the topology registers).") var hospitals: Int?

        func validate() throws {
            if let hospitals, hospitals < 0 { throw ValidationError("--hospitals must be 0 or more, not \(hospitals)") }
        }

        func run() throws {
            let loaded: Topology
            do { loaded = try TopologyLoader.load(path: topology) } catch {
                throw SettleNetError(.command, "topology problems, no keys made:\n\(error)")
            }
            if !loaded.isSecured {
                FileHandle.standardError.write(Data("note: \(topology) has no `security: { curve: true }`; its links stay plaintext until it does\n".utf8))
            }
            let names = KeyDirectory.names(in: loaded, hospitalsPerCounty: hospitals)
            let directory = KeyDirectory(root: out)
            let made: (created: Int, kept: Int)
            do { made = try directory.generate(for: names) } catch { throw SettleNetError(.command, "\(error)") }
            let hospitalCount = names.count - loaded.nodes.count
            print("keys in \(out): \(made.created) made, \(made.kept) kept (\(loaded.nodes.count) nodes, \(hospitalCount) hospital clients); secrets in \(directory.secretDirectory) (0600)")
        }
    }
}
