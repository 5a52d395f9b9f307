package import CoreMetrics
import Synchronization

/// An executor's metric handles, made once per pool (docs/observability.md): counters of tasks by
/// outcome, the queue depth and workers, the times queued and running, worker replacements and
/// broken pools; per guest module, calls, traps, fuel and peak memory; for pools of other
/// processes, bytes and round trips. Labels: `executor` and, when the user named the pool, `pool`.
package final class PoolMetrics: Sendable {
    let factory: any MetricsFactory
    /// The labels of every metric of the pool.
    package let dimensions: [(String, String)]

    package let submitted: Counter
    package let started: Counter
    package let completed: Counter
    package let cancelled: Counter
    package let queueDepth: Meter
    package let busyWorkers: Meter
    package let idleWorkers: Meter
    package let queuedTime: Timer
    package let runTime: Timer
    package let workerReplacements: Counter
    package let brokenPools: Counter
    /// For pools of other processes only (`nil` in the others): bytes each way and round trips.
    package let bytesSent: Counter?
    package let bytesReceived: Counter?
    package let roundTrip: Timer?

    /// The failure counters by error label, made on first use.
    private let failures = Mutex<[String: Counter]>([:])
    /// The per-module handles, made on first use.
    private let modules = Mutex<[String: GuestModuleMetrics]>([:])

    /// Makes the handles under `dimensions`; with `remote`, the wire's too.
    package init(factory: any MetricsFactory, dimensions: [(String, String)], remote: Bool) {
        self.factory = factory
        self.dimensions = dimensions
        func counter(_ label: String) -> Counter { Counter(label: label, dimensions: dimensions, factory: factory) }
        func meter(_ label: String) -> Meter { Meter(label: label, dimensions: dimensions, factory: factory) }
        func timer(_ label: String) -> Timer {
            Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        }
        submitted = counter("futures_tasks_submitted_total")
        started = counter("futures_tasks_started_total")
        completed = counter("futures_tasks_completed_total")
        cancelled = counter("futures_tasks_cancelled_total")
        queueDepth = meter("futures_queue_depth")
        busyWorkers = meter("futures_workers_busy")
        idleWorkers = meter("futures_workers_idle")
        queuedTime = timer("futures_task_queued_seconds")
        runTime = timer("futures_task_run_seconds")
        workerReplacements = counter("futures_worker_replacements_total")
        brokenPools = counter("futures_pools_broken_total")
        bytesSent = remote ? counter("futures_remote_bytes_sent_total") : nil
        bytesReceived = remote ? counter("futures_remote_bytes_received_total") : nil
        roundTrip = remote ? timer("futures_remote_round_trip_seconds") : nil
    }

    /// Counts a task that failed with `error`, under the `error` label ``errorLabel(_:)`` gives it.
    package func failed(_ error: any Error) {
        let label = Self.errorLabel(error)
        let counter = failures.withLock { counters in
            if let counter = counters[label] { return counter }
            let counter = Counter(label: "futures_tasks_failed_total", dimensions: dimensions + [("error", label)], factory: factory)
            counters[label] = counter
            return counter
        }
        counter.increment()
    }

    /// Counts the outcome of every call of `task`, once it is finished, cancelled or failed.
    package func recordOutcomes(of task: some WorkerTask) {
        task.forEachOutcome { outcome in
            switch outcome {
            case .completed: completed.increment()
            case .failed(let error): failed(error)
            case .cancelled: cancelled.increment()
            }
        }
    }

    /// The handles of the guest module `name`.
    package func module(_ name: String) -> GuestModuleMetrics {
        modules.withLock { handles in
            if let handles = handles[name] { return handles }
            let made = GuestModuleMetrics(factory: factory, dimensions: dimensions + [("module", name)])
            handles[name] = made
            return made
        }
    }

    /// An error's `error` label: `Type.code` for the package's coded errors (`GuestError.outOfFuel`,
    /// `ExecutorError.brokenProcessPool`), else the type's name: a small, fixed set of values.
    package static func errorLabel(_ error: any Error) -> String {
        if let coded = error as? any CodedError { return "\(type(of: coded)).\(coded.codeName)" }
        return "\(type(of: error))"
    }
}

/// The metric handles of one guest module in one pool.
package final class GuestModuleMetrics: Sendable {
    let factory: any MetricsFactory
    let dimensions: [(String, String)]
    package let calls: Counter
    package let fuelUsed: Counter
    package let peakMemory: Gauge
    private let peak = Atomic<Int>(0)
    private let traps = Mutex<[String: Counter]>([:])

    init(factory: any MetricsFactory, dimensions: [(String, String)]) {
        self.factory = factory
        self.dimensions = dimensions
        calls = Counter(label: "futures_guest_calls_total", dimensions: dimensions, factory: factory)
        fuelUsed = Counter(label: "futures_guest_fuel_used_total", dimensions: dimensions, factory: factory)
        peakMemory = Gauge(label: "futures_guest_memory_peak_bytes", dimensions: dimensions, factory: factory)
    }

    /// Counts a call that failed with guest error kind `kind` (a trap, fuel or time running out).
    package func trapped(_ kind: String) {
        let counter = traps.withLock { counters in
            if let counter = counters[kind] { return counter }
            let counter = Counter(label: "futures_guest_traps_total", dimensions: dimensions + [("kind", kind)], factory: factory)
            counters[kind] = counter
            return counter
        }
        counter.increment()
    }

    /// Records a call's memory, reporting it when it is the module's new peak.
    package func sawMemory(bytes: Int) {
        let previous = peak.max(bytes, ordering: .relaxed).oldValue
        if bytes > previous { peakMemory.record(bytes) }
    }
}

extension CodedError {
    /// The name of ``code``, readable through an existential.
    package var codeName: String { code.name }
}
