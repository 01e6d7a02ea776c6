// swift-tools-version:6.1
import Foundation
import PackageDescription

// Dependencies point inward: SettlementModel knows nothing, SettlementCore knows the model,
// NodeRuntime and ClusterControl are the I/O shells. Only ZeroMQ imports CZeroMQ and CSodium, only
// Persistence imports GRDB (tests may read ledgers directly), only NetworkTopology imports Yams.
let package = Package(
    name: "SettleNet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "settlenet", targets: ["settlenet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Live metrics (issue 20): the Prometheus registry and text format, and a small HTTP
        // server to serve them (and client to scrape them) with no dependencies of its own.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // libsodium, which libzmq links already: CURVE on the native transport.
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ", "CSodium"]),
        .target(
            name: "SettlementModel",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(name: "SettlementCore", dependencies: ["SettlementModel"]),
        // In-memory stores with the ledger's rules: the desks' rules tested without SQLite or processes.
        .target(name: "SettlementTestKit", dependencies: ["SettlementCore", "SettlementModel"]),
        .target(
            name: "NetworkTopology",
            dependencies: ["SettlementModel", .product(name: "Yams", package: "Yams")]
        ),
        // SQLite 3.54.1's amalgamation (public domain), built with the options sqlite.org
        // recommends and linked in place of Debian's 3.40 (which leaves out the lookaside
        // allocator): GRDB's calls bind to it. A claim of an upload record took 25-30 % less
        // CPU in C; uploads went up about 10 %. It adds 35-40 s to a first build.
        .target(
            name: "CSQLite",
            cSettings: [
                .define("SQLITE_DEFAULT_MEMSTATUS", to: "0"), .define("SQLITE_THREADSAFE", to: "2"), .define("SQLITE_DQS", to: "0"),
                .define("SQLITE_LIKE_DOESNT_MATCH_BLOBS"), .define("SQLITE_MAX_EXPR_DEPTH", to: "0"), .define("SQLITE_OMIT_DEPRECATED"),
                .define("SQLITE_OMIT_SHARED_CACHE"), .define("SQLITE_USE_ALLOCA"), .define("SQLITE_ENABLE_COLUMN_METADATA"),
                // file: URIs, as GRDB's in-memory databases use, and a simulated ledger names its VFS with.
                .define("SQLITE_USE_URI", to: "1"),
                .unsafeFlags(["-O2", "-w"]),
            ]
        ),
        .target(
            name: "Persistence",
            dependencies: ["CSQLite", "SettlementModel", "SettlementCore", .product(name: "GRDB", package: "GRDB.swift"),
                           // SQLite's own C interface, for binding the hot inserts without boxing (no extra build).
                           .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        // CURVE keys, who may connect to whom (ZAP), and hospitals' credentials.
        .target(
            name: "LinkSecurity",
            dependencies: ["ZeroMQ", "SettlementModel", "NetworkTopology", .product(name: "Logging", package: "swift-log")]
        ),
        // Live metrics: each node's instruments, their HTTP endpoint in the Prometheus text format,
        // and reading them back (`cluster metrics`).
        .target(
            name: "Telemetry",
            dependencies: ["SettlementModel", .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "FlyingFox", package: "FlyingFox")]
        ),
        .target(
            name: "NodeRuntime",
            dependencies: [
                "ZeroMQ", "SettlementModel", "SettlementCore", "NetworkTopology", "Persistence", "LinkSecurity", "Telemetry",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ClusterControl",
            dependencies: ["NetworkTopology", "SettlementModel", "SettlementCore", "ZeroMQ", "LinkSecurity",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Reconciliation",
            dependencies: ["SettlementModel", "SettlementCore", "NetworkTopology", "Persistence"]
        ),
        .target(
            name: "Scenario",
            dependencies: ["SettlementModel", "SettlementCore", "NetworkTopology", "ClusterControl", "ZeroMQ", "Persistence",
                           "Reconciliation", "LinkSecurity",
                           .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        // The benchmark (`settlenet bench`): the transport baseline and the network's figures.
        .target(
            name: "Simulation",
            dependencies: ["NodeRuntime", "Scenario", "Reconciliation", "Persistence", "NetworkTopology", "SettlementCore",
                           "SettlementModel", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Bench",
            dependencies: ["ZeroMQ", "SettlementModel", "SettlementCore", "NetworkTopology", "ClusterControl", "Scenario", "LinkSecurity",
                           "Persistence", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .executableTarget(
            name: "settlenet",
            dependencies: [
                "NodeRuntime", "Bench", "ClusterControl", "NetworkTopology", "SettlementModel", "SettlementCore", "Scenario", "Persistence",
                "Reconciliation", "LinkSecurity", "Simulation", "Telemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "CSodium"]),
        .testTarget(name: "LinkSecurityTests", dependencies: ["LinkSecurity", "NetworkTopology", "SettlementModel", "ZeroMQ"]),
        .testTarget(name: "ReconciliationTests",
                    dependencies: ["Reconciliation", "Persistence", "NetworkTopology", "SettlementCore", "SettlementModel"]),
        .testTarget(name: "ScenarioTests", dependencies: ["Scenario", "NetworkTopology", "SettlementModel", "SettlementCore"]),
        .testTarget(name: "SettlementCoreTests", dependencies: ["SettlementCore", "SettlementModel", "SettlementTestKit"]),
        .testTarget(name: "NetworkTopologyTests", dependencies: ["NetworkTopology", "SettlementCore", "SettlementModel"]),
        .testTarget(name: "PersistenceTests", dependencies: ["Persistence", "SettlementCore", "SettlementModel",
                                                         .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZeroMQ", "SettlementModel", "SettlementCore", "NetworkTopology", "ClusterControl", "Persistence", "Scenario",
                           "Reconciliation", "Bench", "LinkSecurity", "NodeRuntime", "SettlementTestKit", "Simulation", "Telemetry", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Yams", package: "Yams")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds skip the run-time exclusivity checks on our own code: the node's shell keeps its
// state in a class, and checking each access to it was 6 % of a relay's reactor thread. Debug
// builds, which the tests run, keep them (a violation there fails loudly). They also optimize
// across our modules; Scripts/setup.sh asks the same of the dependencies (`-Xswiftc`).
for target in package.targets where target.type == .regular || target.type == .executable {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]
}

// Micro-benchmarks of the hot paths (ordo-one's benchmark package): only when asked for, so
// that a plain build and CI do not fetch and compile the benchmark tooling.
//   SETTLENET_BENCHMARKS=1 swift package benchmark --target HotPaths
if ProcessInfo.processInfo.environment["SETTLENET_BENCHMARKS"] != nil {
    package.dependencies.append(.package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]))
    package.targets.append(.executableTarget(
        name: "HotPaths",
        dependencies: ["SettlementModel", "SettlementCore", "Persistence", .product(name: "Benchmark", package: "benchmark")],
        path: "Benchmarks/HotPaths",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ))
}

// Fuzz targets (libFuzzer, Swift's -sanitize=fuzzer): only when asked for, built apart.
//   Scripts/fuzz.sh [--seconds N] [frames|topology|scenario|desk ...]
if ProcessInfo.processInfo.environment["SETTLENET_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [String])] = [
        ("FuzzFrames", ["SettlementModel", "SettlementCore"]),
        ("FuzzTopology", ["NetworkTopology", "SettlementCore", "SettlementModel"]),
        ("FuzzScenario", ["NetworkTopology", "SettlementCore", "SettlementModel"]),
        ("FuzzDesk", ["SettlementCore", "SettlementModel", "SettlementTestKit"]),
    ]
    // What every fuzz executable shares: its main (handing libFuzzer the target) and `check`.
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    for target in fuzzTargets {
        package.targets.append(.executableTarget(
            name: target.name,
            dependencies: (target.dependencies + ["FuzzSupport"]).map { .target(name: $0) },
            path: "Fuzz/\(target.name)",
            // Its own main hands libFuzzer the target (LLVMFuzzerRunDriver): an executable
            // target must have one, so libFuzzer's is left out (-sanitize=fuzzer-no-link
            // instruments; the driver comes from the runtime without a main).
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
        ))
    }
}
