import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel
import Testing
import Yams

/// `cluster export` (Kubernetes manifests, systemd units) and `cluster ready`.
@Suite struct ExportTests {
    let minimal: Topology
    let minimalText: String

    init() throws {
        let path = "\(repositoryRoot)/Topologies/minimal.yaml"
        minimal = try TopologyLoader.load(path: path)
        minimalText = try String(contentsOfFile: path, encoding: .utf8)
    }

    // MARK: kubernetes

    @Test func kubernetesHasAStatefulSetPerProcessAndAServicePerNode() throws {
        let files = try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                             packing: .provinceTier, format: .kubernetes, options: .init())
        #expect(files.map(\.path) == ["settlenet-minimal.yaml"])
        var sequence = try Yams.load_all(yaml: try #require(files.first).contents)
        var documents: [[String: Any]] = []
        while let document = sequence.next() { documents.append(try #require(document as? [String: Any])) }
        #expect(sequence.error == nil, "the manifest is valid YAML")
        func kind(_ name: String) -> [[String: Any]] { documents.filter { $0["kind"] as? String == name } }
        #expect(documents.count == 31, "1 Namespace, 1 ConfigMap, 7 StatefulSets with their 7 headless Services, 15 Services")

        let namespaces = kind("Namespace")
        #expect(namespaces.count == 1)
        #expect(metadata(namespaces[0])["name"] as? String == "settlenet")

        // The ConfigMap's topology loads and reaches every node through its Service.
        let configMaps = kind("ConfigMap")
        #expect(configMaps.count == 1)
        let data = try #require(configMaps[0]["data"] as? [String: Any])
        let text = try #require(data["topology.yaml"] as? String)
        let rewritten = try TopologyLoader.parse(text, file: "topology.yaml")
        #expect(rewritten.nodes.count == 15)
        #expect(rewritten.basePort == minimal.basePort)
        #expect(rewritten.metricsPortOffset == 1000, "the pods serve their metrics too")
        for spec in minimal.nodes {
            #expect(rewritten.address(of: spec.id) == "sn-\(spec.id.value)")
            #expect(rewritten.port(of: spec.id) == minimal.port(of: spec.id))
            let copy = try #require(rewritten.node(spec.id))
            #expect(copy.tier == spec.tier && copy.parent == spec.parent && copy.name == spec.name)
            #expect(copy.hospitals == spec.hospitals && copy.population == spec.population)
            #expect(copy.policy == spec.policy, "policies are kept")
            #expect(rewritten.bindEndpoint(of: spec.id) == "tcp://*:\(minimal.port(of: spec.id)!)")
        }

        // One StatefulSet per process; every node in exactly one.
        let groups = Packing.provinceTier.groups(of: minimal.nodes, in: minimal)
        #expect(groups.count == 7)
        #expect(kind("Deployment").isEmpty)
        let sets = kind("StatefulSet")
        #expect(sets.count == groups.count)
        let services = kind("Service")
        var processOfNode: [String: String] = [:]
        var setNames: Set<String> = []
        for set in sets {
            let meta = metadata(set)
            let name = try #require(meta["name"] as? String)
            setNames.insert(name)
            #expect(meta["namespace"] as? String == "settlenet")
            let labels = try #require(meta["labels"] as? [String: Any])
            #expect(labels["app"] as? String == "settlenet")
            let process = try #require(labels["settlenet/process"] as? String, "process label is a string")
            #expect(name == "sn-p-\(process.lowercased())")
            let spec = try #require(set["spec"] as? [String: Any])
            #expect(spec["replicas"] as? Int == 1)
            // Its governing Service is headless and selects its pod.
            #expect(spec["serviceName"] as? String == name)
            let governing = try #require(services.first { metadata($0)["name"] as? String == name })
            let governingSpec = try #require(governing["spec"] as? [String: Any])
            #expect(governingSpec["clusterIP"] as? String == "None")
            #expect((governingSpec["selector"] as? [String: Any])?["settlenet/process"] as? String == process)
            let selector = try #require((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: Any])
            #expect(selector["settlenet/process"] as? String == process)
            let template = try #require(spec["template"] as? [String: Any])
            let podLabels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: Any])
            #expect(podLabels["settlenet/process"] as? String == process)
            let podSpec = try #require(template["spec"] as? [String: Any])
            let containers = try #require(podSpec["containers"] as? [[String: Any]])
            #expect(containers.count == 1)
            let container = containers[0]
            #expect(container["image"] as? String == "settlenet:latest")
            let arguments = (container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
            #expect(Array(arguments.prefix(6)) == ["settlenet", "node", "--topology", "/etc/settlenet/topology.yaml", "--data-dir", "/data"])
            let ids = idsAfter("--id", in: arguments)
            let group = try #require(groups.first { $0.name == process })
            #expect(ids == group.nodes.map(\.value))
            for id in ids {
                #expect(processOfNode[id] == nil, "node \(id) in two StatefulSets")
                processOfNode[id] = process
            }
            let ports = try #require(container["ports"] as? [[String: Any]])
            #expect(ports.filter { $0["name"] as? String != "metrics" }.compactMap { $0["containerPort"] as? Int }
                    == group.nodes.map { minimal.port(of: $0)! })
            // One metrics endpoint for the pod's nodes, at its first node's metrics port, annotated for Prometheus.
            let metricsPort = try #require(minimal.metricsPort(of: group.nodes[0]))
            #expect(ports.first { $0["name"] as? String == "metrics" }?["containerPort"] as? Int == metricsPort)
            let annotations = try #require((template["metadata"] as? [String: Any])?["annotations"] as? [String: Any])
            #expect(annotations["prometheus.io/port"] as? String == String(metricsPort))
            let probe = try #require(container["readinessProbe"] as? [String: Any])
            let probeCommand = try #require((probe["exec"] as? [String: Any])?["command"] as? [String])
            #expect(probeCommand.joined(separator: " ").contains("cluster ready"))
            #expect(idsAfter("--node", in: probeCommand) == ids)
            #expect(probe["periodSeconds"] as? Int == 2)
            let mounts = try #require(container["volumeMounts"] as? [[String: Any]]).compactMap { $0["mountPath"] as? String }
            #expect(Set(mounts) == ["/etc/settlenet", "/data"])
            let volumes = try #require(podSpec["volumes"] as? [[String: Any]])
            #expect(volumes.contains { ($0["configMap"] as? [String: Any])?["name"] as? String == "settlenet-topology" })
            // The ledgers are on a claim of the process's own, not in the pod.
            #expect(!volumes.contains { $0["name"] as? String == "data" }, "no pod volume named data: the claim template is")
            let claims = try #require(spec["volumeClaimTemplates"] as? [[String: Any]])
            #expect(claims.count == 1)
            #expect(metadata(claims[0])["name"] as? String == "data")
            let claim = try #require(claims[0]["spec"] as? [String: Any])
            #expect(claim["accessModes"] as? [String] == ["ReadWriteOnce"])
            #expect(((claim["resources"] as? [String: Any])?["requests"] as? [String: Any])?["storage"] as? String == "5Gi")
            #expect(claim["storageClassName"] == nil, "the cluster's default class unless one is named")
        }
        #expect(Set(processOfNode.keys) == Set(minimal.nodes.map(\.id.value)))
        #expect(setNames.count == sets.count)

        // One Service per node, on the node's port, selecting the pod that hosts it.
        let nodeServices = services.filter { !setNames.contains(metadata($0)["name"] as? String ?? "") }
        #expect(nodeServices.count == 15)
        var serviced: Set<String> = []
        for service in nodeServices {
            let name = try #require(metadata(service)["name"] as? String)
            let id = try #require(DivisionCode(String(name.dropFirst(3))), "service \(name) is sn-<id>")
            #expect(name.hasPrefix("sn-"))
            serviced.insert(id.value)
            let spec = try #require(service["spec"] as? [String: Any])
            let selector = try #require(spec["selector"] as? [String: Any])
            #expect(selector["settlenet/process"] as? String == processOfNode[id.value])
            let ports = try #require(spec["ports"] as? [[String: Any]])
            #expect(ports.count == 1)
            #expect(ports.first?["port"] as? Int == minimal.port(of: id))
            #expect(ports.first?["targetPort"] as? Int == minimal.port(of: id))
        }
        #expect(serviced == Set(minimal.nodes.map(\.id.value)))
    }

    /// Per-client limits the operator set hold behind the Services too.
    @Test func theKubernetesRewriteKeepsTheEdgeLimits() throws {
        var topology = try TopologyLoader.load(path: "\(repositoryRoot)/Topologies/minimal.yaml")
        topology.edge = EdgeSettings(clientRatePerS: 50, clientBurst: 80)
        let rewritten = try TopologyLoader.parse(ManifestExport.serviceTopologyText(topology, from: "minimal.yaml"), file: "k.yaml")
        #expect(rewritten.edge == topology.edge)
    }

    @Test func aSecuredTopologyStaysSecuredInKubernetesWithItsKeysFromSecrets() throws {
        let path = "\(repositoryRoot)/Topologies/minimal-secure.yaml"
        let secured = try TopologyLoader.load(path: path)
        let files = try ManifestExport.files(topology: secured, topologyFileName: "minimal-secure.yaml",
                                             topologyText: try String(contentsOfFile: path, encoding: .utf8),
                                             packing: .provinceTier, format: .kubernetes, options: .init())
        let manifest = try #require(files.first).contents
        var sequence = try Yams.load_all(yaml: manifest)
        var documents: [[String: Any]] = []
        while let document = sequence.next() { documents.append(try #require(document as? [String: Any])) }
        // The rewritten topology the pods load is secured, its keys where the Secrets are mounted.
        let configMap = try #require(documents.first { $0["kind"] as? String == "ConfigMap" })
        let text = try #require((configMap["data"] as? [String: Any])?["topology.yaml"] as? String)
        let loaded = try TopologyLoader.parse(text, file: "/etc/settlenet/topology.yaml")
        #expect(loaded.security == SecuritySettings(curve: true, keysDirectory: "/etc/settlenet-keys"))
        let sets = documents.filter { $0["kind"] as? String == "StatefulSet" }
        #expect(sets.count == 7)
        for set in sets {
            let pod = try #require(((set["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
            let volumes = try #require(pod["volumes"] as? [[String: Any]])
            let secretNames = volumes.compactMap { ($0["secret"] as? [String: Any])?["secretName"] as? String }
            #expect(Set(secretNames) == ["settlenet-keys-public", "settlenet-keys-secret"])
            let secretVolume = try #require(volumes.first { ($0["secret"] as? [String: Any])?["secretName"] as? String == "settlenet-keys-secret" })
            #expect((secretVolume["secret"] as? [String: Any])?["defaultMode"] as? Int == 0o400)
            let mounts = try #require(((pod["containers"] as? [[String: Any]])?.first)?["volumeMounts"] as? [[String: Any]])
            #expect(Set(mounts.compactMap { $0["mountPath"] as? String }).isSuperset(of: ["/etc/settlenet-keys/public", "/etc/settlenet-keys/secret"]))
        }
        // No key material in the manifest, only how to make the Secrets.
        #expect(manifest.contains("kubectl -n settlenet create secret generic settlenet-keys-secret --from-file=KEYS/secret"))
        #expect(!manifest.contains("BEGIN") && !manifest.contains(".key"))

        // systemd keeps the file as written (security included) and says where the keys go.
        let units = try ManifestExport.files(topology: secured, topologyFileName: "minimal-secure.yaml",
                                             topologyText: try String(contentsOfFile: path, encoding: .utf8),
                                             packing: .provinceTier, format: .systemd, options: .init())
        let readme = try #require(units.first { $0.path == "README.txt" }).contents
        #expect(readme.contains("settlenet keys generate --topology minimal-secure.yaml --out KEYS"))
        #expect(readme.contains("/var/lib/settlenet/keys"))
    }

    /// Throwaway runs: the ledgers in an emptyDir, no claims.
    @Test func kubernetesKeepsLedgersInAnEmptyDirOnlyWhenAsked() throws {
        var options = ManifestExport.Options()
        options.volumes = .emptyDir
        let files = try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                             packing: .provinceTier, format: .kubernetes, options: options)
        var sequence = try Yams.load_all(yaml: try #require(files.first).contents)
        var sets: [[String: Any]] = []
        while let document = sequence.next() {
            if let set = document as? [String: Any], set["kind"] as? String == "StatefulSet" { sets.append(set) }
        }
        #expect(sets.count == 7)
        for set in sets {
            let spec = try #require(set["spec"] as? [String: Any])
            #expect(spec["volumeClaimTemplates"] == nil)
            let volumes = try #require((((spec["template"] as? [String: Any])?["spec"] as? [String: Any])?["volumes"]) as? [[String: Any]])
            #expect(volumes.contains { $0["name"] as? String == "data" && $0["emptyDir"] != nil })
        }
    }

    @Test func kubernetesRejectsAVolumeSizeOrStorageClassItCannotWrite() {
        for (size, storageClass) in [("5 GB", nil), ("Gi", nil), ("0", nil), ("5Gi", "Fast SSD"), ("5Gi", "ssd.")] as [(String, String?)] {
            var options = ManifestExport.Options()
            options.volumeSize = size
            options.storageClass = storageClass
            #expect(throws: SettleNetError.self, "\(size) \(storageClass ?? "")") {
                try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                         packing: .provinceTier, format: .kubernetes, options: options)
            }
        }
        var options = ManifestExport.Options()
        options.volumeSize = "1.5Gi"
        options.storageClass = "fast-ssd.example"
        #expect(throws: Never.self) {
            try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                     packing: .provinceTier, format: .kubernetes, options: options)
        }
    }

    @Test func kubernetesRejectsANamespaceThatIsNoDNSLabel() {
        var options = ManifestExport.Options()
        options.namespace = "Settle Net"
        #expect(throws: SettleNetError.self) {
            try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                     packing: .none, format: .kubernetes, options: options)
        }
    }

    // MARK: systemd

    @Test func systemdWritesAUnitPerNodeOrderedAfterItsParent() throws {
        let files = try ManifestExport.files(topology: minimal, topologyFileName: "minimal.yaml", topologyText: minimalText,
                                             packing: .none, format: .systemd, options: .init())
        let units = files.filter { $0.path.hasSuffix(".service") }
        #expect(units.count == 15)
        #expect(files.contains { $0.path == "settlenet.target" })
        #expect(files.contains { $0.path == "README.txt" && $0.contents.contains("systemctl daemon-reload") })
        #expect(files.first { $0.path == "minimal.yaml" }?.contents == minimalText, "the topology to install")
        let target = try #require(files.first { $0.path == "settlenet.target" })
        let wanted = Set(unitKeys(target.contents)["Wants"]?.flatMap { $0.split(separator: " ").map(String.init) } ?? [])
        #expect(wanted == Set(units.map(\.path)))

        for spec in minimal.nodes {
            let unit = try #require(files.first { $0.path == "settlenet-\(spec.id.value).service" })
            let keys = unitKeys(unit.contents)
            let start = try #require(keys["ExecStart"]?.first)
            #expect(start.hasPrefix("/usr/local/bin/settlenet node --topology /etc/settlenet/minimal.yaml --data-dir /var/lib/settlenet"))
            #expect(start.contains("--id \(spec.id.value)"))
            #expect(idsAfter("--id", in: start.split(separator: " ").map(String.init)) == [spec.id.value])
            #expect(keys["Type"] == ["simple"])
            #expect(keys["Restart"] == ["on-failure"])
            #expect(keys["KillSignal"] == ["SIGTERM"])
            #expect(keys["TimeoutStopSec"] == ["15"])
            #expect(keys["LimitNOFILE"] == ["65536"])
            let ready = try #require(keys["ExecStartPost"]?.first)
            #expect(ready.contains("cluster ready --data-dir /var/lib/settlenet --wait 60 --node \(spec.id.value)"))
            let after = keys["After"]?.joined(separator: " ") ?? ""
            let wants = keys["Wants"]?.joined(separator: " ") ?? ""
            if let parent = spec.parent {
                #expect(after.contains("settlenet-\(parent.value).service"), "\(spec.id) starts after its parent")
                #expect(wants.contains("settlenet-\(parent.value).service"))
            } else {
                #expect(!after.contains("settlenet-"))
            }
        }
        // A county after its city.
        let county = try #require(files.first { $0.path == "settlenet-370211.service" })
        #expect(unitKeys(county.contents)["After"]?.joined(separator: " ").contains("settlenet-370200.service") == true)
    }

    @Test func systemdSplitsUnitsByNamedHost() throws {
        let divisions = try DivisionData.load(directory: "\(repositoryRoot)/Topologies/divisions")
        var options = TopologyGenerator.Options(name: "two")
        options.provinces = ["37"]
        options.counterparts = ["41"]
        options.hosts = [("east", "10.77.0.1"), ("west", "10.77.0.2")]
        let text = try TopologyGenerator.generate(divisions, options: options).yaml
        let topology = try TopologyLoader.parse(text, file: "two.yaml")

        let files = try ManifestExport.files(topology: topology, topologyFileName: "two.yaml", topologyText: text,
                                             packing: .provinceTier, format: .systemd, options: .init())
        let units = files.filter { $0.path.hasSuffix(".service") }
        // The generator puts the national node on the first named host.
        let directories = Set(files.compactMap { $0.path.split(separator: "/").count == 2 ? String($0.path.split(separator: "/")[0]) : nil })
        #expect(directories == ["east", "west"])
        #expect(units.allSatisfy { $0.path.split(separator: "/").count == 2 }, "every unit sits in its host's directory")
        for directory in directories {
            #expect(files.contains { $0.path == "\(directory)/settlenet.target" })
            #expect(files.contains { $0.path == "\(directory)/two.yaml" && $0.contents == text })
        }
        #expect(files.contains { $0.path == "README.txt" })

        var directoryOfNode: [String: String] = [:]
        for unit in units {
            let directory = String(unit.path.split(separator: "/")[0])
            let start = try #require(unitKeys(unit.contents)["ExecStart"]?.first)
            for id in idsAfter("--id", in: start.split(separator: " ").map(String.init)) {
                #expect(directoryOfNode[id] == nil, "node \(id) in two units")
                directoryOfNode[id] = directory
                #expect((topology.node(DivisionCode(id)!)?.host ?? "default") == directory, "node \(id) on its own host")
            }
            // Ordered after parents only on the same machine: another machine's units are not installed here.
            for dependency in (unitKeys(unit.contents)["After"] ?? []).flatMap({ $0.split(separator: " ") }) where dependency.hasPrefix("settlenet-") {
                #expect(files.contains { $0.path == "\(directory)/\(dependency)" })
            }
        }
        #expect(Set(directoryOfNode.keys) == Set(topology.nodes.map(\.id.value)))
        #expect(directoryOfNode["370000"] == "east" && directoryOfNode["410000"] == "west")
        #expect(directoryOfNode["000000"] == "east")
    }

    // MARK: cluster ready

    @Test func readyNeedsSignInCatalogAndALiveProcess() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-ready-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = Cluster(dataDirectory: directory)
        let alive = getpid()
        let dead: Int32 = 99_999_999   // beyond any pid_max (at most 2^22)
        try writeStatus(directory, "370211", pid: alive, signedIn: true, catalog: "2025.1")
        try writeStatus(directory, "370202", pid: dead, signedIn: true, catalog: "2025.1")
        try writeStatus(directory, "370102", pid: alive, signedIn: false, catalog: "")
        try writeStatus(directory, "370103", pid: alive, signedIn: true, catalog: "")

        #expect(cluster.notReady(nodes: ["370211"]).isEmpty)
        #expect(cluster.notReady(nodes: ["370211", "370202", "370102", "370103", "370200"]) == ["370202", "370102", "370103", "370200"])
        #expect(cluster.whyNotReady("370211") == nil)
        #expect(cluster.whyNotReady("370202")?.contains("not running") == true)
        #expect(cluster.whyNotReady("370102") == "not signed in")
        #expect(cluster.whyNotReady("370103")?.contains("catalog") == true)
        #expect(cluster.whyNotReady("370200") == "no status file")

        // --wait: gives up after the time given, or returns as soon as the node is ready.
        let started = Date()
        let missing = cluster.waitUntilReady(nodes: ["370211", "370102"], timeoutSeconds: 0.5)
        #expect(missing.map(\.id) == ["370102"])
        #expect(Date().timeIntervalSince(started) >= 0.5)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) {
            try? writeStatus(directory, "370102", pid: alive, signedIn: true, catalog: "2025.1")
        }
        #expect(cluster.waitUntilReady(nodes: ["370211", "370102"], timeoutSeconds: 10).isEmpty)
        #expect(Date().timeIntervalSince(started) < 8)
    }

    @Test func theCommandsWriteFilesAndExitByReadiness() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-export-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try settlenet(["cluster", "export", "--topology", "Topologies/minimal.yaml", "--format", "systemd",
                                    "--pack", "province-tier", "--out", "\(directory)/units"])
        #expect(export.status == 0, "\(export.output)\(export.error)")
        let written = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/units")
        #expect(written.filter { $0.hasSuffix(".service") }.count == 7)
        let wrongPack = try settlenet(["cluster", "export", "--topology", "Topologies/minimal.yaml", "--format", "systemd",
                                       "--pack", "tiers", "--out", "\(directory)/x"])
        #expect(wrongPack.status != 0 && wrongPack.error.contains("province-tier"))

        let data = "\(directory)/data"
        try writeStatus(data, "370211", pid: getpid(), signedIn: true, catalog: "2025.1")
        let ready = try settlenet(["cluster", "ready", "--data-dir", data, "--node", "370211"])
        #expect(ready.status == 0, "\(ready.output)\(ready.error)")
        let notReady = try settlenet(["cluster", "ready", "--data-dir", data, "--node", "370211", "--node", "370202"])
        #expect(notReady.status == 1)
        #expect(notReady.error.contains("370202") && !notReady.error.contains("370211"))
    }
}

private func metadata(_ document: [String: Any]) -> [String: Any] { document["metadata"] as? [String: Any] ?? [:] }

/// The values following each `flag` in an argument list.
private func idsAfter(_ flag: String, in arguments: [String]) -> [String] {
    zip(arguments, arguments.dropFirst()).filter { $0.0 == flag }.map(\.1)
}

/// A unit file's `Key=Value` lines (comments and sections left out), values per key in order.
private func unitKeys(_ text: String) -> [String: [String]] {
    var keys: [String: [String]] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        keys[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
    }
    return keys
}

private func writeStatus(_ root: String, _ id: String, pid: Int32, signedIn: Bool, catalog: String) throws {
    let layout = DataLayout(root: root)
    let code = DivisionCode(id)!
    try FileManager.default.createDirectory(atPath: layout.nodeDirectory(code), withIntermediateDirectories: true)
    let status = NodeStatus(id: id, tier: "county", pid: pid, endpoint: "tcp://127.0.0.1:1", state: "running", signedIn: signedIn,
                            signNo: signedIn ? "S1" : "", catalogVersion: catalog, startedAtMs: 0, updatedAtMs: 0,
                            messagesHandled: 0, pending: 0)
    try JSONEncoder().encode(status).write(to: URL(fileURLWithPath: layout.statusPath(code)), options: .atomic)
}
