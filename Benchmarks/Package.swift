// swift-tools-version: 6.1
// Micro-benchmarks with package-benchmark, in a package of their own so that the main package's
// `swift build` and `swift test` never build the benchmark plugin. Run: `swift package benchmark`.
import PackageDescription

let package = Package(
    name: "ConcurrentFuturesBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "ConcurrentFutures", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ExecutorBenchmarks",
            dependencies: [
                .product(name: "ConcurrentFutures", package: "ConcurrentFutures"),
                .product(name: "BundledGuests", package: "ConcurrentFutures"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "ExecutorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
