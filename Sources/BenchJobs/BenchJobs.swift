public import Futures

/// The benchmark's functions as Swift jobs, registered by both `futures` and `futures-worker`, so
/// that process workers can run them by name. On a thread pool they run directly.
public enum BenchJobs {
    /// Python's `cpu_bound(n)`: `total += i * i; total %= 1_000_000_000` for `i` in `0..<n`.
    public static let cpuBound = Job("cpu_bound") { (n: Int) in BenchJobs.cpuBound(n) }
    /// `x * 2`.
    public static let double = Job("double") { (x: Int) in x * 2 }
    /// Does nothing and returns 0.
    public static let noop = Job("noop") { (_: Int) in 0 }

    /// Every benchmark job, for ``ProcessWorker``.
    public static let all: [any AnyJob] = [cpuBound, double, noop]

    /// The benchmark's CPU-bound function, natively.
    @inline(never)
    public static func cpuBound(_ n: Int) -> Int {
        var total = 0
        var i = 0
        while i < n {
            total += i &* i
            total %= 1_000_000_000
            i += 1
        }
        return total
    }
}
