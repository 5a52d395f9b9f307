package import Futures
package import Tracing
import WasmInterpreters

/// Calls sent to a worker process together, each with the future it resolves: the process
/// pool's task.
///
/// A plain submission is a batch of one; `map(chunkSize:)` makes bigger ones. Starting the batch
/// starts every call not cancelled (as Python's process pool marks calls running when it queues
/// them for a worker); cancelling or failing it cancels or fails them all.
package final class CallBatch: WorkerTask, @unchecked Sendable {
    package typealias Output = [Result<ShareableValue, any Error>]

    package struct Element: Sendable {
        package let handle: any FutureHandle
        package let call: RemoteCall
        package let resolve: @Sendable (Result<ShareableValue, any Error>) -> Void
    }

    package let elements: [Element]
    /// The elements that started (written once, by ``start()``, before the batch runs).
    package private(set) var started: [Element] = []
    /// The submitter's service context, when the pool traces (written once, by
    /// ``attach(trace:)``, before the batch runs): sent with each call, for the worker's span.
    package private(set) var trace: ServiceContext?

    package init(_ elements: [Element]) { self.elements = elements }

    /// The element for `call`, or `nil` when the call's arguments could not be encoded (the
    /// future has then already failed).
    ///
    /// - Throws: ``Futures/NotShareableError`` for a call with no remote form.
    package static func element<Success>(_ call: Call<Success>, _ future: Future<Success>) throws -> Element? {
        switch call.remote {
        case nil:
            throw NotShareableError("\(call.summary) is host code and cannot run in a worker process")
        case .unencodable(let error)?:
            future.complete(.failure(error))
            return nil
        case .invocation(let form)? where (form as? GuestInvocation)?.arguments.contains(where: containsQueue) == true:
            throw NotShareableError("queues live in one process: \(call.summary) cannot take one to a worker process")
        case let remote?:
            let decode = call.decode
            if let forwarding = remote.guestInvocation?.forwardingOutput() {
                // A WASI call whose output goes to a destination in this process: the worker
                // returns it with the value, and it is delivered here.
                return Element(handle: future, call: .invocation(forwarding.invocation)) { outcome in
                    future.complete(outcome.flatMap { value in Result { try decode(forwarding.unwrap(value)) } })
                }
            }
            return Element(handle: future, call: remote) { outcome in
                future.complete(outcome.flatMap { value in Result { try decode(value) } })
            }
        }
    }

    /// The remote form of a pool's `initializer`, which runs in `place` ("a worker process").
    ///
    /// - Throws: ``Futures/NotShareableError`` for a host closure, or arguments that could not
    ///   be encoded.
    package static func remoteInitializer(_ initializer: Call<Void>, runsIn place: String) throws(NotShareableError) -> RemoteCall {
        switch initializer.remote {
        case .job(let name, let argument)?: return .job(name: name, argument: argument)
        case .invocation(let invocation)?: return .invocation(invocation)
        case .unencodable(let error)?: throw error
        case nil: throw NotShareableError("the initializer (\(initializer.summary)) cannot run in \(place)")
        }
    }

    /// The futures for `calls` and the batches that resolve them, `chunkSize` calls per batch.
    ///
    /// - Throws: ``Futures/NotShareableError`` for a host closure, or a call that takes a queue;
    ///   ``Futures/ExecutorError`` `.invalidArgument` for a `chunkSize` below 1.
    package static func batches<Success: Sendable>(
        for calls: [Call<Success>], chunkSize: Int
    ) throws -> (futures: [Future<Success>], batches: [CallBatch]) {
        guard chunkSize >= 1 else {
            throw ExecutorError(.invalidArgument, "chunkSize must be >= 1, got \(chunkSize)")
        }
        let (futures, elements) = try Future<Success>.withTasks(for: calls) { call, future in try element(call, future) }
        let batches = stride(from: 0, to: elements.count, by: chunkSize).map { start in
            CallBatch(Array(elements[start..<min(start + chunkSize, elements.count)]))
        }
        return (futures, batches)
    }

    /// Runs the started calls of every batch in `batch` as one request through `send`, and
    /// splits the outcomes back per batch; an error from `send` fails every batch.
    package static func run(
        _ batch: [CallBatch], tracer: (any Tracer)? = nil,
        send: ([RemoteCall], _ traces: [[String: String]?]) throws -> [Result<ShareableValue, any Error>]
    ) -> [Result<Output, any Error>] {
        let calls = batch.flatMap { $0.started.map(\.call) }
        var traces: [[String: String]?] = []
        if tracer != nil {
            for task in batch {
                let carrier = task.traceCarrier(tracer: tracer)
                traces.append(contentsOf: repeatElement(carrier, count: task.started.count))
            }
        }
        let results: [Result<ShareableValue, any Error>]
        do {
            results = try send(calls, traces)
        } catch {
            return batch.map { _ in .failure(error) }
        }
        var offset = 0
        return batch.map { task in
            let count = task.started.count
            defer { offset += count }
            return .success(Array(results[offset..<offset + count]))
        }
    }

    package var isAwaited: Bool { true }
    package var callCount: Int { elements.count }

    package func attach(trace: ServiceContext) { self.trace = trace }

    package func forEachOutcome(_ body: (TaskOutcome) -> Void) {
        for element in elements { body(TaskOutcome(of: element.handle)) }
    }

    /// The carrier each call of the started elements sends: the submitter's context as `tracer`
    /// injects it, when the batch has one.
    package func traceCarrier(tracer: (any Tracer)?) -> [String: String]? {
        guard let tracer, let trace else { return nil }
        return RemoteTracing.carrier(for: trace, tracer: tracer)
    }

    package func start() -> Bool {
        started = elements.filter { (try? $0.handle.setRunningOrNotifyCancel()) == true }
        return !started.isEmpty
    }

    package func cancel() {
        for element in elements { element.handle.cancel() }
    }

    package func fail(_ error: ExecutorError) {
        for element in elements { try? element.handle.setError(error) }
    }

    package func finish(_ outcome: Result<Output, any Error>) {
        switch outcome {
        case .success(let results):
            for (element, result) in zip(started, results) {
                if case .failure(let error as RemoteError) = result, error.code == .notStarted {
                    // Dropped by the worker before it started: cancelled, as if still queued here.
                    element.handle.withdraw()
                } else {
                    element.resolve(result)
                }
            }
        case .failure(let error):
            for element in started { element.resolve(.failure(error)) }
        }
    }
}

/// Whether `value` holds a queue, which lives in one process.
private func containsQueue(_ value: ShareableValue) -> Bool {
    switch value {
    case .queue: true
    case .array(let elements): elements.contains(where: containsQueue)
    default: false
    }
}
