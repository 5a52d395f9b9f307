// The article's benchmark_transfer.py: map(double, range(10_000)) on 4 workers, where the cost
// of moving arguments and results dominates.
//
//     $ swift run -c release BenchmarkTransfer
//     ThreadPoolExecutor            : 0.052 s    (one shared interpreter, guest calls take turns)
//     ProcessPoolExecutor           : 0.061 s
//     InterpreterPoolExecutor       : 0.024 s

import BundledGuests
import ConcurrentFutures
import Foundation

ProcessWorker.runIfRequested()

let double = try BundledGuests.tasks.function("double", returning: Int.self)

func runBenchmark<E: PoolExecutor>(_ name: String, tasks: Int = 10_000, _ make: () throws -> E) throws {
    let inputs = Array(0..<tasks)
    let start = ContinuousClock.now
    let results = try make().run { executor in try executor.map(double, inputs).collect() }
    precondition(results == inputs.map { $0 * 2 })
    let elapsed = ContinuousClock.now - start
    print(name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: ": %.3f s", elapsed / .seconds(1)))
}

try runBenchmark("ThreadPoolExecutor") { try ThreadPoolExecutor(maxWorkers: 4) }
try runBenchmark("ProcessPoolExecutor") { try ProcessPoolExecutor(maxWorkers: 4) }
try runBenchmark("InterpreterPoolExecutor") { try InterpreterPoolExecutor(maxWorkers: 4) }
