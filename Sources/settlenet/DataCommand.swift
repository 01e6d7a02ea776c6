import ArgumentParser
import ClusterControl
import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Inspect uploaded data (4101) in a cluster's ledgers.",
        subcommands: [Stats.self]
    )

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per node and per tier: records received, accepted, rejected by rule, and store sizes.",
            discussion: """
                Reads every node's ledger in DATA_DIR (safe while the cluster runs: WAL readers never block \
                the node). received = accepted + rejected holds at every node; a node where it does not is \
                marked BROKEN. The store is the setl_ids that passed the node (its duplicate check); at the \
                provincial and national tiers it is the concentration store, and `queued` is what a \
                provincial node has not yet handed to the national store.
                """
        )
        @Option(help: "The cluster's data directory.") var dataDir: String
        @Flag(help: "Print JSON instead of tables.") var json = false

        struct Row: Codable {
            var node: String
            var tier: String
            var received: Int
            var accepted: Int
            var rejected: Int
            var byRule: [String: Int]
            var stored: Int
            var queued: Int
            var exact: Bool
        }

        func run() throws {
            let record: ClusterRecord
            do { record = try Cluster(dataDirectory: dataDir).record() } catch { throw SettleNetError(.command, "\(error)") }
            let topology: Topology
            do { topology = try TopologyLoader.load(path: record.topology) } catch { throw SettleNetError(.command, "topology problems:\n\(error)") }
            let layout = DataLayout(root: dataDir)
            var rows: [Row] = []
            for node in topology.nodes {
                let path = layout.ledgerPath(node.id)
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let ledger: Ledger
                do { ledger = try Ledger(path: path) } catch { throw SettleNetError(.command, "node \(node.id): \(error)") }
                let (counts, stored, queued) = try ledger.read { tx in
                    (try tx.uploadCounts(), try tx.count(table: .uploadClaims), try tx.outboxPending())
                }
                let byRule = counts.filter { $0.key.hasPrefix("DQ-") }
                let rejected = byRule.values.reduce(0, +)
                rows.append(Row(node: node.id.value, tier: DataTier(node.tier).rawValue, received: counts["received"] ?? 0,
                                accepted: counts["accepted"] ?? 0, rejected: rejected, byRule: byRule, stored: stored,
                                queued: queued, exact: (counts["received"] ?? 0) == (counts["accepted"] ?? 0) + rejected))
            }
            if json {
                let encoder = JSONEncoder.settlenet()
                print(String(decoding: try encoder.encode(rows), as: UTF8.self))
                return
            }
            printTable(header: ["node", "tier", "received", "accepted", "rejected", "stored", "queued", "accounting"],
                       rows: rows.map { [$0.node, $0.tier, String($0.received), String($0.accepted), String($0.rejected),
                                         String($0.stored), String($0.queued), $0.exact ? "exact" : "BROKEN"] })
            print("")
            var tiers: [[String]] = []
            for tier in DataTier.allCases {
                let members = rows.filter { $0.tier == tier.rawValue }
                guard !members.isEmpty else { continue }
                let received = members.reduce(0) { $0 + $1.received }, rejected = members.reduce(0) { $0 + $1.rejected }
                let rate = received == 0 ? "-" : String(format: "%.2f%%", Double(rejected) / Double(received) * 100)
                tiers.append([tier.rawValue, String(received), String(members.reduce(0) { $0 + $1.accepted }), String(rejected),
                              rate, String(members.reduce(0) { $0 + $1.stored })])
            }
            printTable(header: ["tier", "received", "accepted", "rejected", "dirty rate", "store"], rows: tiers)
            var rules: [String: Int] = [:]
            for row in rows { for (rule, count) in row.byRule { rules[rule, default: 0] += count } }
            if !rules.isEmpty {
                print("")
                printTable(header: ["rule", "tier", "rejected", "checks"], rows: rules.keys.sorted().map { id in
                    let rule = UploadRules.rule(id: id)
                    return [id, rule?.tier.rawValue ?? "?", String(rules[id]!), rule?.checks ?? ""]
                })
            }
        }
    }
}
