package import Futures
package import Tracing

/// How a call's trace context crosses to another process (docs/observability.md): the sender's
/// tracer injects the submitter's service context into a carrier of string pairs, sent as the
/// last field of the ``CallRequest``; the worker's tracer extracts it and records the call's span
/// as its child.
package enum RemoteTracing {
    /// The carrier for `context`, as `tracer` injects it.
    package static func carrier(for context: ServiceContext, tracer: any Tracer) -> [String: String] {
        var carrier: [String: String] = [:]
        tracer.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier
    }

    /// Runs `body`, the worker's run of `request`, inside a span of the worker's tracer (by
    /// default `InstrumentationSystem.tracer`, bootstrapped in the worker program), a child of the
    /// context the request carries, with that span's context current; just runs `body` when the
    /// request carries no context or the worker has no tracer.
    package static func withSpan(
        for request: CallRequest, executor: String, tracer: (any Tracer)? = nil,
        _ body: () -> Result<ShareableValue, any Error>
    ) -> Result<ShareableValue, any Error> {
        // An untraced call costs this check only: the tracer is looked up for traced calls.
        guard let carrier = request.trace else { return body() }
        let tracer = tracer ?? InstrumentationSystem.tracer
        if tracer is NoOpTracer { return body() }
        var parent = ServiceContext.topLevel
        tracer.extract(carrier, into: &parent, using: DictionaryExtractor())
        let span = tracer.startSpan("futures.task", context: parent, ofKind: .server)
        span.attributes["futures.executor"] = executor
        switch request.body {
        case .job(let name, _):
            span.attributes["futures.job"] = name
        case .guest(let call):
            span.attributes["futures.function"] = call.function
            if let fuel = call.fuel { span.attributes["futures.fuel.budget"] = Int64(clamping: fuel) }
        }
        let outcome = ServiceContext.$current.withValue(span.context) { body() }
        switch outcome {
        case .success:
            span.attributes["futures.outcome"] = "completed"
        case .failure(let error):
            span.attributes["futures.outcome"] = "failed"
            span.attributes["futures.error"] = PoolMetrics.errorLabel(error)
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
        return outcome
    }
}

/// Writes a tracer's fields into a carrier of string pairs.
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

/// Reads a tracer's fields from a carrier of string pairs.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
