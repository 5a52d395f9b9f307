import Benchmark
import BundledGuests
import ConcurrentFutures

/// Per-operation costs behind `futures bench`: a submit-and-wait round trip on each executor, a
/// `map` of 1,000 items, an interpreter call, and creating an interpreter.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 100_000)

    let double = try! BundledGuests.tasks.function("double", returning: Int.self)

    Benchmark("thread: submit + result") { benchmark, pool in
        for index in benchmark.scaledIterations { blackHole(try pool.submit { index * 2 }.result()) }
    } setup: {
        try ThreadPoolExecutor(maxWorkers: 4)
    } teardown: { pool in
        pool.shutdown()
    }

    Benchmark("interpreter: submit + result") { benchmark, pool in
        for index in benchmark.scaledIterations { blackHole(try pool.submit(double, index).result()) }
    } setup: {
        try InterpreterPoolExecutor(maxWorkers: 4, modules: [BundledGuests.tasks])
    } teardown: { pool in
        pool.shutdown()
    }

    Benchmark("thread: map 1,000 closures", configuration: .init(scalingFactor: .kilo)) { benchmark, pool in
        for _ in benchmark.scaledIterations {
            blackHole(try pool.map(0..<1_000) { $0 * 2 }.collect())
        }
    } setup: {
        try ThreadPoolExecutor(maxWorkers: 4)
    } teardown: { pool in
        pool.shutdown()
    }

    Benchmark("interpreter: map 1,000 guest calls") { benchmark, pool in
        for _ in benchmark.scaledIterations { blackHole(try pool.map(double, 0..<1_000).collect()) }
    } setup: {
        try InterpreterPoolExecutor(maxWorkers: 4, modules: [BundledGuests.tasks])
    } teardown: { pool in
        pool.shutdown()
    }

    Benchmark("Interpreter.call") { benchmark, interpreter in
        for index in benchmark.scaledIterations { blackHole(try interpreter.call(double, index)) }
    } setup: {
        let interpreter = Interpreters.create()
        try interpreter.exec(BundledGuests.tasks)
        return interpreter
    } teardown: { interpreter in
        try interpreter.close()
    }

    Benchmark("create an interpreter with Tasks.wasm") { benchmark in
        for _ in benchmark.scaledIterations {
            let interpreter = Interpreters.create()
            try interpreter.exec(BundledGuests.tasks)
            try interpreter.close()
        }
    }
}
