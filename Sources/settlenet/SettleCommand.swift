import ArgumentParser
import ClusterControl
import Foundation
import LinkSecurity
import SettlementCore
import SettlementModel
import SwiftProtobuf
import NetworkTopology

/// Where to find a running cluster: its topology and base port.
struct ClusterTarget: ParsableArguments {
    @Option(help: "The topology file (default: the one the cluster in --data-dir was started with).") var topology: String?
    @Option(help: "The cluster's data directory (gives the topology and base port it runs on).") var dataDir: String?
    @Option(help: "The base port the cluster runs on (default: from --data-dir, else the topology's).") var basePort: Int?
    @Option(help: "Key directory of a secured topology (default: the cluster's, from --data-dir).") var keys: String?

    func validate() throws {
        if topology == nil && dataDir == nil {
            throw ValidationError("give --topology FILE or --data-dir DIR of a running cluster")
        }
    }

    func load() throws -> Topology {
        var path = topology
        var port = basePort
        if let dataDir, let record = try? Cluster(dataDirectory: dataDir).record() {
            path = path ?? record.topology
            port = port ?? record.basePort
        } else if let dataDir, topology == nil {
            throw SettleNetError(.command, "no cluster record in \(dataDir); give --topology FILE")
        }
        do {
            var loaded = try TopologyLoader.load(path: path!)
            if let port { loaded = loaded.withBasePort(port) }
            return loaded
        } catch {
            throw SettleNetError(.command, "topology problems:\n\(error)")
        }
    }

    /// The hospitals' keys when the topology is secured: --keys, else the running cluster's,
    /// else the directory the topology names; nil for plaintext links.
    func hospitalKeys(for topology: Topology) throws -> HospitalKeys? {
        let recorded = dataDir.flatMap { try? Cluster(dataDirectory: $0).record() }?.keys
        do { return try HospitalKeys.of(topology, explicit: keys, recorded: recorded) } catch { throw SettleNetError(.command, "\(error)") }
    }
}

struct SettleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settle",
        abstract: "Act as one hospital: send one settlement (or reversal) and print the answer as JSON.",
        discussion: """
            The hospital sits in --at (a county); the person is insured in --insured. Unless --psn-no is \
            given, the first synthetic person of the insured county filed for off-site care is used \
            (--unfiled picks one who is not: the network must refuse). The answer is printed as JSON in \
            the interface's shape and names: every field, zeros and empty strings included, the \
            settlement under output.setlinfo; amounts are integer fen; the person number is masked. \
            An example: docs/JSON.md.

            Exit codes: 0 settled; 1 the network answered with an error (infcode -1); 2 no answer in \
            time or SN-E3002 (outcome unknown: reverse it or check the ledgers); 64 bad arguments.

            Examples:
              settlenet settle --data-dir run/demo --at 370211 --insured 410102 --amount 350.00
              settlenet settle --data-dir run/demo --at 370211 --insured 410102 --reverse <msgid>
            """
    )

    @OptionGroup var target: ClusterTarget
    @Option(help: "County where the hospital sits (mdtrtarea_admvs).") var at: String
    @Option(help: "County where the person is insured (insuplc_admdvs).") var insured: String
    @Option(help: "Bill total in yuan, at most 2 decimals, e.g. 350.00.") var amount: String?
    @Flag(help: "Inpatient settlement 2304 (default outpatient 2207); with --reverse, 2305.") var inpatient = false
    @Option(help: "Reverse the settlement sent with this msgid (2208/2305) instead of settling.") var reverse: String?
    @Option(help: "The person's number (default: a synthetic person of --insured).") var psnNo: String?
    @Flag(help: "Pick a person not filed for off-site care.") var unfiled = false
    @Option(help: "Which of the county's hospitals sends (1 = H<county>00001).") var hospital: Int = 1
    @Flag(help: "Do not pay from the personal account.") var noAccount = false
    @Option(help: "Seconds to wait for the answer.") var timeout: Double = 15

    func validate() throws {
        guard DivisionCode(at) != nil else { throw ValidationError("--at must be a 6-digit county code, not \"\(at)\"") }
        guard DivisionCode(insured) != nil else { throw ValidationError("--insured must be a 6-digit county code, not \"\(insured)\"") }
        if reverse == nil {
            guard let amount else { throw ValidationError("give --amount YUAN (or --reverse MSGID)") }
            guard let fen = Money.fen(fromYuan: amount), fen > 0 else {
                throw ValidationError("--amount must be a positive yuan amount with at most 2 decimals, e.g. 350.00, not \"\(amount)\"")
            }
        }
    }

    func run() throws {
        let topology = try target.load()
        let atCode = DivisionCode(at)!, insuredCode = DivisionCode(insured)!
        guard topology.node(atCode)?.tier == .county else { throw SettleNetError(.command, "--at \(at) is not a county of \(topology.file)") }
        guard let population = topology.population(of: insuredCode) else {
            throw SettleNetError(.command, "--insured \(insured) is not a county of \(topology.file)")
        }
        let institutions = topology.institutions(of: atCode)
        guard hospital >= 1 && hospital <= institutions.count else {
            throw SettleNetError(.command, "--hospital must be 1 to \(institutions.count) for county \(at)")
        }
        let psn: String
        if let psnNo { psn = psnNo } else {
            guard let person = population.firstPerson(filedOffsite: !unfiled) else {
                throw SettleNetError(.command, "county \(insured) has no person \(unfiled ? "unfiled" : "filed") for off-site care")
            }
            psn = person.psnNo
        }
        var factory = RequestFactory(institution: institutions[hospital - 1], treatment: atCode,
                                     firstSequence: Int.random(in: 0..<9_000))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let request: WireRequest
        if let reverse {
            request = factory.reversal(omsgid: reverse, psnNo: psnNo ?? "", insured: insuredCode, inpatient: inpatient, nowMs: now)
        } else {
            let bill = Bill.composed(totalFen: Money.fen(fromYuan: amount!)!)
            request = factory.settlement(psnNo: psn, insured: insuredCode, bill: bill, inpatient: inpatient,
                                         useAccount: !noAccount, nowMs: now)
        }
        let credentials = try target.hospitalKeys(for: topology)?.credentials(institution: factory.institution, county: atCode)
        let client = try HospitalClient(endpoint: topology.endpoint(of: atCode)!, credentials: credentials)
        guard let response = try client.call(request, timeoutMs: Int(timeout * 1000)) else {
            FileHandle.standardError.write(Data("no answer within \(timeout) s from node \(at) for msgid \(request.msgid): outcome unknown\n".utf8))
            throw ExitCode(2)
        }
        // The person number is the hospital's to see, not the terminal's or a CI log's: masked.
        var shown = response
        if case .settlement(var output)? = shown.output {
            output.psnNo = PersonalData.mask(output.psnNo)
            shown.output = .settlement(output)
        }
        print(InterfaceJSON.render(shown))
        if response.errCode == ErrorCode.timeout.rawValue { throw ExitCode(2) }   // indefinite: outcome unknown
        if response.infcode != 0 || !response.errMsg.isEmpty { throw ExitCode(1) }
    }
}
