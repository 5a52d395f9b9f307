import CoreMetrics
import Synchronization

/// The metrics backend `futures bench --metrics` bootstraps: every handle keeps its value in
/// atomics (a timer its count and sum), as a production backend such as swift-prometheus does,
/// so that the benchmark measures what recording costs rather than a backend's export.
final class BenchMetrics: MetricsFactory {
    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { Handle() }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler { Handle() }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { Handle() }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { Handle() }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Handle() }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    /// One metric: a count and a sum, or a value.
    final class Handle: CounterHandler, FloatingPointCounterHandler, MeterHandler, RecorderHandler, TimerHandler {
        let count = Atomic<Int64>(0)
        let sum = Atomic<Int64>(0)

        func increment(by amount: Int64) { sum.wrappingAdd(amount, ordering: .relaxed) }
        func increment(by amount: Double) { sum.wrappingAdd(Int64(amount), ordering: .relaxed) }
        func decrement(by amount: Double) { sum.wrappingSubtract(Int64(amount), ordering: .relaxed) }
        func set(_ value: Int64) { sum.store(value, ordering: .relaxed) }
        func set(_ value: Double) { sum.store(Int64(value), ordering: .relaxed) }
        func record(_ value: Int64) {
            count.wrappingAdd(1, ordering: .relaxed)
            sum.wrappingAdd(value, ordering: .relaxed)
        }
        func record(_ value: Double) { record(Int64(value)) }
        func recordNanoseconds(_ duration: Int64) { record(duration) }
        func reset() { sum.store(0, ordering: .relaxed) }
    }
}
