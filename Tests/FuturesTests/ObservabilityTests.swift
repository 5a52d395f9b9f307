import Glibc
import InMemoryTracing
import MetricsTestKit
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing
import Tracing

@testable import ConcurrentFutures

/// A key for a value the submitter puts in its service context.
private enum TenantKey: ServiceContextKey {
    typealias Value = String
}

/// A gate a task waits at until the test opens it.
private final class Gate: Sendable {
    private let open = Mutex(false)
    private let entered = Atomic<Int>(0)

    func wait() {
        entered.wrappingAdd(1, ordering: .sequentiallyConsistent)
        while !open.withLock({ $0 }) { usleep(1_000) }
    }
    func waitUntilEntered(_ count: Int) { while entered.load(ordering: .sequentiallyConsistent) < count { usleep(1_000) } }
    func release() { open.withLock { $0 = true } }
}

private struct Refused: Error {}

/// Metrics, spans and the service lifecycle (docs/observability.md), on the thread pool.
@Suite("Observability")
struct ObservabilityTests {
    /// Every submitted call is counted once: started, then completed or failed (by error), or
    /// cancelled; the queue and the workers are back to zero once the pool ends.
    @Test func threadPoolCountsEveryOutcome() throws {
        let metrics = TestMetrics()
        let pool = try ThreadPoolExecutor(maxWorkers: 1, observability: PoolObservability(name: "counted", metricsFactory: metrics))
        let gate = Gate()
        let blocker = try pool.submit { gate.wait() }
        gate.waitUntilEntered(1)
        let good = try (0..<5).map { value in try pool.submit { value * 2 } }
        let bad = try (0..<3).map { _ in try pool.submit { () throws -> Int in throw Refused() } }
        let coded = try pool.submit { () throws -> Int in throw ExecutorError(.invalidArgument, "no") }
        let doomed = try (0..<2).map { _ in try pool.submit { 1 } }
        for future in doomed { #expect(future.cancel()) }
        gate.release()
        try blocker.result()
        #expect(try good.map { try $0.result() } == [0, 2, 4, 6, 8])
        for future in bad { #expect(throws: Refused.self) { try future.result() } }
        #expect(throws: ExecutorError.self) { try coded.result() }
        pool.shutdown(wait: true, cancelFutures: false)

        let labels = [("executor", "thread"), ("pool", "counted")]
        #expect(try metrics.expectCounter("futures_tasks_submitted_total", labels).totalValue == 12)
        #expect(try metrics.expectCounter("futures_tasks_started_total", labels).totalValue == 10)
        #expect(try metrics.expectCounter("futures_tasks_completed_total", labels).totalValue == 6)
        #expect(try metrics.expectCounter("futures_tasks_cancelled_total", labels).totalValue == 2)
        #expect(try metrics.expectCounter("futures_tasks_failed_total", labels + [("error", "Refused")]).totalValue == 3)
        #expect(
            try metrics.expectCounter("futures_tasks_failed_total", labels + [("error", "ExecutorError.invalidArgument")]).totalValue == 1)
        // One observation per batch a worker took (short tasks are taken several at a time).
        #expect((1...10).contains(try metrics.expectTimer("futures_task_queued_seconds", labels).values.count))
        #expect((1...10).contains(try metrics.expectTimer("futures_task_run_seconds", labels).values.count))
        #expect(try metrics.expectMeter("futures_queue_depth", labels).lastValue == 0)
        #expect(try metrics.expectMeter("futures_workers_busy", labels).lastValue == 0)
        #expect(try metrics.expectMeter("futures_workers_idle", labels).lastValue == 0)
    }

    /// Queued work cancelled by `shutdown(cancelFutures:)` and work failed by a broken pool are
    /// counted, and a broken pool once.
    @Test func shutdownAndBrokenPoolsAreCounted() throws {
        let metrics = TestMetrics()
        let pool = try ThreadPoolExecutor(maxWorkers: 1, observability: PoolObservability(metricsFactory: metrics))
        let gate = Gate()
        let blocker = try pool.submit { gate.wait() }
        gate.waitUntilEntered(1)
        let queued = try (0..<4).map { _ in try pool.submit { 1 } }
        pool.shutdown(wait: false, cancelFutures: true)
        gate.release()
        try blocker.result()
        pool.shutdown(wait: true, cancelFutures: false)
        #expect(queued.allSatisfy { $0.isCancelled })
        let labels = [("executor", "thread")]
        #expect(try metrics.expectCounter("futures_tasks_cancelled_total", labels).totalValue == 4)
        #expect(try metrics.expectMeter("futures_queue_depth", labels).lastValue == 0)

        let brokenMetrics = TestMetrics()
        let broken = try ThreadPoolExecutor(
            maxWorkers: 1, initializer: Call { throw Refused() }, observability: PoolObservability(metricsFactory: brokenMetrics))
        let failed = try broken.submit { 1 }
        #expect(throws: ExecutorError.self) { try failed.result() }
        broken.shutdown(wait: true, cancelFutures: false)
        #expect(try brokenMetrics.expectCounter("futures_pools_broken_total", labels).totalValue == 1)
        #expect(
            try brokenMetrics.expectCounter("futures_tasks_failed_total", labels + [("error", "ExecutorError.brokenThreadPool")])
                .totalValue == 1)
    }

    /// With no backend, an executor makes no metric at all.
    @Test func noBackendRecordsNothing() throws {
        let instruments = PoolInstruments(kind: "thread", observability: .disabled)
        #expect(instruments.metrics == nil)
        #expect(instruments.tracer == nil)
    }

    /// The service context current at `submit` is the parent of the task's span, and is current
    /// (with the submitter's values) while the task runs in this process; the span says how the
    /// task ended.
    @Test func spansAreChildrenOfTheSubmittersContext() throws {
        let tracer = InMemoryTracer()
        let pool = try ThreadPoolExecutor(maxWorkers: 2, observability: PoolObservability(name: "traced", tracer: tracer))
        let parent = tracer.startSpan("request")
        var context = parent.context
        context[TenantKey.self] = "acme"
        let (seen, failing) = try ServiceContext.$current.withValue(context) {
            (try pool.submit { ServiceContext.current?[TenantKey.self] }, try pool.submit { () throws -> Int in throw Refused() })
        }
        #expect(try seen.result() == "acme")
        #expect(throws: Refused.self) { try failing.result() }
        pool.shutdown(wait: true, cancelFutures: false)
        parent.end()
        let tasks = tracer.finishedSpans.filter { $0.operationName == "futures.task" }
        #expect(tasks.count == 2)
        for span in tasks {
            #expect(span.parentSpanID == parent.spanID)
            #expect(span.traceID == parent.context.inMemorySpanContext?.traceID)
            #expect(span.attributes["futures.executor"]?.toSpanAttribute() == "thread")
            #expect(span.attributes["futures.pool"]?.toSpanAttribute() == "traced")
        }
        let outcomes = Set(
            tasks.compactMap { span -> String? in
                guard case .string(let outcome)? = span.attributes["futures.outcome"]?.toSpanAttribute() else { return nil }
                return outcome
            })
        #expect(outcomes == ["completed", "failed"])
    }

    /// Graceful shutdown drains: later submissions are refused, accepted work finishes.
    @Test func gracefulShutdownLetsAcceptedWorkFinish() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let gate = Gate()
        let running = try pool.submit { gate.wait() }
        let queued = try pool.submit { 42 }
        gate.waitUntilEntered(1)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await ExecutorService(pool, drainTimeout: .seconds(600)).run() }
                trigger.triggerGracefulShutdown()
                // Intake stops first; the accepted work then finishes.
                while (try? pool.submit { 0 }) != nil { try await Task.sleep(for: .milliseconds(1)) }
                gate.release()
                try await group.waitForAll()
            }
        }
        try await running.result()
        #expect(try await queued.result() == 42)
        #expect(pool.workerCount == 0)
    }

    /// Past the drain deadline the queued work is cancelled; the running call still finishes.
    @Test func drainDeadlineCancelsQueuedWork() async throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let gate = Gate()
        let running = try pool.submit { gate.wait() }
        let queued = try (0..<3).map { _ in try pool.submit { 1 } }
        gate.waitUntilEntered(1)
        let service = ExecutorService(pool, drainTimeout: .milliseconds(10))
        async let drained: Void = service.drain()
        // The queued calls are cancelled at the deadline while the running one still waits.
        while !queued.allSatisfy({ $0.isCancelled }) { try await Task.sleep(for: .milliseconds(1)) }
        gate.release()
        await drained
        try await running.result()
        let refused = #expect(throws: ExecutorError.self) { try pool.submit { 0 } }
        #expect(refused?.code == .shutdown)
    }
}
