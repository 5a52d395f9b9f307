// swift-tools-version: 6.2
import PackageDescription

// An HTTP service that runs posted WebAssembly guests on an InterpreterPoolExecutor, with
// per-request limits, Prometheus metrics, traces, and a drain on SIGTERM. A package of its own,
// so that the root package's `swift build` and `swift test` do not build Hummingbird and SwiftNIO;
// CI builds and tests it with `swift test --package-path Examples/PluginService`.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// The root package, by path: SwiftPM names a package found by path after its folder, which is
// `ConcurrentFutures` in a clone but may be anything (a worktree, CI's checkout).
let root = String(Context.packageDirectory.split(separator: "/").dropLast(2).last ?? "ConcurrentFutures")

let package = Package(
    name: "PluginService",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "PluginServiceCore",
            dependencies: [
                .product(name: "ConcurrentFutures", package: root),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "PluginService", dependencies: ["PluginServiceCore"], swiftSettings: strict),
        .testTarget(name: "PluginServiceTests", dependencies: ["PluginService"], swiftSettings: strict),
    ]
)
