public import CoreMetrics
public import Tracing

/// Where an executor reports its metrics and traces, and the name it reports under
/// (docs/observability.md lists every metric and span).
///
/// By default an executor uses the metrics factory bootstrapped with `MetricsSystem.bootstrap` and
/// the tracer bootstrapped with `InstrumentationSystem.bootstrap`, as they are when the executor
/// is created: bootstrap them first. With neither, the executor records nothing and takes no
/// timestamps (a check per task); the library never chooses a backend.
public struct PoolObservability: Sendable {
    /// The `pool` label of the executor's metrics and the `futures.pool` attribute of its spans;
    /// `nil` leaves the label out.
    public var name: String?
    /// The metrics factory; `nil` means the one bootstrapped (`MetricsSystem.factory`).
    public var metricsFactory: (any MetricsFactory)?
    /// The tracer; `nil` means the one bootstrapped (`InstrumentationSystem.tracer`).
    public var tracer: (any Tracer)?

    /// Creates a configuration: `name` labels what the executor reports; a `nil` factory or
    /// tracer means the bootstrapped one.
    public init(name: String? = nil, metricsFactory: (any MetricsFactory)? = nil, tracer: (any Tracer)? = nil) {
        self.name = name
        self.metricsFactory = metricsFactory
        self.tracer = tracer
    }

    /// Reports nothing, whatever is bootstrapped.
    public static var disabled: PoolObservability {
        PoolObservability(metricsFactory: NOOPMetricsHandler.instance, tracer: NoOpTracer())
    }
}
