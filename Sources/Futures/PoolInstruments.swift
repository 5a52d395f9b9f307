import CoreMetrics
package import Tracing

/// What one executor reports through, resolved once when it is created: its metric handles (or
/// `nil` when no metrics backend is set) and its tracer (or `nil` when none is set), so that a
/// pool without either pays one check per task.
package final class PoolInstruments: Sendable {
    /// The executor kind (`thread`, `interpreter`, `process`, `mpi`): the `executor` label.
    package let kind: String
    /// The user's name for the pool: the `pool` label, when set.
    package let name: String?
    /// The pool's metric handles, when a metrics backend is set.
    package let metrics: PoolMetrics?
    /// The tracer spans go to, when one is set.
    package let tracer: (any Tracer)?

    /// Resolves `observability` for an executor of `kind`.
    package init(kind: String, observability: PoolObservability) {
        self.kind = kind
        name = observability.name
        let factory = observability.metricsFactory ?? MetricsSystem.factory
        var dimensions = [("executor", kind)]
        if let name = observability.name { dimensions.append(("pool", name)) }
        metrics =
            factory is NOOPMetricsHandler
            ? nil : PoolMetrics(factory: factory, dimensions: dimensions, remote: kind == "process" || kind == "mpi")
        let tracer = observability.tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
    }

    /// Instruments that report nothing (tests and pools that opt out).
    package static let disabled = PoolInstruments(kind: "none", observability: .disabled)

    /// The attributes every span of this pool carries.
    package func addPoolAttributes(to attributes: inout SpanAttributes) {
        attributes["futures.executor"] = kind
        if let name { attributes["futures.pool"] = name }
    }
}
