// swift-tools-version:6.0
import PackageDescription

// Dependencies point inward: SettlementModel knows nothing, SettlementCore knows the model,
// NodeRuntime and ClusterControl are the I/O shells. Only ZeroMQ imports CZeroMQ, only
// Persistence imports GRDB, only NetworkTopology imports Yams.
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
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        .target(
            name: "SettlementModel",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(name: "SettlementCore", dependencies: ["SettlementModel"]),
        .target(
            name: "NetworkTopology",
            dependencies: ["SettlementModel", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Persistence",
            dependencies: ["SettlementModel", "SettlementCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "NodeRuntime",
            dependencies: [
                "ZeroMQ", "SettlementModel", "SettlementCore", "NetworkTopology", "Persistence",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ClusterControl",
            dependencies: ["NetworkTopology", "SettlementModel", "SettlementCore", "ZeroMQ",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Reconciliation",
            dependencies: ["SettlementModel", "SettlementCore", "NetworkTopology", "Persistence"]
        ),
        .target(
            name: "Scenario",
            dependencies: ["SettlementModel", "SettlementCore", "NetworkTopology", "ClusterControl", "ZeroMQ", "Persistence",
                           "Reconciliation",
                           .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .executableTarget(
            name: "settlenet",
            dependencies: [
                "NodeRuntime", "ClusterControl", "NetworkTopology", "SettlementModel", "SettlementCore", "Scenario", "Persistence",
                "Reconciliation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "ReconciliationTests",
                    dependencies: ["Reconciliation", "Persistence", "NetworkTopology", "SettlementCore", "SettlementModel"]),
        .testTarget(name: "ScenarioTests", dependencies: ["Scenario", "NetworkTopology", "SettlementModel", "SettlementCore"]),
        .testTarget(name: "SettlementCoreTests", dependencies: ["SettlementCore", "SettlementModel"]),
        .testTarget(name: "NetworkTopologyTests", dependencies: ["NetworkTopology", "SettlementCore", "SettlementModel"]),
        .testTarget(name: "PersistenceTests", dependencies: ["Persistence", "SettlementCore", "SettlementModel"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZeroMQ", "SettlementModel", "SettlementCore", "NetworkTopology", "ClusterControl", "Persistence", "Scenario",
                           "Reconciliation", .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
