import Foundation
import NetworkTopology
import SettlementModel

/// Deployment manifests for a topology (`cluster export`), so that operators who run a scheduler
/// launch a cluster with it instead of `cluster up`. Pure: topology and options in, files out.
///
/// - kubernetes: one multi-document YAML file with a Namespace, a ConfigMap holding the topology
///   rewritten so that every node's address is its Service (`sn-<id>`), one StatefulSet per
///   process (as `packing` groups the nodes) with its headless Service and its ledgers on a
///   persistent volume, and one Service per node.
/// - systemd: one unit per process, `settlenet.target` over them and a README.txt; per named host
///   a directory of its own when the topology places nodes on hosts.
///
/// Either way a process starts as `cluster up` starts it (`settlenet node --id A --id B ...`), and
/// counts as started once `settlenet cluster ready` finds its nodes signed in.
public enum ManifestExport {
    public enum Format: String, CaseIterable, Sendable {
        case kubernetes, systemd
    }

    public struct File: Sendable, Equatable {
        /// Relative to the output directory.
        public var path: String
        public var contents: String

        public init(path: String, contents: String) {
            self.path = path
            self.contents = contents
        }
    }

    /// Ledgers are state: by default each process keeps them on a PersistentVolumeClaim of its own
    /// (a StatefulSet's `volumeClaimTemplates`), which outlives the pod. An `emptyDir` goes with
    /// the pod, for throwaway runs only.
    public enum Volumes: String, CaseIterable, Sendable {
        case persistent
        case emptyDir = "emptydir"
    }

    public struct Options: Sendable {
        /// The container image with `settlenet` on its PATH (kubernetes).
        public var image = "settlenet:latest"
        public var namespace = "settlenet"
        /// The settlenet binary on the target machines (systemd).
        public var executable = "/usr/local/bin/settlenet"
        /// The cluster's data directory on the target machines (systemd; kubernetes mounts /data).
        public var dataDirectory = "/var/lib/settlenet"
        /// Where the topology file is installed on the target machines (systemd); nil for
        /// /etc/settlenet/<topology file name>.
        public var topologyPath: String?
        /// Where a process's ledgers live (kubernetes).
        public var volumes = Volumes.persistent
        /// The size each process's PersistentVolumeClaim asks for, a Kubernetes quantity (kubernetes).
        public var volumeSize = "5Gi"
        /// The StorageClass of the claims; nil for the cluster's default (kubernetes).
        public var storageClass: String?

        public init() {}
    }


    /// The Kubernetes version the tests validate the manifests against (kubernetes-validate --strict).
    public static let validatedKubernetesVersion = "1.33.0"

    /// Where kubernetes pods find the topology and keep their data.
    static let podTopologyDirectory = "/etc/settlenet"
    static let podTopologyPath = "/etc/settlenet/topology.yaml"
    static let podDataDirectory = "/data"
    /// Secured topologies: the two key Secrets are mounted here (not under the ConfigMap's
    /// read-only mount, where no mount point can be made).
    static let podKeysDirectory = "/etc/settlenet-keys"
    static let publicKeysSecret = "settlenet-keys-public"
    static let secretKeysSecret = "settlenet-keys-secret"
    /// A ConfigMap holds at most 1 MiB, metadata included.
    static let configMapLimit = 1_000_000

    /// The Service, and so the address, of a node under kubernetes.
    public static func serviceName(of id: DivisionCode) -> String { "sn-\(id.value)" }

    /// The StatefulSet of a process under kubernetes, and its headless Service.
    public static func statefulSetName(of group: Packing.Group) -> String { "sn-p-\(group.name.lowercased())" }

    /// The unit of a process under systemd.
    public static func unitName(of group: Packing.Group) -> String { "settlenet-\(group.name).service" }

    /// The manifests for `topology` (read from a file named `topologyFileName` whose text is
    /// `topologyText`), its nodes packed into processes as `packing` says.
    public static func files(topology: Topology, topologyFileName: String, topologyText: String, packing: Packing,
                             format: Format, options: Options = Options()) throws -> [File] {
        guard !topology.nodes.isEmpty else { throw SettleNetError(.export, "the topology has no nodes") }
        switch format {
        case .kubernetes:
            return try kubernetes(topology: topology, topologyFileName: topologyFileName, packing: packing, options: options)
        case .systemd:
            return try systemd(topology: topology, topologyFileName: topologyFileName, topologyText: topologyText,
                               packing: packing, options: options)
        }
    }

    // MARK: kubernetes

    static func kubernetes(topology: Topology, topologyFileName: String, packing: Packing, options: Options) throws -> [File] {
        let namespace = options.namespace
        guard isDNSLabel(namespace) else {
            throw SettleNetError(.export, "namespace \"\(namespace)\" is not a DNS label (lower-case letters, digits and '-', at most 63 characters)")
        }
        guard !options.image.isEmpty else { throw SettleNetError(.export, "the image is empty") }
        let groups = packing.groups(of: topology.nodes, in: topology)
        for group in groups where !isDNSLabel(statefulSetName(of: group)) {
            throw SettleNetError(.export, "process \(group.name) gives no valid StatefulSet name (\(statefulSetName(of: group)))")
        }
        if options.volumes == .persistent {
            guard isQuantity(options.volumeSize) else {
                throw SettleNetError(.export, "volume size \"\(options.volumeSize)\" is not a Kubernetes quantity such as 5Gi or 500Mi")
            }
            if let storageClass = options.storageClass, !isDNSSubdomain(storageClass) {
                throw SettleNetError(.export, "storage class \"\(storageClass)\" is not a DNS subdomain (lower-case letters, digits, '-' and '.')")
            }
        }
        let rewritten = serviceTopologyText(topology, from: topologyFileName)
        guard rewritten.utf8.count < configMapLimit else {
            throw SettleNetError(.export, "the rewritten topology is \(rewritten.utf8.count) bytes: more than a ConfigMap holds (1 MiB)")
        }
        let topologyHash = fnv1a(rewritten)
        let name = fileSafe(topology.name)

        var documents: [[String]] = []
        // Secured: the keys come from two Secrets the operator creates; the manifest never holds a secret key.
        let keySteps = topology.isSecured ? [
            "# The topology is secured (CURVE on every link): create its key Secrets before applying,",
            "#   settlenet keys generate --topology \(topologyFileName) --out KEYS",
            "#   kubectl -n \(namespace) create secret generic \(publicKeysSecret) --from-file=KEYS/public",
            "#   kubectl -n \(namespace) create secret generic \(secretKeysSecret) --from-file=KEYS/secret",
            "# (after the Namespace below exists; each pod mounts them at \(podKeysDirectory)/{public,secret}).",
        ] : []
        documents.append(keySteps + [
            "# Generated by `settlenet cluster export --format kubernetes` from \(topologyFileName) (topology \(topology.name)):",
            "# \(topology.nodes.count) nodes in \(groups.count) processes (packing \(packing)), one StatefulSet per process and",
            "# one Service per node. " + (options.volumes == .persistent
                ? "Each process keeps its ledgers on a PersistentVolumeClaim of its own (\(options.volumeSize)),"
                : "The ledgers sit in emptyDir volumes and go with their pods (a throwaway run)."),
            options.volumes == .persistent
                ? "# which outlives its pod: `kubectl delete pvc -l app=settlenet` removes them. Apply with:"
                : "# Apply with:",
            "#   kubectl apply --server-side -f settlenet-\(name).yaml",
            "# (server-side: a client-side apply keeps a copy of the ConfigMap in an annotation, at most 256 KiB)",
            "#   kubectl -n \(namespace) rollout status statefulset -l app=settlenet --timeout=300s",
            "# A pod is ready once all its nodes have signed in to their parents (`settlenet cluster ready`).",
            "# Named hosts of the topology are ignored here: the scheduler places the pods.",
            "apiVersion: v1",
            "kind: Namespace",
            "metadata:",
            "  name: \(quoted(namespace))",
            "  labels:",
            "    app: settlenet",
        ])

        var configMap = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            "  name: settlenet-topology",
            "  namespace: \(quoted(namespace))",
            "  labels:",
            "    app: settlenet",
            "data:",
            "  topology.yaml: |",
        ]
        configMap += rewritten.split(separator: "\n", omittingEmptySubsequences: false).dropLast(rewritten.hasSuffix("\n") ? 1 : 0)
            .map { $0.isEmpty ? "" : "    " + $0 }
        documents.append(configMap)

        var hostedBy: [DivisionCode: Packing.Group] = [:]
        for group in groups {
            for id in group.nodes { hostedBy[id] = group }
            documents.append(governingService(group, namespace: namespace))
            documents.append(statefulSet(group, topology: topology, namespace: namespace, options: options, topologyHash: topologyHash))
        }
        for spec in topology.nodes {
            guard let group = hostedBy[spec.id], let port = topology.port(of: spec.id) else { continue }
            documents.append([
                "apiVersion: v1",
                "kind: Service",
                "metadata:",
                "  name: \(serviceName(of: spec.id))",
                "  namespace: \(quoted(namespace))",
                "  labels:",
                "    app: settlenet",
                "    settlenet/node: \(quoted(spec.id.value))",
                "spec:",
                "  selector:",
                "    app: settlenet",
                "    settlenet/process: \(quoted(group.name))",
                "  # Route to the pod before it is ready: packed nodes sign in to each other through their",
                "  # Services, and a node is only ready once signed in.",
                "  publishNotReadyAddresses: true",
                "  ports:",
                "    - { name: zmq, port: \(port), targetPort: \(port), protocol: TCP }",
            ])
        }
        let text = documents.map { $0.joined(separator: "\n") }.joined(separator: "\n---\n") + "\n"
        return [File(path: "settlenet-\(name).yaml", contents: text)]
    }

    /// The headless Service a StatefulSet names as its `serviceName`: it gives the pod its stable
    /// network identity. Peers reach the nodes through the per-node Services.
    static func governingService(_ group: Packing.Group, namespace: String) -> [String] {
        [
            "apiVersion: v1",
            "kind: Service",
            "metadata:",
            "  name: \(statefulSetName(of: group))",
            "  namespace: \(quoted(namespace))",
            "  labels:",
            "    app: settlenet",
            "    settlenet/process: \(quoted(group.name))",
            "spec:",
            "  clusterIP: None",
            "  publishNotReadyAddresses: true",
            "  selector:",
            "    app: settlenet",
            "    settlenet/process: \(quoted(group.name))",
        ]
    }

    static func statefulSet(_ group: Packing.Group, topology: Topology, namespace: String, options: Options, topologyHash: String) -> [String] {
        let name = statefulSetName(of: group)
        let image = options.image
        var arguments = ["node", "--topology", podTopologyPath, "--data-dir", podDataDirectory]
        var probe = ["settlenet", "cluster", "ready", "--data-dir", podDataDirectory]
        for id in group.nodes {
            arguments += ["--id", id.value]
            probe += ["--node", id.value]
        }
        var lines = [
            "apiVersion: apps/v1",
            "kind: StatefulSet",
            "metadata:",
            "  name: \(name)",
            "  namespace: \(quoted(namespace))",
            "  labels:",
            "    app: settlenet",
            "    settlenet/process: \(quoted(group.name))",
            "spec:",
            "  serviceName: \(name)",
            "  # One pod, and a StatefulSet never runs two copies of it: two copies of a node would both",
            "  # sign in and write one ledger. An update stops the old pod before the new one starts.",
            "  replicas: 1",
            "  updateStrategy:",
            "    type: RollingUpdate",
            "  selector:",
            "    matchLabels:",
            "      app: settlenet",
            "      settlenet/process: \(quoted(group.name))",
            "  template:",
            "    metadata:",
            "      labels:",
            "        app: settlenet",
            "        settlenet/process: \(quoted(group.name))",
            "      annotations:",
            "        # Changes with the topology, so that applying a new one restarts the pods.",
            "        settlenet/topology-hash: \(quoted(topologyHash))",
        ]
        if let first = group.nodes.first, let port = topology.metricsPort(of: first) {
            // Every node of the pod at one endpoint, labelled by node (the convention most Prometheus setups scrape by).
            lines += [
                "        prometheus.io/scrape: \"true\"",
                "        prometheus.io/port: \(quoted(String(port)))",
                "        prometheus.io/path: \"/metrics\"",
            ]
        }
        lines += [
            "    spec:",
            "      # A node drains for up to 5 s after SIGTERM.",
            "      terminationGracePeriodSeconds: 15",
            "      containers:",
            "        - name: node",
            "          image: \(quoted(image))",
            "          command: [\"settlenet\"]",
            "          args: \(flowList(arguments))",
            "          ports:",
        ]
        for id in group.nodes {
            guard let port = topology.port(of: id) else { continue }
            lines.append("            - { name: \(quoted("n-\(id.value)")), containerPort: \(port), protocol: TCP }")
        }
        if let first = group.nodes.first, let port = topology.metricsPort(of: first) {
            lines.append("            - { name: metrics, containerPort: \(port), protocol: TCP }")
        }
        lines += [
            "          readinessProbe:",
            "            exec:",
            "              command: \(flowList(probe))",
            "            periodSeconds: 2",
            "            timeoutSeconds: 5",
            "          volumeMounts:",
            "            - { name: topology, mountPath: \(podTopologyDirectory), readOnly: true }",
            "            - { name: data, mountPath: \(podDataDirectory) }",
        ]
        if topology.isSecured {
            lines += [
                "            - { name: keys-public, mountPath: \(podKeysDirectory)/public, readOnly: true }",
                "            - { name: keys-secret, mountPath: \(podKeysDirectory)/secret, readOnly: true }",
            ]
        }
        lines += [
            "      volumes:",
            "        - name: topology",
            "          configMap:",
            "            name: settlenet-topology",
        ]
        if options.volumes == .emptyDir {
            lines += [
                "        - name: data",
                "          # A throwaway run: the ledgers go with the pod.",
                "          emptyDir: {}",
            ]
        }
        if topology.isSecured {
            lines += [
                "        - name: keys-public",
                "          secret:",
                "            secretName: \(publicKeysSecret)",
                "        - name: keys-secret",
                "          secret:",
                "            secretName: \(secretKeysSecret)",
                "            # 0400: a node refuses a secret key that others can read.",
                "            defaultMode: 256",
            ]
        }
        if options.volumes == .persistent {
            lines += [
                "  # The ledgers: a claim per process (data-\(name)-0), kept when the pod or the StatefulSet goes.",
                "  volumeClaimTemplates:",
                "    - metadata:",
                "        name: data",
                "        labels:",
                "          app: settlenet",
                "          settlenet/process: \(quoted(group.name))",
                "      spec:",
                "        accessModes: [\"ReadWriteOnce\"]",
            ]
            if let storageClass = options.storageClass { lines.append("        storageClassName: \(quoted(storageClass))") }
            lines += [
                "        resources:",
                "          requests:",
                "            storage: \(quoted(options.volumeSize))",
            ]
        }
        return lines
    }

    /// The topology as a file again, every node's address its Service, named hosts left out
    /// (the scheduler places the pods). Loads with `TopologyLoader.parse`.
    public static func serviceTopologyText(_ topology: Topology, from fileName: String) -> String {
        var lines = [
            "# \(fileName) rewritten by `settlenet cluster export --format kubernetes`: every node's address",
            "# is its Service (sn-<id>), so that peers reach each other through the Services.",
            "name: \(quoted(topology.name))",
            "description: \(quoted("\(topology.name) behind Kubernetes Services"))",
            "host: \(quoted(topology.host))",
            "base_port: \(topology.basePort)",
            "metrics_port: \(topology.metricsPortOffset.map(String.init) ?? "off")",
        ]
        if topology.isSecured {
            // Dropping this would quietly turn a secured network into a plaintext one.
            lines += ["security:", "  curve: true", "  keys: \(quoted(podKeysDirectory))"]
        }
        if let edge = topology.edge {
            // The operator's per-client limits hold behind the Services too.
            lines += ["edge:"] + [("client_rate_per_s", edge.clientRatePerS), ("client_burst", edge.clientBurst)]
                .compactMap { key, value in value.map { "  \(key): \($0)" } }
        }
        lines += [
            "nodes:",
        ]
        for spec in topology.nodes {
            var fields = ["id: \(quoted(spec.id.value))", "tier: \(spec.tier.rawValue)"]
            if let parent = spec.parent { fields.append("parent: \(quoted(parent.value))") }
            fields.append("name: \(quoted(spec.name))")
            fields.append("port: \(spec.portOffset)")
            if spec.tier == .county {
                fields.append("hospitals: \(spec.hospitals)")
                fields.append("population: \(spec.population)")
            }
            fields.append("address: \(serviceName(of: spec.id))")
            if let policy = spec.policy {
                fields.append("policy: { deductible_yuan: \(quoted(Money.yuanText(policy.deductibleFen))), "
                              + "pool_ratio_outpatient: \(quoted(ratioText(policy.poolRatioOutpatientBp))), "
                              + "pool_ratio_inpatient: \(quoted(ratioText(policy.poolRatioInpatientBp))), "
                              + "annual_cap_yuan: \(quoted(Money.yuanText(policy.annualCapFen))), "
                              + "large_amount_ratio: \(quoted(ratioText(policy.largeAmountRatioBp))), "
                              + "acct_pay_in_fund: \(policy.acctPayInFund) }")
            }
            lines.append("  - { " + fields.joined(separator: ", ") + " }")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: systemd

    static func systemd(topology: Topology, topologyFileName: String, topologyText: String, packing: Packing,
                        options: Options) throws -> [File] {
        for (label, value) in [("executable", options.executable), ("data directory", options.dataDirectory)] where !value.hasPrefix("/") {
            throw SettleNetError(.export, "the \(label) must be an absolute path, not \"\(value)\"")
        }
        let topologyPath = options.topologyPath ?? "/etc/settlenet/\(topologyFileName)"
        guard topologyPath.hasPrefix("/") else { throw SettleNetError(.export, "the topology path must be absolute, not \"\(topologyPath)\"") }

        // Per named host a directory of its own (nodes without a host are on host `default`).
        let hosted = topology.nodes.contains { $0.host != nil }
        var hostNames: [String?] = [nil]
        if hosted {
            var seen: [String] = []
            for spec in topology.nodes where !seen.contains(spec.host ?? "default") { seen.append(spec.host ?? "default") }
            hostNames = seen
            for host in seen where fileSafe(host) != host || host.isEmpty {
                throw SettleNetError(.export, "host name \"\(host)\" cannot be a directory name")
            }
        }
        var files: [File] = []
        var perHost: [(host: String?, groups: [Packing.Group])] = []
        for host in hostNames {
            let nodes = try Cluster.nodes(of: topology, onHost: host)
            let groups = packing.groups(of: nodes, in: topology)
            perHost.append((host, groups))
        }
        for (host, groups) in perHost {
            let directory = host.map { "\($0)/" } ?? ""
            // Which process hosts each node, host by host (group names can repeat across hosts).
            var processOf: [DivisionCode: String] = [:]
            for group in groups { for id in group.nodes { processOf[id] = group.name } }
            var units: [String] = []
            for group in groups {
                let unit = unitName(of: group)
                units.append(unit)
                files.append(File(path: directory + unit,
                                  contents: unitText(group, topology: topology, topologyFileName: topologyFileName,
                                                     topologyPath: topologyPath, processOf: processOf, host: host, options: options)))
            }
            files.append(File(path: directory + "settlenet.target",
                              contents: targetText(units: units, topology: topology, host: host,
                                                   nodes: groups.reduce(0) { $0 + $1.nodes.count })))
            files.append(File(path: directory + topologyFileName,
                              contents: topologyText.hasSuffix("\n") || topologyText.isEmpty ? topologyText : topologyText + "\n"))
        }
        files.append(File(path: "README.txt",
                          contents: readmeText(topology: topology, topologyFileName: topologyFileName, topologyPath: topologyPath,
                                               packing: packing, perHost: perHost, options: options)))
        return files
    }

    static func unitText(_ group: Packing.Group, topology: Topology, topologyFileName: String, topologyPath: String,
                         processOf: [DivisionCode: String], host: String?, options: Options) -> String {
        let executable = options.executable
        let data = options.dataDirectory
        // The processes of the nodes' parents start first: a unit is started once its nodes signed in.
        var parents: [String] = []
        var remoteParents: [String] = []
        for id in group.nodes {
            guard let parent = topology.node(id)?.parent else { continue }
            if let process = processOf[parent] {
                if process != group.name && !parents.contains(process) { parents.append(process) }
            } else if !remoteParents.contains(parent.value) {
                remoteParents.append(parent.value)
            }
        }
        let parentUnits = parents.map { "settlenet-\($0).service" }
        let ids = group.nodes.map(\.value)
        var node = [executable, "node", "--topology", topologyPath, "--data-dir", data, "--base-port", String(topology.basePort)]
        var ready = [executable, "cluster", "ready", "--data-dir", data, "--wait", "60"]
        for id in ids {
            node += ["--id", id]
            ready += ["--node", id]
        }
        let statusFiles = ids.map { DataLayout(root: data).statusPath(DivisionCode($0)!) }
        let shown = ids.count > 8 ? ids.prefix(8).joined(separator: " ") + " and \(ids.count - 8) more" : ids.joined(separator: " ")
        var lines = [
            "# Generated by `settlenet cluster export --format systemd` from \(topologyFileName) (topology \(topology.name)\(host.map { ", host \($0)" } ?? "")).",
            "# Process \(group.name): node\(ids.count == 1 ? "" : "s") \(ids.joined(separator: ", ")).",
        ]
        for parent in remoteParents {
            let parentHost = topology.node(DivisionCode(parent)!)?.host ?? "default"
            lines.append("# Parent node \(parent) runs on host \(parentHost): the nodes here retry until it is reachable.")
        }
        lines += [
            "[Unit]",
            "Description=SettleNet \(topology.name): process \(group.name) (\(shown))",
            "PartOf=settlenet.target",
            "After=" + (["network-online.target"] + parentUnits).joined(separator: " "),
            "Wants=" + (["network-online.target"] + parentUnits).joined(separator: " "),
            "",
            "[Service]",
            "Type=simple",
        ]
        if data.hasPrefix("/var/lib/") && data.count > "/var/lib/".count {
            lines.append("StateDirectory=\(systemdEscaped(String(data.dropFirst("/var/lib/".count))))")
        }
        lines += [
            "# A status file left by an earlier run must not count as signed in.",
            "ExecStartPre=-/bin/rm -f " + statusFiles.map(systemdArgument).joined(separator: " "),
            "ExecStart=" + node.map(systemdArgument).joined(separator: " "),
            "# Started only once every node of the process has signed in to its parent (the units of",
            "# the children wait for this).",
            "ExecStartPost=" + ready.map(systemdArgument).joined(separator: " "),
            "TimeoutStartSec=90",
            "Restart=on-failure",
            "RestartSec=2",
            "# SIGTERM: the nodes refuse new requests, pass on answers in flight (up to 5 s) and flush their ledgers.",
            "KillSignal=SIGTERM",
            "TimeoutStopSec=15",
            "LimitNOFILE=65536",
            "",
            "[Install]",
            "WantedBy=settlenet.target",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    static func targetText(units: [String], topology: Topology, host: String?, nodes: Int) -> String {
        [
            "# Generated by `settlenet cluster export --format systemd`: every process of topology \(topology.name)\(host.map { " on host \($0)" } ?? "").",
            "[Unit]",
            "Description=SettleNet \(topology.name)\(host.map { " (host \($0))" } ?? ""): \(nodes) nodes in \(units.count) processes",
            "Wants=" + units.joined(separator: " "),
            "After=network-online.target",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ].joined(separator: "\n") + "\n"
    }

    static func readmeText(topology: Topology, topologyFileName: String, topologyPath: String, packing: Packing,
                           perHost: [(host: String?, groups: [Packing.Group])], options: Options) -> String {
        let hosted = perHost.first?.host != nil
        let processes = perHost.reduce(0) { $0 + $1.groups.count }
        var lines = [
            "SettleNet \(topology.name) as systemd units",
            "",
            "Generated by `settlenet cluster export --format systemd` from \(topologyFileName): \(topology.nodes.count) nodes",
            "in \(processes) processes (packing \(packing)). Each unit runs one process:",
            "  \(options.executable) node --topology \(topologyPath) --data-dir \(options.dataDirectory) --id ...",
            "and counts as started once its nodes have signed in to their parents (ExecStartPost runs",
            "`settlenet cluster ready --wait 60`). The units of child nodes are ordered After= their",
            "parents' units, and settlenet.target wants them all.",
            "",
        ]
        if hosted {
            lines += [
                "The topology places its nodes on named hosts: each directory holds one machine's units.",
                "On each machine, install only its own directory:",
            ]
            for (host, groups) in perHost {
                let name = host ?? "default"
                let address = " (\(topology.hosts[name] ?? topology.host))"
                let nodes = groups.reduce(0) { $0 + $1.nodes.count }
                lines.append("  \(name)/\(address): \(nodes) node\(nodes == 1 ? "" : "s") in \(groups.count) process\(groups.count == 1 ? "" : "es")")
            }
            lines.append("")
        }
        let directory = hosted ? "HOST/" : ""
        var steps = [
            "Install the settlenet binary at \(options.executable).",
            "Copy the topology: install -D -m 644 \(directory)\(topologyFileName) \(topologyPath)",
            "Copy the units:    cp \(directory)settlenet-*.service \(directory)settlenet.target /etc/systemd/system/",
        ]
        if !options.dataDirectory.hasPrefix("/var/lib/") {
            // Under /var/lib systemd creates it (StateDirectory=).
            steps.append("Create the data directory: mkdir -p \(options.dataDirectory)")
        }
        if topology.isSecured {
            let keys = topology.security?.keysDirectory.map { "the directory the topology names (\($0) where it was exported)" }
                ?? "\(options.dataDirectory)/keys"
            steps += [
                "The topology is secured (CURVE): make its keys once, on one machine,",
                "     settlenet keys generate --topology \(topologyFileName) --out KEYS",
                "   and install them at \(keys) on every machine: all of KEYS/public, and only the machine's own",
                "   nodes' files of KEYS/secret (mode 0600, directory 0700, owned by the user the units run as).",
            ]
        }
        steps += [
            "systemctl daemon-reload",
            "systemctl start settlenet.target         (and `systemctl enable settlenet.target` to start at boot)",
        ]
        lines.append("Install (as root\(hosted ? ", from HOST/ on the machine HOST" : "")):")
        lines += steps.enumerated().map { "  \($0 + 1). \($1)" }
        lines += [
            "",
            "Then:",
            "  systemctl list-units 'settlenet-*'          every process and its state",
            "  journalctl -u settlenet-<process>           a process's output (a packed process's nodes log",
            "                                              to \(options.dataDirectory)/logs/<id>.log)",
            "  \(options.executable) cluster ready --data-dir \(options.dataDirectory) --node <id> ...",
            "  systemctl stop settlenet.target             stops every process (SIGTERM, 15 s to drain)",
            "",
            "The ledgers stay in \(options.dataDirectory)/nodes/<id>/. Remove units of an earlier export that this one",
            "did not write before installing: two units must never run the same node.",
        ]
        if hosted {
            lines += ["", "Every machine must reach the others' addresses on the ports of their nodes (base port \(topology.basePort) + port)."]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: text helpers

    /// A YAML double-quoted scalar.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += String(format: "\\x%02X", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func flowList(_ items: [String]) -> String { "[" + items.map(quoted).joined(separator: ", ") + "]" }

    /// A ratio in basis points as the topology writes it: 5000 -> "0.5", 10000 -> "1".
    static func ratioText(_ points: Int64) -> String {
        let whole = points / 10_000
        let fraction = points % 10_000
        guard fraction != 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 4 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    /// `%` and `$` are specifiers and variables in unit files.
    static func systemdEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "$", with: "$$")
    }

    /// One word of an Exec line, quoted when it holds blanks or quotes.
    static func systemdArgument(_ text: String) -> String {
        let escaped = systemdEscaped(text)
        guard escaped.isEmpty || escaped.contains(where: { $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" || $0 == "\\" || $0 == ";" }) else {
            return escaped
        }
        return "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func isDNSLabel(_ text: String) -> Bool {
        guard (1...63).contains(text.utf8.count), let first = text.utf8.first, let last = text.utf8.last else { return false }
        func alnum(_ byte: UInt8) -> Bool { (0x61...0x7a).contains(byte) || (0x30...0x39).contains(byte) }
        return alnum(first) && alnum(last) && text.utf8.allSatisfy { alnum($0) || $0 == 0x2d }
    }

    /// A DNS subdomain (RFC 1123): dot-separated DNS labels, at most 253 characters.
    static func isDNSSubdomain(_ text: String) -> Bool {
        text.utf8.count <= 253 && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }

    /// A Kubernetes resource quantity as storage requests write it: digits, an optional fraction
    /// and an optional binary or decimal suffix (5Gi, 500Mi, 1.5G).
    static func isQuantity(_ text: String) -> Bool {
        text.range(of: #"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"#, options: .regularExpression) != nil
            && text.contains(where: { ("1"..."9").contains($0) })
    }

    /// Letters, digits, '.', '_' and '-' kept; anything else becomes '-'.
    static func fileSafe(_ text: String) -> String {
        String(text.unicodeScalars.map { scalar -> Character in
            let ok = scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "." || scalar == "_" || scalar == "-")
            return ok ? Character(scalar) : "-"
        })
    }

    /// A short fingerprint of `text` (FNV-1a, 64 bits), in hex.
    static func fnv1a(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(hash, radix: 16)
    }
}

// MARK: readiness (`cluster ready`)
