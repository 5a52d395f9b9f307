package import Logging
import Synchronization

/// The eventual outcome of work submitted to an executor: Python's `concurrent.futures.Future`.
///
/// A future starts *pending*, becomes *running* when a worker takes it, and ends either
/// *finished* (with a value or an error) or *cancelled* (only possible while pending). Readers
/// block with ``result(timeout:)`` or suspend with ``value``. A future is only read: the side
/// that resolves it is its ``Promise``, which executors keep (NIO's promise/future split).
///
/// Unlike CPython (gh-92001), a future cancelled with ``cancel()`` or by
/// `shutdown(cancelFutures: true)` is done for every observer at once, including ``wait(_:timeout:returnWhen:)``
/// and ``asCompleted(_:timeout:)``.
public final class Future<Success: Sendable>: @unchecked Sendable {
    /// The stages a future goes through.
    public typealias State = FutureState

    /// The state machine, kept free of `Success` so that hot paths need no generic metadata.
    @usableFromInline
    let core = FutureCore()
    /// Written once, under the core's lock, in the transition to `.finished`; read only after
    /// observing `.finished`, which the lock orders after the write.
    @usableFromInline
    var storedValue: Success?

    /// Creates a pending future; see ``Promise`` for resolving one yourself.
    @inlinable
    package init() {}

    /// The current state.
    @inlinable
    public var state: State { core.state }

    /// Whether the future was cancelled.
    public var isCancelled: Bool { state == .cancelled }

    /// Whether a worker is running the future now.
    public var isRunning: Bool { state == .running }

    /// Whether the future finished or was cancelled.
    public var isDone: Bool {
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
    @inlinable
    public func result(timeout: Duration? = nil) throws -> Success {
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

    @usableFromInline
    package static var timeoutError: ExecutorError {
        ExecutorError.timedOut("the future did not finish within the timeout")
    }

    /// Waits for the outcome; throws only for cancellation and timeout.
    @inlinable
    package func waitForOutcome(until deadline: Deadline?) throws(ExecutorError) -> Result<Success, any Error> {
        if let error = try core.waitUntilDone(until: deadline) { return .failure(error) }
        return .success(storedValue!)
    }

    /// Drops the future's reference to its value, once the value was read: for a future that
    /// nobody else can read (one `map` made and hands out only as values), so that the value is
    /// released as soon as it is consumed.
    @inlinable
    package func dropValue() {
        storedValue = nil
    }

    /// The outcome if the future is done: a result, or `.failure(.cancelled)`.
    package func settledOutcome() -> Result<Result<Success, any Error>, ExecutorError>? {
        switch core.settled {
        case .none: return nil
        case .some(.cancelled): return .failure(.cancelled)
        case .some(.failed(let error)): return .success(.failure(error))
        case .some(.succeeded): return .success(.success(storedValue!))
        }
    }

    // MARK: Callbacks

    /// Runs `callback` with this future once it is done (finished or cancelled).
    ///
    /// When the future is already done, the callback runs at once in the calling thread;
    /// otherwise it runs in the thread that completes the future. Callbacks run in the order they
    /// were added. A callback that throws is logged (logger `concurrent.futures`) and does not stop
    /// the others.
    public func addDoneCallback(_ callback: @escaping @Sendable (Future<Success>) throws -> Void) {
        let guarded: @Sendable (Future<Success>) -> Void = { future in
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
    package func addCallbackUnlessDone(_ callback: @escaping @Sendable (Future<Success>) -> Void) -> UInt64? {
        core.addCallbackUnlessDone { [self] in callback(self) }
    }

    /// Removes a callback registered with ``addCallbackUnlessDone(_:)``.
    package func removeCallback(_ id: UInt64) {
        core.removeCallback(id)
    }

    // MARK: Resolving (the executor's side)

    /// Cancels the future if it has not started running.
    ///
    /// - Returns: `true` when the future is cancelled (now or before); `false` when it is
    ///   running or finished.
    @discardableResult
    @inlinable
    public func cancel() -> Bool {
        switch core.cancel() {
        case .refused: return false
        case .alreadyCancelled: return true
        case .cancelled(let observers):
            observers.notify(self)
            return true
        }
    }

    /// Cancels the future though an executor marked it running: its call never started (a remote
    /// worker dropped it). Does nothing once it is finished or cancelled.
    @usableFromInline
    package func withdraw() {
        core.withdraw()?.notify(self)
    }

    /// Called by an executor when a worker takes the future; see
    /// ``Promise/setRunningOrNotifyCancel()``.
    @usableFromInline
    package func setRunningOrNotifyCancel() throws(ExecutorError) -> Bool {
        try core.setRunningOrNotifyCancel()
    }

    /// Fails the future; see ``Promise/setError(_:)``.
    @usableFromInline
    package func setError(_ error: any Error) throws(ExecutorError) {
        try resolve(.failure(error))
    }

    /// Resolves the future with `result`; see ``Promise/resolve(_:)``.
    @inlinable
    package func resolve(_ result: Result<Success, any Error>) throws(ExecutorError) {
        let observers: FutureCore.Observers?
        switch result {
        case .success(let value): observers = core.finish(error: nil) { storedValue = value }
        case .failure(let error): observers = core.finish(error: error) {}
        }
        guard let observers else {
            throw ExecutorError(.invalidState, "the future is already \(state): \(self)")
        }
        observers.notify(self)
    }

    /// A new future for each of `items`, with the task `makeTask` makes for it (`nil`: none, its
    /// future is already resolved): how every executor's `submit(contentsOf:)` starts.
    ///
    /// - Throws: What `makeTask` throws; then nothing was made for the items after it.
    @inlinable
    package static func withTasks<Item, Task>(
        for items: [Item], _ makeTask: (Item, Future<Success>) throws -> Task?
    ) rethrows -> (futures: [Future<Success>], tasks: [Task]) {
        var futures: [Future<Success>] = []
        var tasks: [Task] = []
        futures.reserveCapacity(items.count)
        tasks.reserveCapacity(items.count)
        for item in items {
            let future = Future<Success>()
            futures.append(future)
            if let task = try makeTask(item, future) { tasks.append(task) }
        }
        return (futures, tasks)
    }

    /// Resolves a running future; a second resolution is ignored (used by workers, which own it).
    @inlinable
    package func complete(_ result: Result<Success, any Error>) {
        try? resolve(result)
    }
}

extension Future: FutureHandle {
    @usableFromInline
    package var isFailed: Bool { core.isFailed }

    @usableFromInline
    package var failure: (any Error)? { core.failure }

    @usableFromInline
    package func addWaiter(_ waiter: Waiter) -> Bool { core.addWaiter(waiter) }

    @usableFromInline
    package func removeWaiter(_ waiter: Waiter) { core.removeWaiter(waiter) }
}

extension Future: Hashable {
    /// Futures are equal only to themselves.
    public static func == (lhs: Future, rhs: Future) -> Bool { lhs === rhs }

    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

extension Future: CustomStringConvertible {
    /// For example `Future<Int>(state: finished, returned Int)`.
    public var description: String {
        var text = "Future<\(Success.self)>(state: \(state)"
        switch core.settled {
        case .some(.succeeded): text += ", returned \(Success.self)"
        case .some(.failed(let error)): text += ", raised \(type(of: error))"
        default: break
        }
        return text + ")"
    }
}

/// The logger for errors that have no caller to go to: failing done-callbacks and initializers.
package let futuresLogger = Logger(label: "concurrent.futures")

/// The stages a ``Future`` goes through.
public enum FutureState: UInt8, Sendable, Hashable, CustomStringConvertible {
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
