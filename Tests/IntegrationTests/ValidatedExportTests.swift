import ClusterControl
import Foundation
import NetworkTopology
import Testing

/// `cluster export` checked by the tools operators' own pipelines use, offline: the Kubernetes
/// manifests by kubernetes-validate in strict mode (unknown fields rejected) against a named
/// Kubernetes version, the systemd units by `systemd-analyze verify`. Scripts/test.sh installs
/// kubernetes-validate with pip and systemd with apt when missing.
@Suite struct ValidatedExportTests {
    struct KubernetesCase: CustomTestStringConvertible, Sendable {
        var name: String
        var topology: String
        var arguments: [String]
        var testDescription: String { name }
    }

    static let kubernetesCases = [
        KubernetesCase(name: "minimal, persistent volumes", topology: "Topologies/minimal.yaml", arguments: []),
        KubernetesCase(name: "minimal, a process per node, a storage class",
                       topology: "Topologies/minimal.yaml", arguments: ["--pack", "none", "--storage-class", "fast-ssd", "--volume-size", "500Mi"]),
        KubernetesCase(name: "secured, emptyDir", topology: "Topologies/minimal-secure.yaml", arguments: ["--volumes", "emptydir"]),
    ]

    @Test(arguments: kubernetesCases)
    func kubernetesManifestsPassStrictValidation(_ check: KubernetesCase) throws {
        let directory = temporaryDirectory("k8s")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try settlenet(["cluster", "export", "--topology", check.topology, "--format", "kubernetes", "--out", directory] + check.arguments)
        try #require(export.status == 0, "\(export.output)\(export.error)")
        let manifests = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }
        try #require(manifests.count == 1)
        let validation = try kubernetesValidate("\(directory)/\(manifests[0])")
        #expect(validation.status == 0, "kubernetes-validate --strict found:\n\(validation.output)\(validation.error)")
        // Every document was checked, the StatefulSets among them.
        #expect(validation.output.contains("passed for resource statefulset/"), "\(validation.output)")
        #expect(!validation.output.contains("did not validate") && !validation.output.contains("WARN"), "\(validation.output)")
    }

    /// The check can fail: strict mode rejects a field Kubernetes does not know.
    @Test func strictValidationRejectsAnUnknownField() throws {
        let directory = temporaryDirectory("k8s-bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let export = try settlenet(["cluster", "export", "--topology", "Topologies/minimal.yaml", "--format", "kubernetes", "--out", directory])
        try #require(export.status == 0, "\(export.output)\(export.error)")
        let path = "\(directory)/settlenet-minimal.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "  replicas: 1\n", with: "  replicas: 1\n  replicaCount: 1\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let validation = try kubernetesValidate(path)
        #expect(validation.status != 0)
        #expect((validation.output + validation.error).contains("replicaCount"))
    }

    @Test(arguments: [["--pack", "province-tier"], ["--pack", "none"]])
    func systemdUnitsPassVerify(_ arguments: [String]) throws {
        let directory = temporaryDirectory("units")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // verify checks that ExecStart's binary exists and is executable: point it at the one built.
        let executable = URL(fileURLWithPath: settlenetBinary).standardizedFileURL.path
        let export = try settlenet(["cluster", "export", "--topology", "Topologies/minimal.yaml", "--format", "systemd",
                                    "--out", directory, "--executable", executable,
                                    "--topology-path", "\(directory)/minimal.yaml"] + arguments)
        try #require(export.status == 0, "\(export.output)\(export.error)")
        let verified = try systemdVerify(directory: directory)
        #expect(verified.units > 1)
        #expect(verified.result.status == 0 && verified.result.error.isEmpty,
                "systemd-analyze verify found:\n\(verified.result.output)\(verified.result.error)")
    }

    /// A topology on named hosts: each host's directory verifies on its own, as each machine installs it.
    @Test func systemdUnitsOfEveryHostPassVerify() throws {
        let directory = temporaryDirectory("hosts")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let topology = "\(directory)/two.yaml"
        let generate = try settlenet(["topology", "generate", "--name", "two", "--provinces", "37", "--counterparts", "41",
                                      "--hosts", "east=10.77.0.1,west=10.77.0.2", "--out", topology])
        try #require(generate.status == 0, "\(generate.output)\(generate.error)")
        let executable = URL(fileURLWithPath: settlenetBinary).standardizedFileURL.path
        let export = try settlenet(["cluster", "export", "--topology", topology, "--format", "systemd", "--out", "\(directory)/units",
                                    "--executable", executable, "--topology-path", topology])
        try #require(export.status == 0, "\(export.output)\(export.error)")
        for host in ["east", "west"] {
            let verified = try systemdVerify(directory: "\(directory)/units/\(host)")
            #expect(verified.units > 1, "\(host)")
            #expect(verified.result.status == 0 && verified.result.error.isEmpty,
                    "\(host): systemd-analyze verify found:\n\(verified.result.output)\(verified.result.error)")
        }
    }

    /// The check can fail: verify reports a key systemd does not know.
    @Test func verifyReportsAnUnknownKey() throws {
        let directory = temporaryDirectory("units-bad")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = URL(fileURLWithPath: settlenetBinary).standardizedFileURL.path
        let export = try settlenet(["cluster", "export", "--topology", "Topologies/minimal.yaml", "--format", "systemd", "--pack", "none",
                                    "--out", directory, "--executable", executable, "--topology-path", "\(directory)/minimal.yaml"])
        try #require(export.status == 0, "\(export.output)\(export.error)")
        let unit = "\(directory)/settlenet-370211.service"
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        try text.replacingOccurrences(of: "RestartSec=2\n", with: "RestartSec=2\nRestartDelay=2\n").write(toFile: unit, atomically: true, encoding: .utf8)
        let verified = try systemdVerify(directory: directory)
        #expect(verified.result.error.contains("RestartDelay"), "\(verified.result.error)")
    }

    // MARK: helpers

    private func temporaryDirectory(_ label: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("settlenet-\(label)-\(UUID().uuidString)").path
    }

    private func kubernetesValidate(_ path: String) throws -> CommandResult {
        let installed = try runProgram("/usr/bin/env", ["python3", "-c", "import kubernetes_validate"])
        try #require(installed.status == 0, "kubernetes-validate is not installed: Scripts/test.sh installs it (pip install kubernetes-validate)")
        return try runProgram("/usr/bin/env", ["python3", "-m", "kubernetes_validate", "--strict",
                                               "--kubernetes-version", ManifestExport.validatedKubernetesVersion, path])
    }

    /// `systemd-analyze verify` over every unit and the target in `directory`.
    private func systemdVerify(directory: String) throws -> (units: Int, result: CommandResult) {
        let tool = try #require(onPath("systemd-analyze"), "systemd-analyze is not installed: Scripts/test.sh installs it (apt install systemd)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".service") || $0.hasSuffix(".target") }.sorted().map { "\(directory)/\($0)" }
        return (files.count, try runProgram(tool, ["verify", "--man=no"] + files))
    }

    private func onPath(_ name: String) -> String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
