package import Logging
import Synchronization

/// The eventual outcome of work submitted to an executor: Python's `concurrent.futures.Future`.
///
/// A future starts *pending*, becomes *running* when a worker takes it, and ends either
/// *finished* (with a value or an error) or *cancelled* (only possible while pending). Readers
/// block with ``result(timeout:)`` or suspend with ``value``; executors resolve it exactly once
/// with ``setRunningOrNotifyCancel()``, ``setResult(_:)`` and ``setError(_:)``.
///
/// Unlike CPython (gh-92001), a future cancelled with ``cancel()`` or by
/// `shutdown(cancelFutures: true)` is done for every observer at once, including ``wait(_:timeout:returnWhen:)``
/// and ``asCompleted(_:timeout:)``.
public final class Future<Value: Sendable>: Sendable {
    /// The stages a future goes through.
    public enum State: Sendable, Hashable, CustomStringConvertible {
        /// Submitted, not yet taken by a worker; it can still be cancelled.
        case pending
        /// A worker is running it; it can no longer be cancelled.
        case running
        /// Cancelled before it ran.
        case cancelled
        /// Finished with a value or an error.
        case finished

        public var description: String {
            switch self {
            case .pending: "pending"
            case .running: "running"
            case .cancelled: "cancelled"
            case .finished: "finished"
            }
        }
    }

    private struct Storage {
        var state: State = .pending
        var outcome: Result<Value, any Error>?
        var waiters: [Waiter] = []
        var callbacks: [(id: UInt64, body: @Sendable (Future<Value>) -> Void)] = []
        var nextCallbackID: UInt64 = 0
    }

    private let storage = Mutex(Storage())

    /// Creates a pending future. Executors create the futures they return; create one yourself
    /// only to resolve it yourself, as a promise.
    public init() {}

    /// The current state.
    public var state: State { storage.withLock { $0.state } }

    /// Whether the future was cancelled.
    public var cancelled: Bool { state == .cancelled }

    /// Whether a worker is running the future now.
    public var running: Bool { state == .running }

    /// Whether the future finished or was cancelled.
    public var done: Bool {
        let state = self.state
        return state == .finished || state == .cancelled
    }

    // MARK: Reading

    /// Returns the value, waiting up to `timeout` (forever when `nil`) for the future to end.
    ///
    /// - Parameter timeout: How long to wait; zero or negative only checks.
    /// - Returns: The value the work produced.
    /// - Throws: The error the work threw; ``ExecutorError`` with code `.cancelled` when the
    ///   future was cancelled; ``ExecutorError`` with code `.timedOut` when `timeout` passed first.
    ///   Timing out does not cancel the future.
    @available(*, noasync, message: "Blocks the thread; use 'await future.value' or 'await future.result(timeout:)'")
    public func result(timeout: Duration? = nil) throws -> Value {
        try waitForOutcome(until: Deadline.after(timeout)).get()
    }

    /// Returns the error the work threw, `nil` when it produced a value, waiting up to `timeout`.
    ///
    /// - Throws: ``ExecutorError`` `.cancelled` when the future was cancelled, `.timedOut` when
    ///   `timeout` passed first.
    @available(*, noasync, message: "Blocks the thread; use 'await future.exception(timeout:)'")
    public func exception(timeout: Duration? = nil) throws -> (any Error)? {
        switch try waitForOutcome(until: Deadline.after(timeout)) {
        case .success: return nil
        case .failure(let error): return error
        }
    }

    package static var timeoutError: ExecutorError {
        ExecutorError.timedOut("the future did not finish within the timeout")
    }

    /// Waits for the outcome; throws only for cancellation and timeout.
    package func waitForOutcome(until deadline: Deadline?) throws(ExecutorError) -> Result<Value, any Error> {
        var waiter: Waiter?
        while true {
            let outcome: Result<Value, any Error>?? = storage.withLock { storage in
                switch storage.state {
                case .finished: return .some(storage.outcome)
                case .cancelled: return .some(nil)
                case .pending, .running:
                    if waiter == nil, deadline.map({ !$0.hasPassed }) ?? true {
                        waiter = Waiter()
                        storage.waiters.append(waiter!)
                    }
                    return .none
                }
            }
            switch outcome {
            case .some(.some(let result)):
                return result
            case .some(.none):
                throw ExecutorError.cancelled
            case .none:
                guard let waiter, waiter.wait(forNotifications: 1, until: deadline) else {
                    if let waiter { removeWaiter(waiter) }
                    if let settled = settledOutcome() { return try settled.get() }
                    throw Self.timeoutError
                }
            }
        }
    }

    /// The outcome if the future is done: a result, or `.failure(.cancelled)`.
    package func settledOutcome() -> Result<Result<Value, any Error>, ExecutorError>? {
        storage.withLock { storage in
            switch storage.state {
            case .finished: return .success(storage.outcome!)
            case .cancelled: return .failure(.cancelled)
            case .pending, .running: return nil
            }
        }
    }

    // MARK: Callbacks

    /// Runs `callback` with this future once it is done (finished or cancelled).
    ///
    /// When the future is already done, the callback runs at once in the calling thread;
    /// otherwise it runs in the thread that completes the future. Callbacks run in the order they
    /// were added. A callback that throws is logged (logger `concurrent.futures`) and does not stop
    /// the others.
    public func addDoneCallback(_ callback: @escaping @Sendable (Future<Value>) throws -> Void) {
        let guarded: @Sendable (Future<Value>) -> Void = { future in
            do {
                try callback(future)
            } catch {
                futuresLogger.error("exception calling callback for \(future): \(error)")
            }
        }
        if addCallbackUnlessDone(guarded) == nil {
            guarded(self)
        }
    }

    /// Registers a callback unless the future is done; returns its id, or `nil` when done.
    package func addCallbackUnlessDone(_ callback: @escaping @Sendable (Future<Value>) -> Void) -> UInt64? {
        storage.withLock { storage in
            switch storage.state {
            case .finished, .cancelled:
                return nil
            case .pending, .running:
                storage.nextCallbackID += 1
                storage.callbacks.append((storage.nextCallbackID, callback))
                return storage.nextCallbackID
            }
        }
    }

    /// Removes a callback registered with ``addCallbackUnlessDone(_:)``.
    package func removeCallback(_ id: UInt64) {
        storage.withLock { $0.callbacks.removeAll { $0.id == id } }
    }

    /// The outcome of a done future, with cancellation as an error.
    package var outcomeIfDone: Result<Value, any Error>? {
        guard let settled = settledOutcome() else { return nil }
        switch settled {
        case .success(let result): return result
        case .failure(let error): return .failure(error)
        }
    }

    // MARK: Resolving (the executor's side)

    /// Cancels the future if it has not started running.
    ///
    /// - Returns: `true` when the future is cancelled (now or before); `false` when it is
    ///   running or finished.
    @discardableResult
    public func cancel() -> Bool {
        let fired: (waiters: [Waiter], callbacks: [@Sendable (Future<Value>) -> Void])? = storage.withLock { storage in
            switch storage.state {
            case .running, .finished: return nil
            case .cancelled: return ([], [])
            case .pending:
                storage.state = .cancelled
                return takeObservers(&storage)
            }
        }
        guard let fired else { return false }
        notify(fired)
        return true
    }

    /// Called by an executor when a worker takes the future.
    ///
    /// - Returns: `true` when the future is now running; `false` when it was cancelled, in which
    ///   case the work must not run.
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already running or finished.
    public func setRunningOrNotifyCancel() throws(ExecutorError) -> Bool {
        let state = storage.withLock { storage in
            let old = storage.state
            if old == .pending { storage.state = .running }
            return old
        }
        switch state {
        case .pending: return true
        case .cancelled: return false
        case .running, .finished: throw ExecutorError(.invalidState, "future in unexpected state: \(state)")
        }
    }

    /// Resolves the future with a value.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or
    ///   cancelled; the first outcome is kept.
    public func setResult(_ value: Value) throws(ExecutorError) {
        try resolve(.success(value))
    }

    /// Resolves the future with an error.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or
    ///   cancelled; the first outcome is kept.
    public func setError(_ error: any Error) throws(ExecutorError) {
        try resolve(.failure(error))
    }

    /// Resolves the future with `result`.
    ///
    /// - Throws: ``ExecutorError`` `.invalidState` when the future is already finished or cancelled.
    public func resolve(_ result: Result<Value, any Error>) throws(ExecutorError) {
        let fired: (waiters: [Waiter], callbacks: [@Sendable (Future<Value>) -> Void])? = storage.withLock { storage in
            switch storage.state {
            case .finished, .cancelled:
                return nil
            case .pending, .running:
                storage.state = .finished
                storage.outcome = result
                return takeObservers(&storage)
            }
        }
        guard let fired else {
            throw ExecutorError(.invalidState, "the future is already \(state): \(self)")
        }
        notify(fired)
    }

    /// Resolves a running future; a second resolution is ignored (used by workers, which own it).
    package func complete(_ result: Result<Value, any Error>) {
        try? resolve(result)
    }

    private func takeObservers(
        _ storage: inout Storage
    ) -> (waiters: [Waiter], callbacks: [@Sendable (Future<Value>) -> Void]) {
        let waiters = storage.waiters
        let callbacks = storage.callbacks.map(\.body)
        storage.waiters = []
        storage.callbacks = []
        return (waiters, callbacks)
    }

    private func notify(_ fired: (waiters: [Waiter], callbacks: [@Sendable (Future<Value>) -> Void])) {
        for waiter in fired.waiters { waiter.notify(self) }
        for callback in fired.callbacks { callback(self) }
    }
}

extension Future: FutureHandle {
    package var failed: Bool {
        storage.withLock { storage in
            if case .failure = storage.outcome { return true }
            return false
        }
    }

    package func addWaiter(_ waiter: Waiter) -> Bool {
        storage.withLock { storage in
            switch storage.state {
            case .finished, .cancelled: return false
            case .pending, .running:
                storage.waiters.append(waiter)
                return true
            }
        }
    }

    package func removeWaiter(_ waiter: Waiter) {
        storage.withLock { $0.waiters.removeAll { $0 === waiter } }
    }
}

extension Future: Hashable {
    /// Futures are equal only to themselves.
    public static func == (lhs: Future, rhs: Future) -> Bool { lhs === rhs }

    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension Future: CustomStringConvertible {
    /// For example `Future<Int>(state: finished, returned Int)`.
    public var description: String {
        let (state, outcome) = storage.withLock { ($0.state, $0.outcome) }
        var text = "Future<\(Value.self)>(state: \(state)"
        switch outcome {
        case .success: text += ", returned \(Value.self)"
        case .failure(let error): text += ", raised \(type(of: error))"
        case nil: break
        }
        return text + ")"
    }
}

/// The logger for errors that have no caller to go to: failing done-callbacks and initializers.
package let futuresLogger = Logger(label: "concurrent.futures")
