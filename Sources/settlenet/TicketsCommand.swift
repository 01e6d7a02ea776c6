import ArgumentParser
import ClusterControl
import Foundation
import NetworkTopology
import Persistence
import SettlementCore
import SettlementModel

struct TicketsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tickets",
        abstract: "The error tickets of a cluster: reported, acknowledged by the responsible node, closed (报错/响应/销号).",
        subcommands: [List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the national registry's tickets with every state change and its time.",
            discussion: """
                Tickets are opened for a node that stopped answering (node_unresponsive; closed when it answers \
                again), a refusal caused by data the insured county holds (business_refusal), and an upload \
                reject found above the county (upload_reject). The responsible node acknowledges each one.
                """
        )
        @Option(help: "The cluster's data directory.") var dataDir: String
        @Option(help: "Only tickets in this state: open, acknowledged or closed.") var state: String?
        private var wanted: TicketState? { state.flatMap(TicketState.init(rawValue:)) }
        @Flag(help: "Print JSON instead of a table.") var json = false

        func validate() throws {
            if let state, TicketState(rawValue: state) == nil {
                throw ValidationError("--state must be open, acknowledged or closed, not \"\(state)\"")
            }
        }

        func run() throws {
            let record: ClusterRecord
            do { record = try Cluster(dataDirectory: dataDir).record() } catch { throw SettleNetError(.command, "\(error)") }
            let topology: Topology
            do { topology = try TopologyLoader.load(path: record.topology) } catch { throw SettleNetError(.command, "topology problems:\n\(error)") }
            guard let national = topology.nodes.first(where: { $0.parent == nil }) else { throw SettleNetError(.command, "no national node") }
            let path = DataLayout(root: dataDir).ledgerPath(national.id)
            guard FileManager.default.fileExists(atPath: path) else { throw SettleNetError(.command, "no registry: \(path) does not exist") }
            let ledger = try Ledger(path: path)
            let tickets = try ledger.read { try $0.tickets(state: wanted) }
            if json {
                struct Entry: Codable { var ticket: Ticket; var events: [Event] }
                struct Event: Codable { var event: String; var node: String; var atMs: Int64
                    enum CodingKeys: String, CodingKey { case event, node; case atMs = "at_ms" } }
                let entries = try tickets.map { ticket in
                    Entry(ticket: ticket, events: try ledger.read { try $0.ticketEvents(ticket.ticketID) }
                        .map { Event(event: $0.event, node: $0.node, atMs: $0.atMs) })
                }
                let encoder = JSONEncoder.settlenet()
                print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                return
            }
            if tickets.isEmpty { print("no tickets\(state.map { " in state \($0)" } ?? "")"); return }
            func time(_ ms: Int64?) -> String { ms.map { CivilTime(unixMs: $0).readable } ?? "-" }
            printTable(header: ["ticket", "kind", "code", "subject", "responsible", "opened by", "state", "times",
                                "opened", "acknowledged", "closed", "reason"],
                       rows: tickets.map { [$0.ticketID, $0.kind.rawValue, $0.code, $0.subject, $0.responsible, $0.openedBy, $0.state.rawValue,
                                            String($0.occurrences), time($0.openedAtMs), time($0.acknowledgedAtMs),
                                            time($0.closedAtMs), $0.reason] })
        }
    }
}
