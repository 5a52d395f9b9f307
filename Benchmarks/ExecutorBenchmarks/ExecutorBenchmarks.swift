import Benchmark
import BundledGuests
import ConcurrentFutures

/// Per-operation costs behind `futures bench`: a submit-and-wait round trip on each executor, a
/// `map` of 1,000 items, an interpreter call, and creating an interpreter. Executors are created
/// and shut down outside the measured part of each run.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 100_000)

    let double = try! BundledGuests.tasks.function("double", returning: Int.self)

    Benchmark("thread: submit + result") { benchmark in
        try measure(benchmark, on: ThreadPoolExecutor(maxWorkers: 4)) { pool in
            for index in benchmark.scaledIterations { blackHole(try pool.submit { index * 2 }.result()) }
        }
    }

    Benchmark("interpreter: submit + result") { benchmark in
        try measure(benchmark, on: InterpreterPoolExecutor(maxWorkers: 4, modules: [BundledGuests.tasks])) { pool in
            for index in benchmark.scaledIterations { blackHole(try pool.submit(double, index).result()) }
        }
    }

    Benchmark("thread: map 1,000 closures") { benchmark in
        try measure(benchmark, on: ThreadPoolExecutor(maxWorkers: 4)) { pool in
            for _ in benchmark.scaledIterations { blackHole(try pool.map(0..<1_000) { $0 * 2 }.collect()) }
        }
    }

    Benchmark("interpreter: map 1,000 guest calls") { benchmark in
        try measure(benchmark, on: InterpreterPoolExecutor(maxWorkers: 4, modules: [BundledGuests.tasks])) { pool in
            for _ in benchmark.scaledIterations { blackHole(try pool.map(double, 0..<1_000).collect()) }
        }
    }

    Benchmark("Interpreter.call") { benchmark in
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(BundledGuests.tasks)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations { blackHole(try interpreter.call(double, index)) }
        benchmark.stopMeasurement()
    }

    Benchmark("create an interpreter with Tasks.wasm") { benchmark in
        for _ in benchmark.scaledIterations {
            let interpreter = Interpreters.create()
            try interpreter.exec(BundledGuests.tasks)
            try interpreter.close()
        }
    }
}

/// Runs `body` on `executor` as the measured part of a benchmark run, then shuts it down.
func measure<E: PoolExecutor>(_ benchmark: Benchmark, on executor: E, _ body: (E) throws -> Void) throws {
    defer { executor.shutdown() }
    benchmark.startMeasurement()
    try body(executor)
    benchmark.stopMeasurement()
}
