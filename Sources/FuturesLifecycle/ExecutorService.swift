public import Futures
public import ServiceLifecycle

/// An executor as a `Service` of swift-service-lifecycle's `ServiceGroup`: it runs until the group
/// shuts down gracefully (on SIGTERM, when the group is set up so), then drains the executor.
///
/// Draining takes three steps, as a server expects: the executor stops accepting work (later
/// submissions throw ``Futures/ExecutorError`` `.shutdown`); the work it accepted (queued and
/// running) goes on until done or until ``drainTimeout``; past it, the queued work is cancelled
/// (its futures report `.cancelled`) and `run()` returns once the running calls end: a running
/// call is never interrupted (guest calls end at their time or fuel limit). When the service's
/// task is cancelled instead of shut down gracefully, the queued work is cancelled at once.
///
/// ```swift
/// let pool = try InterpreterPoolExecutor(maxWorkers: 4, modules: [plugins])
/// let group = ServiceGroup(
///     services: [httpServer, ExecutorService(pool, drainTimeout: .seconds(10))],
///     gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public struct ExecutorService<Executor: PoolExecutor>: Service {
    /// The executor this service drains.
    public let executor: Executor
    /// How long accepted work may go on after graceful shutdown began before the queued part is
    /// cancelled.
    public let drainTimeout: Duration

    /// Wraps `executor`; `drainTimeout` bounds how long accepted work may go on once graceful
    /// shutdown began, before the queued part is cancelled.
    public init(_ executor: Executor, drainTimeout: Duration = .seconds(30)) {
        self.executor = executor
        self.drainTimeout = drainTimeout
    }

    /// Waits for graceful shutdown (or cancellation), then drains the executor (see the type's
    /// documentation). It never throws: a drain always completes.
    public func run() async throws {
        do {
            try await gracefulShutdown()
            await drain()
        } catch {
            // Cancelled rather than shut down gracefully: no grace for queued work.
            await executor.shutdown(wait: false, cancelFutures: true)
            await executor.shutdown(wait: true, cancelFutures: false)
        }
    }

    /// Drains the executor now: no new submissions; accepted work runs until done or until
    /// ``drainTimeout``, when the queued part is cancelled; returns once every worker ended.
    public func drain() async {
        let executor = executor
        let timeout = drainTimeout
        await executor.shutdown(wait: false, cancelFutures: false)
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await executor.shutdown(wait: true, cancelFutures: false)
                return true
            }
            group.addTask {
                // Cancelled when the work ends first; a cancelled sleep still reports `false`
                // after the work's `true` was taken, and then changes nothing.
                try? await Task.sleep(for: timeout)
                return false
            }
            if await group.next() == false {
                await executor.shutdown(wait: false, cancelFutures: true)
            }
            group.cancelAll()
            await group.waitForAll()
        }
    }
}
