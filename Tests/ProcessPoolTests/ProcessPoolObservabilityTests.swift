import InMemoryTracing
import MetricsTestKit
import TestJobs
import TestSupport
import Testing
import Tracing

@testable import ConcurrentFutures

/// What a process pool reports (docs/observability.md): the task counts as every pool does, the
/// bytes and round trips on the sockets, replaced workers; and the trace context it sends with
/// each call.
@Suite("Process pool observability")
struct ProcessPoolObservabilityTests {
    @Test func countsBytesRoundTripsAndReplacements() throws {
        let metrics = TestMetrics()
        let pool = try ProcessPoolExecutor(
            maxWorkers: 1, maxTasksPerChild: 2, workerExecutable: workerPath,
            observability: PoolObservability(name: "jobs", metricsFactory: metrics))
        let results = try (1...5).map { value in try pool.submit(TestJobs.double, value).result() }
        #expect(results == [2, 4, 6, 8, 10])
        #expect(throws: RemoteError.self) { try pool.submit(TestJobs.fail, "no").result() }
        pool.shutdown(wait: true, cancelFutures: false)

        let labels = [("executor", "process"), ("pool", "jobs")]
        #expect(try metrics.expectCounter("futures_tasks_submitted_total", labels).totalValue == 6)
        #expect(try metrics.expectCounter("futures_tasks_completed_total", labels).totalValue == 5)
        #expect(try metrics.expectCounter("futures_tasks_failed_total", labels + [("error", "RemoteError.jobFailed")]).totalValue == 1)
        #expect(try metrics.expectCounter("futures_remote_bytes_sent_total", labels).totalValue > 0)
        #expect(try metrics.expectCounter("futures_remote_bytes_received_total", labels).totalValue > 0)
        #expect(try metrics.expectTimer("futures_remote_round_trip_seconds", labels).values.count == 6)
        // Six tasks, two per worker process: the second and third processes replace one each.
        #expect(try metrics.expectCounter("futures_worker_replacements_total", labels).totalValue == 2)
    }

    /// The submitter's context crosses with each call, injected by the pool's tracer; a worker
    /// whose program bootstraps no tracer records nothing and answers as ever.
    @Test func sendsTheSubmittersTraceContext() throws {
        let tracer = InMemoryTracer()
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: workerPath, observability: PoolObservability(tracer: tracer))
        let parent = tracer.startSpan("request")
        let value = try ServiceContext.$current.withValue(parent.context) { try pool.submit(TestJobs.double, 21) }.result()
        #expect(value == 42)
        pool.shutdown(wait: true, cancelFutures: false)
        parent.end()
        #expect(tracer.performedContextInjections.contains { $0.context.inMemorySpanContext?.spanID == parent.spanID })
    }
}
