import ConcurrentFutures

/// The benchmark's functions as Swift jobs, so that process workers (this program, started in
/// worker mode) can run them by name. On a thread pool they run directly.
enum BenchJobs {
    static let cpuBound = Job("cpu_bound") { (n: Int) in futures.cpuBound(n) }
    static let double = Job("double") { (x: Int) in x * 2 }
    static let noop = Job("noop") { (_: Int) in 0 }

    static let all: [any AnyJob] = [cpuBound, double, noop]
}
