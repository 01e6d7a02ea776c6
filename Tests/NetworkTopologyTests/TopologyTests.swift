import Foundation
import NetworkTopology
import SettlementModel
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite struct TopologyTests {
    @Test func theMinimalTopologyIsValidWithExactlyTheFifteenNodes() throws {
        let topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        #expect(Set(topology.nodes.map(\.id.value)) == [
            "000000", "370000", "410000", "370100", "370200", "410100", "410300",
            "370102", "370103", "370202", "370211", "410102", "410103", "410302", "410303",
        ])
        #expect(topology.policy(for: DivisionCode("370211")!)?.acctPayInFund == false)
        #expect(topology.policy(for: DivisionCode("410102")!)?.acctPayInFund == true)
        #expect(topology.institutions(of: DivisionCode("370211")!).first == "H37021100001")
        #expect(topology.withBasePort(30_000).endpoint(of: DivisionCode("000000")!) == "tcp://127.0.0.1:30000")
    }

    let header = """
        name: test
        base_port: 20000
        nodes:
          - { id: "000000", tier: national, port: 0 }
          - id: "370000"
            tier: province
            parent: "000000"
            port: 1
            policy: { deductible_yuan: "200", pool_ratio_outpatient: "0.5", pool_ratio_inpatient: "0.85", annual_cap_yuan: "300000", large_amount_ratio: "0.8", acct_pay_in_fund: false }
          - { id: "370200", tier: city, parent: "370000", port: 2 }

        """

    func problems(_ extra: String) -> [FileProblem] {
        do {
            _ = try TopologyLoader.parse(header + extra, file: "t.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test func aValidTreeHasNoProblems() {
        #expect(problems(#"  - { id: "370211", tier: county, parent: "370200", port: 3 }"#).isEmpty)
    }

    @Test func duplicateIdsAreReportedWithTheFirstLine() {
        let found = problems("""
              - { id: "370211", tier: county, parent: "370200", port: 3 }
              - { id: "370211", tier: county, parent: "370200", port: 4 }
            """)
        #expect(found.count == 1)
        #expect(found.first?.description == "t.yaml:12: node 370211 field id: duplicate id: already declared at line 11")
    }

    @Test func unknownParentsWrongTiersAndPrefixesAreReported() {
        let found = problems("""
              - { id: "370211", tier: county, parent: "370299", port: 3 }
              - { id: "370212", tier: county, parent: "370000", port: 4 }
              - { id: "410211", tier: county, parent: "370200", port: 5 }
              - { id: "370300", tier: city, port: 6 }
            """).map(\.description)
        #expect(found.contains("t.yaml:11: node 370211 field parent: unknown parent 370299"))
        #expect(found.contains { $0.hasPrefix("t.yaml:12: node 370212 field parent: wrong tier order") })
        #expect(found.contains("t.yaml:13: node 410211 field id: code does not sit under its parent's prefix 3702 (parent 370200)"))
        #expect(found.contains("t.yaml:14: node 370300 field parent: required for a city node"))
    }

    @Test func endpointCollisionsAndMissingPoliciesAreReported() {
        let found = problems("""
              - { id: "370211", tier: county, parent: "370200", port: 2 }
              - { id: "410000", tier: province, parent: "000000", port: 7 }
            """).map(\.description)
        #expect(found.contains("t.yaml:11: node 370211 field port: endpoint collision: tcp://127.0.0.1:20002 is also node 370200's"))
        #expect(found.contains { $0.hasPrefix("t.yaml:12: node 410000 field policy: missing policy") })
    }

    @Test func unknownKeysAndBadValuesNameTheLineAndField() {
        let found = problems("""
              - { id: "370211", tier: county, parent: "370200", port: 3, hospitls: 2 }
              - { id: "370212", tier: borough, parent: "370200", port: 4 }
              - { id: 37021, tier: county, parent: "370200", port: 5 }
            """).map(\.description)
        #expect(found.contains { $0.hasPrefix("t.yaml:11: node 370211 field nodes[3].hospitls: unknown key") })
        #expect(found.contains("t.yaml:12: node 370212 field nodes[4].tier: \"borough\" is not one of national, province, city, county"))
        #expect(found.contains { $0.hasPrefix("t.yaml:13: node 37021 field nodes[5].id: \"37021\" is not a 6-digit division code") })
    }

    /// `metrics_port`: an offset above every node's port, or off; anything else names the field.
    @Test func theMetricsPortIsAnOffsetAboveEveryNodePortOrOff() throws {
        func with(_ line: String) -> String { header.replacingOccurrences(of: "base_port: 20000\n", with: "base_port: 20000\n\(line)\n") }
        let served = try TopologyLoader.parse(with("metrics_port: 1000"), file: "t.yaml")
        #expect(served.metricsPortOffset == 1000)
        #expect(served.metricsPort(of: DivisionCode("370200")!) == 21_002)
        #expect(served.withBasePort(30_000).metricsPort(of: DivisionCode("370200")!) == 31_002, "it moves with the base port")
        #expect(try TopologyLoader.parse(with("metrics_port: off"), file: "t.yaml").metricsPortOffset == nil)
        #expect(try TopologyLoader.parse(header, file: "t.yaml").metricsPort(of: DivisionCode("000000")!) == nil, "absent: off")
        for (line, expected) in [("metrics_port: 2", "metrics_port: 2 must be above the highest node port (2)"),
                                 ("metrics_port: often", "metrics_port: expected an offset from each node's port (1 to 65535) or off, not \"often\""),
                                 ("metrics_port: 45534", "metrics_port: base_port 20000 + port 2 + metrics_port 45534 is beyond 65535")] {
            do {
                _ = try TopologyLoader.parse(with(line), file: "t.yaml")
                Issue.record("accepted \(line)")
            } catch {
                let found = error.problems.map(\.description)
                #expect(found.contains { $0.contains("field \(expected)") }, "\(line): \(found)")
            }
        }
    }

    /// The `edge:` section sets each client connection's share of a node; a wrong key or value
    /// names its line and field.
    @Test func edgeLimitsAreReadAndChecked() throws {
        let limited = try TopologyLoader.parse(header.replacingOccurrences(of: "base_port: 20000\n", with: """
            base_port: 20000
            edge: { client_rate_per_s: 50, client_burst: 80 }

            """), file: "t.yaml")
        #expect(limited.edge == EdgeSettings(clientRatePerS: 50, clientBurst: 80))
        #expect(try TopologyLoader.parse(header, file: "t.yaml").edge == nil)
        let wrong = header.replacingOccurrences(of: "base_port: 20000\n", with: """
            base_port: 20000
            edge: { client_rate: 50, client_burst: 0 }

            """)
        do {
            _ = try TopologyLoader.parse(wrong, file: "t.yaml")
            Issue.record("accepted a wrong edge section")
        } catch {
            let found = error.problems.map(\.description)
            #expect(found.contains { $0.hasPrefix("t.yaml:3: field edge.client_rate: unknown key") }, "\(found)")
            #expect(found.contains { $0.contains("edge.client_burst: \"0\"") }, "\(found)")
        }
    }

    @Test func badPolicyValuesAreExact() {
        let text = header.replacingOccurrences(of: #"pool_ratio_outpatient: "0.5""#, with: #"pool_ratio_outpatient: "50%""#)
        do {
            _ = try TopologyLoader.parse(text, file: "t.yaml")
            Issue.record("accepted a bad ratio")
        } catch {
            #expect(error.problems.map(\.description).contains {
                $0.contains("node 370000 field nodes[1].policy.pool_ratio_outpatient: \"50%\" is not a ratio")
            })
        }
    }

    @Test func missingFilesAndBrokenYAMLAreClearErrors() {
        #expect(throws: FileProblems.self) { try TopologyLoader.load(path: "/nonexistent/topology.yaml") }
        do {
            _ = try TopologyLoader.parse("name: x\nnodes: [\n", file: "broken.yaml")
            Issue.record("accepted broken YAML")
        } catch {
            #expect(error.description.hasPrefix("broken.yaml:"))
            #expect(error.description.contains("not valid YAML"))
        }
    }
}
