import InMemoryTracing
import MetricsTestKit
import TestSupport
import Testing
import Tracing

@testable import ConcurrentFutures

/// What an interpreter pool reports per guest module: calls, failures by kind, fuel, peak memory;
/// and its spans name the module and function.
@Suite("Interpreter pool observability")
struct InterpreterObservabilityTests {
    @Test func guestModulesAreCounted() throws {
        let metrics = TestMetrics()
        let tracer = InMemoryTracer()
        let module = Fixtures.module(Fixtures.basic, name: "basic")
        let pool = try InterpreterPoolExecutor(
            maxWorkers: 1, modules: [module], limits: InterpreterLimits(fuel: 100_000),
            observability: PoolObservability(name: "guests", metricsFactory: metrics, tracer: tracer))
        let square = try module.function("square", returning: Int.self)
        let boom = try module.function("boom", returning: Int.self)
        let spin = try module.function("spin", returning: Int.self)
        #expect(try pool.submit(square, 7).result() == 49)
        #expect(try pool.submit(square, 8).result() == 64)
        #expect(#expect(throws: GuestError.self) { try pool.submit(boom).result() }?.kind == .unreachable)
        #expect(#expect(throws: GuestError.self) { try pool.submit(spin).result() }?.kind == .outOfFuel)
        pool.shutdown(wait: true, cancelFutures: false)

        let labels = [("executor", "interpreter"), ("pool", "guests"), ("module", "basic")]
        #expect(try metrics.expectCounter("futures_guest_calls_total", labels).totalValue == 4)
        #expect(try metrics.expectCounter("futures_guest_traps_total", labels + [("kind", "unreachable")]).totalValue == 1)
        #expect(try metrics.expectCounter("futures_guest_traps_total", labels + [("kind", "outOfFuel")]).totalValue == 1)
        // The runaway call used its whole budget; the others some.
        #expect(try metrics.expectCounter("futures_guest_fuel_used_total", labels).totalValue > 100_000)
        #expect(try metrics.expectGauge("futures_guest_memory_peak_bytes", labels).lastValue ?? 0 > 0)

        let spans = tracer.finishedSpans.filter { $0.operationName == "futures.task" }
        #expect(spans.count == 4)
        #expect(spans.allSatisfy { $0.attributes["futures.module"]?.toSpanAttribute() == "basic" })
        let functions = spans.compactMap { span -> String? in
            guard case .string(let name)? = span.attributes["futures.function"]?.toSpanAttribute() else { return nil }
            return name
        }
        #expect(Set(functions) == ["square", "boom", "spin"])
    }
}
