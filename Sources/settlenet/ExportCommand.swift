import ArgumentParser
import ClusterControl
import Foundation
import NetworkTopology
import SettlementModel

extension ClusterCommand {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write Kubernetes manifests or systemd units that run a topology's cluster under a scheduler.",
            discussion: """
                Each process (as --pack groups the nodes, like `cluster up --pack`) becomes a StatefulSet or \
                a unit running `settlenet node --id ...`, counted as started once its nodes have signed in \
                (`settlenet cluster ready`).

                kubernetes: one file, settlenet-<topology>.yaml, with a Namespace, a ConfigMap holding the \
                topology rewritten so that every node's address is its Service (sn-<id>), one StatefulSet \
                per process (with the headless Service it names) and one Service per node. Ledgers are \
                state: each process keeps them on a PersistentVolumeClaim of its own (--volume-size, \
                --storage-class), which outlives the pod. --volumes emptydir puts them in an emptyDir \
                instead, gone with the pod: for throwaway runs. The manifests pass kubernetes-validate \
                --strict for Kubernetes \(ManifestExport.validatedKubernetesVersion) (the tests check).
                  settlenet cluster export --topology Topologies/minimal.yaml --format kubernetes --out deploy/k8s
                  kubectl apply --server-side -f deploy/k8s/settlenet-minimal.yaml

                systemd: one unit per process (ordered after its parents' units), settlenet.target over \
                them, the topology file and a README.txt with the install steps. A topology with named \
                hosts gets a directory per host: each machine installs only its own. The units pass \
                `systemd-analyze verify` (the tests check).
                  settlenet cluster export --topology Topologies/minimal.yaml --format systemd --pack none --out deploy/systemd
                """
        )
        @Option(help: "The topology file.") var topology: String
        @Option(help: ArgumentHelp("kubernetes or systemd.", valueName: "format")) var format: String
        @Option(help: ArgumentHelp("How to pack nodes into processes: \(Packing.help).", valueName: "mode")) var pack: String = "province-tier"
        @Option(help: "The directory to write the files to (created if missing).") var out: String
        @Option(help: "The container image, with settlenet on its PATH (kubernetes).") var image: String = ManifestExport.Options().image
        @Option(help: "The Kubernetes namespace.") var namespace: String = ManifestExport.Options().namespace
        @Option(help: ArgumentHelp("Where each process keeps its ledgers: persistent (a PersistentVolumeClaim per process) or emptydir (gone with the pod; kubernetes).", valueName: "kind")) var volumes: String = ManifestExport.Volumes.persistent.rawValue
        @Option(help: ArgumentHelp("The size of each process's PersistentVolumeClaim, a Kubernetes quantity (kubernetes).", valueName: "quantity")) var volumeSize: String = ManifestExport.Options().volumeSize
        @Option(help: "The StorageClass of the claims (kubernetes; default: the cluster's default class).") var storageClass: String?
        @Option(help: "The settlenet binary on the target machines (systemd).") var executable: String = ManifestExport.Options().executable
        @Option(help: "The data directory on the target machines (systemd; pods use /data).") var dataDirPath: String = ManifestExport.Options().dataDirectory
        @Option(help: "Where the topology file is installed on the target machines (systemd; default /etc/settlenet/<file name>).") var topologyPath: String?

        func validate() throws {
            guard ManifestExport.Format(rawValue: format) != nil else {
                throw ValidationError("--format \(format): expected \(ManifestExport.Format.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            guard Packing(pack) != nil else { throw ValidationError("--pack \(pack): expected \(Packing.help)") }
            guard ManifestExport.Volumes(rawValue: volumes) != nil else {
                throw ValidationError("--volumes \(volumes): expected \(ManifestExport.Volumes.allCases.map(\.rawValue).joined(separator: " or "))")
            }
        }

        func run() throws {
            let loaded: Topology
            do { loaded = try TopologyLoader.load(path: topology) } catch {
                throw SettleNetError(.command, "topology problems:\n\(error)")
            }
            guard let text = try? String(contentsOfFile: topology, encoding: .utf8) else {
                throw SettleNetError(.command, "cannot read \(topology)")
            }
            let format = ManifestExport.Format(rawValue: format)!
            let packing = Packing(pack)!
            var options = ManifestExport.Options()
            options.image = image
            options.namespace = namespace
            options.executable = executable
            options.dataDirectory = dataDirPath
            options.topologyPath = topologyPath
            options.volumes = ManifestExport.Volumes(rawValue: volumes)!
            options.volumeSize = volumeSize
            options.storageClass = storageClass
            let fileName = URL(fileURLWithPath: topology).lastPathComponent
            let files: [ManifestExport.File]
            do {
                files = try ManifestExport.files(topology: loaded, topologyFileName: fileName, topologyText: text,
                                                 packing: packing, format: format, options: options)
            } catch {
                throw SettleNetError(.command, "cannot export \(topology): \(error)")
            }

            let fm = FileManager.default
            let root = URL(fileURLWithPath: out)
            for file in files {
                let url = root.appendingPathComponent(file.path)
                do {
                    try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try Data(file.contents.utf8).write(to: url, options: .atomic)
                } catch {
                    throw SettleNetError(.command, "cannot write \(url.path): \(error.localizedDescription)")
                }
            }

            switch format {
            case .kubernetes:
                let processes = packing.groups(of: loaded.nodes, in: loaded).count
                print("wrote \(files.count) file to \(out): \(files.map(\.path).joined(separator: ", ")) with \(processes) StatefulSets (one per process, packing \(packing); ledgers on \(options.volumes == .persistent ? "a \(volumeSize) PersistentVolumeClaim each" : "emptyDir volumes, gone with their pods")) and \(loaded.nodes.count) Services, namespace \(namespace)")
                print("apply with: kubectl apply --server-side -f \(root.appendingPathComponent(files[0].path).path)")
            case .systemd:
                let units = files.filter { $0.path.hasSuffix(".service") }
                let directories = Set(files.map { ($0.path as NSString).deletingLastPathComponent }.filter { !$0.isEmpty }).sorted()
                print("wrote \(files.count) files to \(out): \(units.count) units, one per process (packing \(packing)), covering \(loaded.nodes.count) nodes, \(directories.isEmpty ? "settlenet.target" : "a settlenet.target per host (\(directories.joined(separator: ", ")))"), the topology and README.txt")
                print("install steps: \(root.appendingPathComponent("README.txt").path)")
            }
            // Files an earlier export left behind would be installed too.
            let written = Set(files.map { root.appendingPathComponent($0.path).standardizedFileURL.path })
            var stale: [String] = []
            if let walker = fm.enumerator(atPath: out) {
                for case let relative as String in walker {
                    let name = (relative as NSString).lastPathComponent
                    let generated = name.hasPrefix("settlenet") && (name.hasSuffix(".service") || name.hasSuffix(".target") || name.hasSuffix(".yaml"))
                    if generated && !written.contains(root.appendingPathComponent(relative).standardizedFileURL.path) { stale.append(relative) }
                }
            }
            if !stale.isEmpty {
                print("note: \(out) also holds files this export did not write (from an earlier one?): \(stale.sorted().prefix(10).joined(separator: ", "))\(stale.count > 10 ? " and \(stale.count - 10) more" : ""); remove them before installing")
            }
        }
    }

    struct Ready: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 when the named nodes run and have signed in (for readiness probes and systemd units).",
            discussion: """
                A node is ready when DIR/nodes/<id>/status.json says it signed in to its parent and holds the \
                catalog, and the process that wrote it is alive. Exit code 0 when every named node is \
                ready, 1 otherwise (naming the nodes that are not). --wait polls every 200 ms for up to \
                that many seconds.
                  settlenet cluster ready --data-dir /var/lib/settlenet --node 370200 --node 370211 --wait 60
                """
        )
        @OptionGroup var data: DataDirOption
        @Option(name: .customLong("node"), help: "A node to check, e.g. 370211; repeat for several.") var nodes: [String]
        @Option(help: "Seconds to wait for the nodes to become ready (0: check once).") var wait: Double = 0

        func validate() throws {
            guard !nodes.isEmpty else { throw ValidationError("name at least one node with --node, e.g. --node 370211") }
            for text in nodes where DivisionCode(text) == nil {
                throw ValidationError("--node must be a 6-digit division code such as 370211, not \"\(text)\"")
            }
            guard wait >= 0 else { throw ValidationError("--wait must not be negative") }
        }

        func run() throws {
            let missing = Cluster(dataDirectory: data.dataDir).waitUntilReady(nodes: nodes, timeoutSeconds: wait)
            guard missing.isEmpty else {
                let listed = missing.prefix(20).map { "\($0.id) (\($0.reason))" }.joined(separator: ", ")
                throw SettleNetError(.command, "not ready: \(listed)\(missing.count > 20 ? " and \(missing.count - 20) more" : "")\(wait > 0 ? " after \(wait) s" : "")")
            }
            print("ready: \(nodes.count) node\(nodes.count == 1 ? "" : "s") signed in")
        }
    }
}
