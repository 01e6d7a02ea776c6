import ArgumentParser
import ClusterControl
import Foundation
import LinkSecurity
import NetworkTopology
import SettlementCore
import SettlementModel
import SwiftProtobuf

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Launch a cluster, settle one of each route class, reverse one, print the answers, shut down.",
        discussion: """
            Every answer is checked: the amount identities must hold, a repeated msgid must get the \
            original answer, the refusal must be definite. Exit code 0 when all checks pass, 1 otherwise. \
            The cluster is always shut down, also when a step fails.
            """
    )

    @Option(help: "The topology (must contain the counties below).") var topology = "Topologies/minimal.yaml"
    @Option(help: "Data directory (default: run/demo-<time>).") var dataDir: String?
    @Option(help: "Base port (default: the topology's if free, else a free one).") var basePort: Int?

    func run() throws {
        var loaded: Topology
        do { loaded = try TopologyLoader.load(path: topology) } catch { throw SettleNetError(.command, "topology problems:\n\(error)") }
        guard let port = basePort ?? Cluster.freeBasePort(for: loaded) else { throw SettleNetError(.command, "no free base port found") }
        loaded = loaded.withBasePort(port)
        let directory = dataDir ?? "run/demo-\(CivilTime(unixMs: nowMs()).compact)"
        let cluster = Cluster(dataDirectory: directory, log: { print("  \($0)") })
        print("== cluster up: \(loaded.name), \(loaded.nodes.count) nodes, base port \(port), data in \(directory)")
        let record: ClusterRecord
        do { record = try cluster.up(topology: loaded, executable: currentExecutable()) } catch { throw SettleNetError(.command, "\(error)") }
        defer {
            print("== cluster down")
            let killed = (try? cluster.down()) ?? []
            print(killed.isEmpty ? "  all nodes stopped gracefully" : "  killed after timeout: \(killed.joined(separator: ", "))")
        }
        var failures: [String] = []
        do {
            try settleAll(loaded, keys: HospitalKeys.of(loaded, explicit: nil, recorded: record.keys), failures: &failures)
        } catch {
            failures.append("\(error)")
        }
        print("== cluster status")
        if let rows = try? cluster.status() {
            printTable(header: ["node", "tier", "pid", "up", "signed in", "messages"],
                       rows: rows.map { [$0.node, $0.tier, String($0.pid), $0.up ? "yes" : "no", $0.signedIn ? "yes" : "no",
                                         String($0.messagesHandled)] })
        }
        if failures.isEmpty {
            print("== all checks passed")
        } else {
            print("== \(failures.count) check(s) failed:")
            failures.forEach { print("  - \($0)") }
            throw ExitCode(1)
        }
    }

    private func settleAll(_ topology: Topology, keys: HospitalKeys?, failures: inout [String]) throws {
        let origin = DivisionCode("370211")!
        let credentials = try keys?.credentials(institution: topology.institutions(of: origin)[0], county: origin)
        let client = try HospitalClient(endpoint: topology.endpoint(of: origin)!, credentials: credentials)
        var factory = RequestFactory(institution: topology.institutions(of: origin)[0], treatment: origin,
                                     firstSequence: Int.random(in: 0..<9_000))
        let routing = topology.routingTable
        var rows: [[String]] = []
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true

        func call(_ label: String, _ request: WireRequest, expectOK: Bool) throws -> WireResponse? {
            guard let response = try client.call(request, timeoutMs: 15_000) else {
                failures.append("\(label): no answer within 15 s")
                return nil
            }
            let ok = response.infcode == 0 && response.errMsg.isEmpty
            if ok != expectOK { failures.append("\(label): expected \(expectOK ? "success" : "refusal"), got \(response.errMsg)") }
            var identities = "-"
            var amounts = ["", "", "", ""]
            if case .settlement(let out)? = response.output {
                let broken = AmountIdentities.violations(out)
                identities = broken.isEmpty ? "hold" : "BROKEN"
                if !broken.isEmpty { failures.append("\(label): identities broken: \(broken.joined(separator: "; "))") }
                amounts = [Money.yuanText(out.medfeeSumamt), Money.yuanText(out.fundPaySumamt),
                           Money.yuanText(out.acctPay), Money.yuanText(out.psnCashPay)]
            } else if case .reversal(let out)? = response.output {
                amounts = [Money.yuanText(out.medfeeSumamt), Money.yuanText(out.fundPaySumamt), Money.yuanText(out.acctPay), ""]
            }
            rows.append([label, request.infno, "\(request.mdtrtareaAdmvs)->\(request.insuplcAdmdvs)", String(response.infcode),
                         response.errCode.isEmpty ? "-" : response.errCode] + amounts + [identities])
            return response
        }

        print("== settlements from hospital \(factory.institution) in \(origin)")
        var crossProvince: (request: WireRequest, response: WireResponse)?
        for insured in ["370211", "370202", "370102", "410102"].compactMap(DivisionCode.init) {
            let person = topology.population(of: insured)!.firstPerson(filedOffsite: true)!
            let request = factory.settlement(psnNo: person.psnNo, insured: insured, bill: .composed(totalFen: 35_000),
                                             inpatient: false, nowMs: nowMs())
            let route = routing.routeClass(treatment: origin, insured: insured)!.rawValue
            if let response = try call("\(route) outpatient", request, expectOK: true), insured.value == "410102" {
                crossProvince = (request, response)
            }
        }
        let inpatientInsured = DivisionCode("410303")!
        let inpatientPerson = topology.population(of: inpatientInsured)!.firstPerson(filedOffsite: true)!
        _ = try call("cross_province inpatient",
                     factory.settlement(psnNo: inpatientPerson.psnNo, insured: inpatientInsured,
                                        bill: .composed(totalFen: 7_335_700), inpatient: true, nowMs: nowMs()),
                     expectOK: true)
        let unfiled = topology.population(of: DivisionCode("410102")!)!.firstPerson(filedOffsite: false)!
        _ = try call("unfiled off-site (refusal)",
                     factory.settlement(psnNo: unfiled.psnNo, insured: DivisionCode("410102")!, bill: .composed(totalFen: 12_000),
                                        inpatient: false, nowMs: nowMs()),
                     expectOK: false)
        if let (request, response) = crossProvince {
            if let again = try call("same msgid again", request, expectOK: true),
               case .settlement(let first)? = response.output, case .settlement(let second)? = again.output,
               first.setlID != second.setlID {
                failures.append("repeated msgid settled twice: \(first.setlID) and \(second.setlID)")
            }
            let psn: String = if case .settlement(let input)? = request.input { input.psnNo } else { "" }
            let reversal = factory.reversal(omsgid: request.msgid, psnNo: psn, insured: DivisionCode(request.insuplcAdmdvs)!,
                                            inpatient: false, nowMs: nowMs())
            _ = try call("reversal 2208", reversal, expectOK: true)
            _ = try call("same reversal again", reversal, expectOK: true)
            print("cross-province answer (protobuf JSON, amounts in fen):")
            print(try response.jsonString(options: options))
        }
        printTable(header: ["what", "infno", "route", "infcode", "error", "medfee", "fund", "acct", "cash", "identities"], rows: rows)
    }

    private func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
