import Foundation
import LinkSecurity
import NetworkTopology
import SettlementModel
import Testing
import ZeroMQ

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "settlenet-keys-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func mode(_ path: String) -> mode_t {
    var info = stat()
    stat(path, &info)
    return info.st_mode & 0o777
}

@Suite struct KeyTests {
    let topology: Topology

    init() throws {
        topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal-secure.yaml")
    }

    @Test func theSecureTopologyIsTheMinimalOneWithCurveOn() throws {
        let plain = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        #expect(topology.isSecured && !plain.isSecured)
        #expect(topology.nodes.map(\.id) == plain.nodes.map(\.id))
        #expect(topology.security?.keysDirectory == nil)
    }

    @Test func aKeyPairForEveryNodeAndHospitalWithSecretsOnlyTheirOwnerReads() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = KeyDirectory(root: root)
        let names = KeyDirectory.names(in: topology)
        #expect(names.count == 15 + 8 * 3)
        #expect(try keys.generate(for: names) == (created: 39, kept: 0))
        #expect(mode(keys.secretDirectory) == 0o700)
        for name in names {
            #expect(mode(keys.secretKeyPath(name)) == 0o600, "\(name)")
            #expect(mode(keys.publicKeyPath(name)) == 0o644, "\(name)")
            #expect(try keys.keyPair(name).publicKey == keys.publicKey(name))
        }
        // Run again: nothing replaced, so peers that admitted a key keep admitting it.
        let before = try keys.publicKey("370211")
        #expect(try keys.generate(for: names) == (created: 0, kept: 39))
        #expect(try keys.publicKey("370211") == before)
        // Fewer hospitals per county: only the first N institutions of each county.
        #expect(KeyDirectory.names(in: topology, hospitalsPerCounty: 1).filter { $0.hasPrefix("H") }.count == 8)
    }

    @Test func aSecretOthersCanReadOrAMissingKeyIsRefusedNamingTheFile() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = KeyDirectory(root: root)
        try keys.generate(for: ["370211"])
        chmod(keys.secretKeyPath("370211"), 0o644)
        let readable = #expect(throws: SettleNetError.self) { try keys.keyPair("370211") }
        #expect(readable?.description.contains("\(root)/secret/370211.key") == true)
        #expect(readable?.description.contains("chmod 600") == true)
        let missing = #expect(throws: SettleNetError.self) { try keys.publicKey("370202") }
        #expect(missing?.description.contains("\(root)/public/370202.key is missing") == true)
        try "not a key\n".write(toFile: keys.publicKeyPath("370203"), atomically: true, encoding: .utf8)
        #expect(throws: SettleNetError.self) { try keys.publicKey("370203") }
    }

    @Test func aNodeAdmitsItsChildrenItsParentAndAtCountyItsInstitutionsOnly() throws {
        #expect(Set(Admission.peers(of: DivisionCode("370200")!, in: topology)) == ["370202", "370211", "370000"])
        #expect(Set(Admission.peers(of: DivisionCode("370211")!, in: topology)) == ["370200", "H37021100001", "H37021100002", "H37021100003"])
        #expect(Set(Admission.peers(of: DivisionCode("000000")!, in: topology)) == ["370000", "410000"])

        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keys = KeyDirectory(root: root)
        try keys.generate(for: KeyDirectory.names(in: topology, hospitalsPerCounty: 2))
        let county = try NodeKeys(id: DivisionCode("370211")!, topology: topology, keys: keys)
        #expect(Set(county.admitted.values) == ["370200", "H37021100001", "H37021100002"])
        #expect(county.institutionsWithoutKeys == 1)
        #expect(county.parentKey == (try keys.publicKey("370200")))
        #expect(try NodeKeys(id: DivisionCode("000000")!, topology: topology, keys: keys).parentKey == nil)
    }

    @Test func topologySecuritySectionIsCheckedAndItsKeyDirectoryIsRelativeToTheFile() throws {
        let base = try String(contentsOfFile: "\(repositoryRoot)/Topologies/minimal.yaml", encoding: .utf8)
        let named = try TopologyLoader.parse(base + "security:\n  curve: true\n  keys: ../keys/minimal\n", file: "/etc/settlenet/topologies/t.yaml")
        #expect(named.security == SecuritySettings(curve: true, keysDirectory: "/etc/settlenet/keys/minimal"))
        let wrong = #expect(throws: FileProblems.self) {
            try TopologyLoader.parse(base + "security:\n  curve: yes please\n  key: x\n", file: "t.yaml")
        }
        let text = wrong.map { "\($0)" } ?? ""
        #expect(text.contains("security.curve"))
        #expect(text.contains("key"))
    }

    @Test func theGateAdmitsAKnownKeyUnderItsNameAtItsNodeOnly() {
        let tables = ["370211": ["KEY-H1": "H37021100001", "KEY-CITY": "370200"]]
        func ask(_ domain: String, _ mechanism: String, _ key: String?) -> ZAPDecision {
            AdmissionGate.decide(ZAPRequest(domain: domain, address: "10.0.0.9", mechanism: mechanism, clientKey: key), tables: tables)
        }
        #expect(ask("370211", "CURVE", "KEY-H1") == .admit(userID: "H37021100001"))
        #expect(ask("370211", "CURVE", "KEY-CITY") == .admit(userID: "370200"))
        #expect(ask("370211", "CURVE", "KEY-OTHER") == .refuse(reason: "key not admitted"))
        #expect(ask("370202", "CURVE", "KEY-H1") == .refuse(reason: "no node 370202 here"), "a key admitted at one node opens another")
        #expect(ask("370211", "NULL", nil) == .refuse(reason: "plaintext (NULL) link to a secured node"))
    }
}
