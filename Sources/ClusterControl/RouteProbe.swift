import Foundation
import LinkSecurity
import NetworkTopology
import SettlementCore
import SettlementModel

/// Settles one small bill on every route class between provinces of a running cluster and
/// reports what came back: the operator's "does every path work?" after a launch.
///
/// The plan covers every provincial unit: for each, a local, an intra-city and an
/// intra-province settlement (where the province has the counties for it), and a
/// cross-province one to the next province of a seeded ring, so each province is once the
/// place of treatment and once the place of insurance.
public enum RouteProbe {
    public struct Probe: Sendable, Equatable {
        public var route: RouteClass
        public var treatment: DivisionCode
        public var insured: DivisionCode
    }

    public struct Outcome: Codable, Sendable {
        public var route: String
        public var treatment: String
        public var insured: String
        public var settled: Bool
        /// The answer's error code and message when refused; "no answer" when none came.
        public var error: String?
        /// What the fund paid, in fen, and the whole bill.
        public var fundPayFen: Int64
        public var totalFen: Int64
        /// The answer's amounts in fen by interface field name: the same bill to the same person
        /// must come back identical from any two clusters of one topology.
        public var amountsFen: [String: Int64] = [:]
        public var latencyMs: Double
    }

    public static func plan(_ topology: Topology, seed: UInt64) -> [Probe] {
        var generator = SplitMix64(seed: seed)
        let routing = topology.routingTable
        let provinces = topology.nodes.filter { $0.tier == .province }.map(\.id)
        var countiesByCity: [DivisionCode: [DivisionCode]] = [:]
        for county in topology.counties { if let city = county.parent { countiesByCity[city, default: []].append(county.id) } }
        func cities(of province: DivisionCode) -> [DivisionCode] {
            topology.children(of: province).map(\.id).filter { !(countiesByCity[$0] ?? []).isEmpty }
        }
        func pick<T>(_ items: [T]) -> T { items[Int(generator.next() % UInt64(items.count))] }
        func anyCounty(of province: DivisionCode) -> DivisionCode? {
            let options = cities(of: province)
            return options.isEmpty ? nil : pick(countiesByCity[pick(options)]!)
        }
        var probes: [Probe] = []
        for province in provinces {
            let provinceCities = cities(of: province)
            guard let county = anyCounty(of: province) else { continue }
            probes.append(Probe(route: .local, treatment: county, insured: county))
            if let city = provinceCities.filter({ countiesByCity[$0]!.count >= 2 }).first {
                let pair = countiesByCity[city]!
                let first = pick(pair)
                probes.append(Probe(route: .intraCity, treatment: first, insured: pick(pair.filter { $0 != first })))
            }
            if provinceCities.count >= 2 {
                let from = pick(provinceCities)
                let to = pick(provinceCities.filter { $0 != from })
                probes.append(Probe(route: .intraProvince, treatment: pick(countiesByCity[from]!), insured: pick(countiesByCity[to]!)))
            }
        }
        let ring = provinces.filter { anyCounty(of: $0) != nil }.shuffled(using: &generator)
        if ring.count >= 2 {
            for (position, treating) in ring.enumerated() {
                let insuring = ring[(position + 1) % ring.count]
                probes.append(Probe(route: .crossProvince, treatment: anyCounty(of: treating)!, insured: anyCounty(of: insuring)!))
            }
        }
        // The plan must say what it claims: every probe's class is the topology's.
        return probes.filter { routing.routeClass(treatment: $0.treatment, insured: $0.insured) == $0.route }
    }

    /// Sends every probe (one hospital per place of treatment, one at a time) and waits for each answer.
    /// `hospitalKeys`: the institutions' keys, on a secured topology.
    public static func run(_ probes: [Probe], topology: Topology, timeoutMs: Int = 15_000,
                           hospitalKeys: HospitalKeys? = nil) throws -> [Outcome] {
        var clients: [DivisionCode: HospitalClient] = [:]
        var outcomes: [Outcome] = []
        for (position, probe) in probes.enumerated() {
            guard let institution = topology.institutions(of: probe.treatment).first,
                  let person = topology.population(of: probe.insured)?.firstPerson(filedOffsite: true),
                  let endpoint = topology.endpoint(of: probe.treatment) else {
                throw SettleNetError(.cluster, "probe \(probe.treatment) -> \(probe.insured): no hospital or insured person in \(topology.file)")
            }
            let credentials = try hospitalKeys?.credentials(institution: institution, county: probe.treatment)
            let client = try clients[probe.treatment] ?? HospitalClient(endpoint: endpoint, credentials: credentials)
            clients[probe.treatment] = client
            let bill = Bill.composed(totalFen: 35_000 + Int64(position))
            var factory = RequestFactory(institution: institution, treatment: probe.treatment, firstSequence: Int.random(in: 0..<9_000))
            let request = factory.settlement(psnNo: person.psnNo, insured: probe.insured, bill: bill, inpatient: false,
                                             useAccount: true, nowMs: wallClockMs())
            let started = monotonicUs()
            let response = try client.call(request, timeoutMs: timeoutMs)
            let latencyMs = Double(monotonicUs() - started) / 1_000
            var outcome = Outcome(route: probe.route.rawValue, treatment: probe.treatment.value, insured: probe.insured.value,
                                  settled: false, error: "no answer within \(timeoutMs) ms", fundPayFen: 0,
                                  totalFen: bill.medfeeSumamt, latencyMs: latencyMs)
            if let response {
                outcome.settled = response.infcode == 0 && response.errMsg.isEmpty
                outcome.error = outcome.settled ? nil : "\(response.errCode) \(response.errMsg)"
                if case .settlement(let output)? = response.output {
                    outcome.fundPayFen = output.fundPaySumamt
                    outcome.amountsFen = ["medfee_sumamt": output.medfeeSumamt, "fund_pay_sumamt": output.fundPaySumamt,
                                          "hifp_pay": output.hifpPay, "hifmi_pay": output.hifmiPay, "acct_pay": output.acctPay,
                                          "psn_cash_pay": output.psnCashPay, "act_pay_dedc": output.actPayDedc, "balc": output.balc]
                }
            }
            outcomes.append(outcome)
        }
        return outcomes
    }
}
