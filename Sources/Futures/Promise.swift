/// The side of a ``Future`` that resolves it: what an executor keeps while it runs the work,
/// and what a program uses to hand out a future it completes itself.
///
/// The methods are Python's, which its `Future` documents as meant for executor
/// implementations and tests; here they live on the promise, so that code holding only the
/// ``Future`` cannot resolve it.
///
/// ```swift
/// let promise = Promise<Int>()
/// startSomething { value in try? promise.setResult(value) }
/// let value = try promise.future.result(timeout: .seconds(5))
/// ```
public struct Promise<Success: Sendable>: Sendable {
    /// The future this promise resolves.
    public let future: Future<Success>

    /// Creates a promise and its pending future.
    @inlinable
    public init() { future = Future() }

    /// Marks the future running, as a worker does when it takes the work; a running future can
    /// no longer be cancelled.
    ///
    /// - Returns: `true` when the future is now running; `false` when it was cancelled, in which
    ///   case the work must not run.
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already running or finished.
    public func setRunningOrNotifyCancel() throws(ExecutorError) -> Bool {
        try future.setRunningOrNotifyCancel()
    }

    /// Resolves the future with a value.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or
    ///   cancelled; the first outcome is kept.
    public func setResult(_ value: Success) throws(ExecutorError) {
        try future.resolve(.success(value))
    }

    /// Resolves the future with an error.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or
    ///   cancelled; the first outcome is kept.
    public func setError(_ error: any Error) throws(ExecutorError) {
        try future.resolve(.failure(error))
    }

    /// Resolves the future with `result`.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or
    ///   cancelled; the first outcome is kept.
    public func resolve(_ result: Result<Success, any Error>) throws(ExecutorError) {
        try future.resolve(result)
    }
}
