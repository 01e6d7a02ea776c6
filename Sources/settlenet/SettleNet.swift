import ArgumentParser
import Foundation
import Logging

@main
struct SettleNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settlenet",
        abstract: "Simulates China's four-tier medical-insurance settlement network.",
        discussion: """
            A cluster is one process per node (national, province, city, county) talking ZeroMQ, \
            each with its own SQLite ledger. Typical session:

              settlenet topology validate Topologies/minimal.yaml
              settlenet cluster up --topology Topologies/minimal.yaml --data-dir run/demo
              settlenet settle --data-dir run/demo --at 370211 --insured 410102 --amount 350.00
              settlenet cluster status --data-dir run/demo
              settlenet cluster down --data-dir run/demo

            `settlenet demo` does all of that in one go on the minimal topology.
            """,
        subcommands: [NodeCommand.self, TopologyCommand.self, KeysCommand.self, ClusterCommand.self, SettleCommand.self, ScenarioCommand.self, DataCommand.self, TicketsCommand.self, ReconcileCommand.self, BenchCommand.self, SimCommand.self, DemoCommand.self]
    )
}


func makeLogger(label: String) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = logLevelFromEnvironment()
        return handler
    }
    return Logger(label: label)
}

func logLevelFromEnvironment() -> Logger.Level {
    ProcessInfo.processInfo.environment["SETTLENET_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
}

/// The path of the running settlenet binary, used to start node processes.
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
