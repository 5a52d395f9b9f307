// The article's benchmark_startup.py: the time from creating an executor to the end of one no-op
// task per worker (4 workers): the cost of starting workers.
//
//     $ swift run -c release BenchmarkStartup
//     ThreadPoolExecutor            : 0.0003 s
//     ProcessPoolExecutor           : 0.0193 s
//     InterpreterPoolExecutor       : 0.0005 s

import BundledGuests
import ConcurrentFutures
import Foundation

ProcessWorker.runIfRequested()

let noop = try BundledGuests.tasks.function("noop", returning: ShareableValue.self)

func runBenchmark<E: PoolExecutor>(_ name: String, workers: Int = 4, _ make: () throws -> E) throws {
    let start = ContinuousClock.now
    try make().run { executor in
        let futures = try (0..<workers).map { _ in try executor.submit(noop) }
        for future in futures { _ = try future.result() }
    }
    let elapsed = ContinuousClock.now - start
    print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: ": %.4f s", elapsed / .seconds(1)))
}

try runBenchmark("ThreadPoolExecutor") { try ThreadPoolExecutor(maxWorkers: 4) }
try runBenchmark("ProcessPoolExecutor") { try ProcessPoolExecutor(maxWorkers: 4) }
try runBenchmark("InterpreterPoolExecutor") { try InterpreterPoolExecutor(maxWorkers: 4) }
