// The article's benchmark.py: 8 tasks of cpu_bound(5_000_000) on 4 workers, on each executor.
// The function is the same WebAssembly guest on all three; only the executor type changes.
//
//     $ swift run -c release Benchmark
//     ThreadPoolExecutor            : 0.346 s    (one shared interpreter: the tasks take turns)
//     ProcessPoolExecutor           : 0.233 s
//     InterpreterPoolExecutor       : 0.196 s
// (2-core AMD EPYC VM; see the README for `futures bench`, which measures this properly.)

import BundledGuests
import ConcurrentFutures
import Foundation

// Worker processes of the ProcessPoolExecutor run this same program: this line serves them.
ProcessWorker.runIfRequested()

let cpuBound = try BundledGuests.tasks.function("cpu_bound", returning: Int.self)

func runBenchmark<E: PoolExecutor>(_ name: String, tasks: Int = 8, iterations: Int = 5_000_000, _ make: () throws -> E) throws {
    let start = ContinuousClock.now
    try make().run { executor in
        let futures = try (0..<tasks).map { _ in try executor.submit(cpuBound, iterations) }
        for future in futures { _ = try future.result() }
    }
    let elapsed = ContinuousClock.now - start
    print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: ": %.3f s", elapsed / .seconds(1)))
}

try runBenchmark("ThreadPoolExecutor") { try ThreadPoolExecutor(maxWorkers: 4) }
try runBenchmark("ProcessPoolExecutor") { try ProcessPoolExecutor(maxWorkers: 4) }
try runBenchmark("InterpreterPoolExecutor") { try InterpreterPoolExecutor(maxWorkers: 4) }
