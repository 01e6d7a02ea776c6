import ArgumentParser
import ClusterControl
import Foundation
import SettlementModel
import NetworkTopology
import Reconciliation

struct ReconcileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Check every ledger of a cluster against the others: nothing lost, nothing doubled, every tier agreeing.",
        discussion: """
            In the spirit of reconciliation (3201/3202) and clearing (3260/3261), it reads every node's ledger in DATA_DIR. That is safe while the cluster runs, but settlements in flight may then show as lost or unresolved. It checks:

            - every settlement has exactly one record at the insured county, the same amounts, settlement id and final state on every tier of its path, and none is left unknown (lost, duplicated, mismatched, unresolved: their msgids are printed);
            - each person's balance is the initial balance minus the account payments still settled;
            - the national tier's cross-province net positions sum to zero, and each province's own records confirm its position;
            - at every node received = accepted + rejected uploads, and the national store holds exactly what the national tier accepted.

            Exit status: 0 when everything reconciles, 1 when anything does not, 2 when the ledgers cannot be read. `scenario run` reconciles at the end of every run (report.json: reconciliation.*).
            """
    )
    @Option(help: "The cluster's data directory.") var dataDir: String
    @Flag(help: "Print JSON instead of the verdict text.") var json = false

    func run() throws {
        let result: ReconciliationResult
        do {
            let record = try Cluster(dataDirectory: dataDir).record()
            let topology = try TopologyLoader.load(path: record.topology)
            result = Reconciler(topology: topology).check(try ClusterSnapshot.read(topology: topology, dataDirectory: dataDir))
        } catch {
            FileHandle.standardError.write(Data("reconcile: \(dataDir): \(error)\n".utf8))
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder.settlenet()
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(ReconciliationText.verdict(result))
        }
        if !result.passed { throw ExitCode(1) }
    }
}
