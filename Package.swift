// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// Linux only: the C shim and the process pool rely on Linux (`prctl(PR_SET_PDEATHSIG)`,
// `sched_getaffinity`, `posix_spawn_file_actions_addclosefrom_np`, `/proc`), so no Apple
// platform is declared, and `Sources/CFuturesShims` stops a build elsewhere with a clear error.
let package = Package(
    name: "ConcurrentFutures",
    products: [
        .library(name: "ConcurrentFutures", targets: ["ConcurrentFutures"]),
        .executable(name: "futures", targets: ["futures"]),
        .executable(name: "futures-worker", targets: ["futures-worker"]),
        .library(name: "BundledGuests", targets: ["BundledGuests"]),
        .library(name: "GuestBuilder", targets: ["GuestBuilder"]),
    ],
    dependencies: [
        // Pinned to 0.4.x: the interpreters use WasmKit's `@_spi(Fuzzing)` API (the store's resource
        // limiter, dropping a start function), which may change in any minor release.
        .package(url: "https://github.com/swiftwasm/WasmKit.git", .upToNextMinor(from: "0.4.2")),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        // Observability (docs/observability.md): metrics and traces through the server ecosystem's
        // APIs, no backend chosen here; executors as services of a service group.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-service-context.git", from: "1.5.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "Futures",
            dependencies: [
                "CFuturesShims",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceContextModule", package: "swift-service-context"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "WasmInterpreters",
            dependencies: [
                "Futures",
                "CFuturesShims",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WAT", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
                // WASI preview 1 for guests built for wasm32-wasi (`WASIHost`).
                .product(name: "WasmKitWASI", package: "WasmKit"),
                .product(name: "WASI", package: "WasmKit"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            // The compiled engine's runtime, which it compiles into every compiled guest.
            resources: [.embedInCode("Engines/Compiled/Runtime/wasm-rt.h"), .embedInCode("Engines/Compiled/Runtime/cf-rt.c")],
            swiftSettings: strict
        ),
        .target(name: "CFuturesShims"),
        // What the executors whose workers are other processes share, whatever carries the bytes:
        // the call batch, chunked submission, remote errors, and the typed messages of a call.
        .target(
            name: "RemoteCalls",
            dependencies: ["Futures", "WasmInterpreters", .product(name: "Tracing", package: "swift-distributed-tracing")],
            swiftSettings: strict
        ),
        .target(
            name: "ProcessPool",
            dependencies: [
                "Futures", "WasmInterpreters", "RemoteCalls", "CFuturesShims",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // The MPI executor. MPI is loaded at run time (dlopen, in CFuturesShims): this module builds
        // and links on a machine without MPI, and throws `MPIError.unavailable` there.
        .target(
            name: "MPIPool",
            dependencies: [
                "Futures", "WasmInterpreters", "RemoteCalls", "CFuturesShims",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // Executors as services of swift-service-lifecycle: graceful shutdown drains them.
        .target(
            name: "FuturesLifecycle",
            dependencies: ["Futures", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        .target(
            name: "ConcurrentFutures",
            dependencies: ["Futures", "WasmInterpreters", "RemoteCalls", "ProcessPool", "MPIPool", "FuturesLifecycle"],
            swiftSettings: strict
        ),
        .target(
            name: "GuestBuilder",
            dependencies: ["Futures", .product(name: "Subprocess", package: "swift-subprocess")],
            // The guest runtime that `futures build-guest` links into guests, as bytes in the code.
            resources: [
                .embedInCode("Runtime/rt.c"), .embedInCode("Runtime/cf.h"), .embedInCode("Runtime/EmbeddedGuestRuntime.swift"),
                .embedInCode("Runtime/wasi-shim.c"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BundledGuests",
            dependencies: ["WasmInterpreters"],
            // The modules `Scripts/generate-guests.sh` builds from `Guests/`, as bytes in the code.
            resources: [
                .embedInCode("Modules/Tasks.wasm"), .embedInCode("Modules/Examples.wasm"), .embedInCode("Modules/faults.wasm"),
                // The WASI guests (built with wasi-libc, committed so that nothing needs it to build).
                .embedInCode("Modules/TasksWASI.wasm"), .embedInCode("Modules/probe.wasm"), .embedInCode("Modules/wordstat.wasm"),
                .embedInCode("Modules/wordstat-reactor.wasm"),
                // The plugins of docs/guests.md's worked example (they import the host functions it defines).
                .embedInCode("Modules/plugin-c.wasm"), .embedInCode("Modules/plugin-swift.wasm"),
            ],
            swiftSettings: strict
        ),
        .target(name: "BenchJobs", dependencies: ["Futures"], swiftSettings: strict),
        .executableTarget(
            name: "futures-worker",
            dependencies: ["BenchJobs", "ProcessPool"],
            swiftSettings: strict,
            // Linked with the Swift runtime inside: a worker process starts without loading the
            // runtime's shared libraries (about 2 ms less per worker, half of a process pool's
            // start-up). An unsafe flag, which SwiftPM refuses in the targets a dependent package
            // builds: this is the `futures` tool's private worker program, and nothing a package
            // depending on the ConcurrentFutures library builds depends on it.
            linkerSettings: [.unsafeFlags(["-static-stdlib"], .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "futures",
            dependencies: [
                "CFuturesShims",
                "ConcurrentFutures",
                "BenchJobs",
                "futures-worker",
                "GuestBuilder",
                "BundledGuests",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "InterpreterSubmit",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/InterpreterSubmit",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "InterpreterMap",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/InterpreterMap",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "Benchmark",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/Benchmark",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "BenchmarkStartup",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/BenchmarkStartup",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "BenchmarkTransfer",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/BenchmarkTransfer",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PickleCheck",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/PickleCheck",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "QueueWorkers",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/QueueWorkers",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "PythonPool",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/PythonPool",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "Plugins",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/Plugins",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "MissingImports",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/MissingImports",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "FourExecutors",
            dependencies: ["ConcurrentFutures", "BundledGuests"],
            path: "Examples/FourExecutors",
            swiftSettings: strict
        ),
        .target(name: "TestSupport", dependencies: ["ConcurrentFutures"], path: "Tests/TestSupport", swiftSettings: strict),
        .target(name: "TestJobs", dependencies: ["ConcurrentFutures", "CFuturesShims"], path: "Tests/TestJobs", swiftSettings: strict),
        .executableTarget(
            name: "FuturesTestWorker",
            dependencies: ["ConcurrentFutures", "TestJobs", "BundledGuests"],
            path: "Tests/FuturesTestWorker",
            swiftSettings: strict
        ),
        .testTarget(
            name: "FuturesCLITests",
            // Plugins: the worked plugin example, run by PluginExampleTests.
            dependencies: ["futures", "Plugins", "TestSupport", .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ProcessPoolTests",
            dependencies: [
                "ConcurrentFutures", "TestSupport", "TestJobs", "BundledGuests", "FuturesTestWorker",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RemoteCallsTests",
            dependencies: ["ConcurrentFutures", .product(name: "InMemoryTracing", package: "swift-distributed-tracing")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FuturesTests",
            dependencies: [
                "ConcurrentFutures", "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WasmInterpretersTests",
            dependencies: [
                "ConcurrentFutures", "TestSupport", "BundledGuests", "GuestBuilder",
                // WasmKit's name-section parser, the reference of the load-time check's fuzz test.
                .product(name: "WasmParser", package: "WasmKit"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
    ]
)
