import ConcurrentFutures
import Foundation

/// The sizes of the article's benchmarks.
struct BenchSizes {
    var workers: Int
    var tasks: Int
    var iterations: Int
    var items: Int
}

/// One measured benchmark row.
struct BenchRow {
    var benchmark: String
    var executor: String
    var guest: String
    var workers: Int
    var seconds: [Double]
    var extra: [String: Double] = [:]
    var note: String = ""

    var median: Double {
        let sorted = seconds.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { seconds.min() ?? 0 }
    var max: Double { seconds.max() ?? 0 }
}

/// The benchmark's CPU-bound function, natively: Python's `cpu_bound(n)`.
@inline(never)
func cpuBound(_ n: Int) -> Int {
    var total = 0
    var i = 0
    while i < n {
        total += i &* i
        total %= 1_000_000_000
        i += 1
    }
    return total
}

/// A failed self-check: a benchmark whose results are wrong reports no time.
struct BenchCheckFailed: Error, CustomStringConvertible {
    let description: String
}

/// Runs every benchmark on every executor available.
struct BenchSuite {
    let sizes: BenchSizes
    let runs: Int

    func runAll() throws -> [BenchRow] {
        var rows: [BenchRow] = []
        let expected = cpuBound(sizes.iterations)
        let single = measureSingle { blackHole(cpuBound(opaque(sizes.iterations))) }
        rows.append(try measure("cpu", "thread", "native") {
            try ThreadPoolExecutor(maxWorkers: sizes.workers).run { pool throws in
                let futures = try (0..<sizes.tasks).map { _ in try pool.submit { cpuBound(sizes.iterations) } }
                try check(futures.map { try $0.result() }, equals: Array(repeating: expected, count: sizes.tasks))
            }
        } annotate: { row in annotateCPU(&row, single: single) })
        rows.append(try measure("startup", "thread", "native") {
            try ThreadPoolExecutor(maxWorkers: sizes.workers).run { pool throws in
                let futures = try (0..<sizes.workers).map { _ in try pool.submit { () } }
                for future in futures { try future.result() }
            }
        })
        let inputs = Array(0..<sizes.items)
        let doubled = inputs.map { $0 * 2 }
        rows.append(try measure("transfer", "thread", "native") {
            try ThreadPoolExecutor(maxWorkers: sizes.workers).run { pool throws in
                try check(try pool.map(inputs) { $0 * 2 }.collect(), equals: doubled)
            }
        })
        return rows
    }

    /// The single-task time of the cpu benchmark: the best of three sequential runs.
    func measureSingle(_ body: () -> Void) -> Double {
        (0..<3).map { _ in time(body) }.min()!
    }

    func annotateCPU(_ row: inout BenchRow, single: Double) {
        let ideal = Double(sizes.tasks) * single / Double(Swift.min(sizes.workers, ProcessInfo.processInfo.activeProcessorCount))
        row.extra["single_task_s"] = single
        row.extra["ideal_s"] = ideal
        row.extra["overhead_ratio"] = row.median / ideal
    }

    func measure(
        _ benchmark: String, _ executor: String, _ guest: String,
        _ body: () throws -> Void,
        annotate: (inout BenchRow) -> Void = { _ in }
    ) throws -> BenchRow {
        try body()  // warm-up, and the self-check before timing
        var seconds: [Double] = []
        for _ in 0..<runs {
            var failure: (any Error)?
            seconds.append(time { do { try body() } catch { failure = error } })
            if let failure { throw failure }
        }
        var row = BenchRow(benchmark: benchmark, executor: executor, guest: guest, workers: sizes.workers, seconds: seconds)
        annotate(&row)
        return row
    }
}

/// Returns `value` through a function the optimizer cannot see into, so that work computed
/// from it is not merged with earlier identical work.
@inline(never) @_optimize(none)
func opaque<T>(_ value: T) -> T { value }

/// Keeps a value alive so the optimizer cannot drop the work that produced it.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

func time(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func check<T: Equatable>(_ actual: T, equals expected: T) throws {
    guard actual == expected else { throw BenchCheckFailed(description: "wrong result: \(actual) != \(expected)") }
}
