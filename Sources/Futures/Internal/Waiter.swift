/// What a future tells the threads blocked on it when it completes.
///
/// One waiter can watch many futures (`wait`, `asCompleted`): each completion is recorded in
/// order, so a waiting thread only looks at what changed instead of re-scanning every future.
@usableFromInline
package final class Waiter: @unchecked Sendable {
    private let lock = ConditionLock()
    private var completed: [any FutureHandle] = []
    private var notifications = 0

    package init() {}

    /// Called by a future, outside its own lock, when it becomes done.
    package func notify(_ future: any FutureHandle) {
        lock.lock()
        completed.append(future)
        notifications += 1
        lock.signal()
        lock.unlock()
    }

    /// Blocks until at least `count` notifications arrived in total, or `deadline` passes.
    /// Returns whether the count was reached.
    package func wait(forNotifications count: Int, until deadline: Deadline?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        while notifications < count {
            if !lock.wait(until: deadline) { return notifications >= count }
        }
        return true
    }

    /// Removes and returns the futures that completed since the last call, in completion order.
    package func takeCompleted() -> [any FutureHandle] {
        lock.withLock {
            let taken = completed
            completed.removeAll(keepingCapacity: true)
            return taken
        }
    }
}

/// The untyped face of a ``Future``, used by pools and by `wait`/`asCompleted`.
@usableFromInline
package protocol FutureHandle: AnyObject, Sendable {
    /// Marks the future running, or reports that it was cancelled (`false`).
    func setRunningOrNotifyCancel() throws(ExecutorError) -> Bool
    /// Fails the future; throws when it is already resolved.
    func setError(_ error: any Error) throws(ExecutorError)
    /// Cancels the future when it has not started.
    @discardableResult func cancel() -> Bool
    /// Cancels a future marked running whose call never started after all (a remote worker
    /// dropped it); does nothing to a finished or cancelled one.
    func withdraw()
    /// Whether the future finished or was cancelled.
    var isDone: Bool { get }
    /// Whether the future finished with an error (cancellation is not an error here).
    var isFailed: Bool { get }
    /// Whether the future was cancelled.
    var isCancelled: Bool { get }
    /// The error the future finished with, if it did (for metrics, once it is done).
    var failure: (any Error)? { get }
    /// Registers `waiter` unless the future is already done; returns whether it was registered.
    func addWaiter(_ waiter: Waiter) -> Bool
    /// Unregisters `waiter`.
    func removeWaiter(_ waiter: Waiter)
}
