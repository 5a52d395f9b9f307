import Synchronization

/// When ``wait(_:timeout:returnWhen:)`` returns: Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`
/// and `ALL_COMPLETED`.
public enum ReturnWhen: Sendable, Hashable {
    /// As soon as any future finishes or is cancelled.
    case firstCompleted
    /// As soon as any future finishes with an error; when none does, when all are done.
    case firstError
    /// When every future is done.
    case allCompleted
}

/// The two sets ``wait(_:timeout:returnWhen:)`` returns: Python's `DoneAndNotDoneFutures`.
public struct DoneAndNotDone<Success: Sendable>: Sendable {
    /// The futures that finished or were cancelled.
    public let done: Set<Future<Success>>
    /// The others.
    public let notDone: Set<Future<Success>>
}

/// Blocks until `futures` meet `returnWhen`, or `timeout` passes, and returns which are done.
///
/// Duplicates count once. A timeout is not an error: the partition is returned as it stands.
/// Unlike CPython (gh-92001), cancelled futures count as done, however they were cancelled.
///
/// - Parameters:
///   - futures: The futures to watch.
///   - timeout: The longest wait; `nil` waits as long as it takes.
///   - returnWhen: The condition to wait for.
@available(*, noasync, message: "Blocks the thread; use the async form")
public func wait<Success>(
    _ futures: some Sequence<Future<Success>>,
    timeout: Duration? = nil,
    returnWhen: ReturnWhen = .allCompleted
) -> DoneAndNotDone<Success> {
    let deadline = Deadline.after(timeout)
    let unique = Array(Set(futures))
    var progress = WaitProgress(total: unique.count, returnWhen: returnWhen)
    for future in unique where future.isDone { progress.record(future) }
    if !progress.isSatisfied {
        let waiter = Waiter()
        for future in unique where !future.isDone || !progress.contains(future) {
            if !future.addWaiter(waiter), !progress.contains(future) { progress.record(future) }
        }
        var received = 0
        while !progress.isSatisfied {
            let reached = waiter.wait(forNotifications: received + 1, until: deadline)
            for handle in waiter.takeCompleted() {
                received += 1
                if let future = handle as? Future<Success> { progress.record(future) }
            }
            if !reached { break }
        }
        for future in unique { future.removeWaiter(waiter) }
    }
    return partition(unique)
}

/// Suspends until `futures` meet `returnWhen`, or `timeout` passes, and returns which are done.
/// The async twin of the blocking ``wait(_:timeout:returnWhen:)``, with the same rules.
public func wait<Success>(
    _ futures: some Sequence<Future<Success>>,
    timeout: Duration? = nil,
    returnWhen: ReturnWhen = .allCompleted
) async -> DoneAndNotDone<Success> {
    let deadline = Deadline.after(timeout)
    let unique = Array(Set(futures))
    let progress = Locked(WaitProgress(total: unique.count, returnWhen: returnWhen))
    let resumer = Resumer<Void>()
    let registrations = Locked<[(Future<Success>, UInt64)]>([])
    await withCheckedContinuation { continuation in
        resumer.install(continuation)
        for future in unique {
            let id = future.addCallbackUnlessDone { future in
                if progress.withLock({
                    $0.record(future)
                    return $0.isSatisfied
                }) {
                    resumer.resume(with: ())
                }
            }
            if let id {
                registrations.withLock { $0.append((future, id)) }
            } else if progress.withLock({
                $0.record(future)
                return $0.isSatisfied
            }) {
                resumer.resume(with: ())
            }
        }
        if progress.withLock({ $0.isSatisfied }) { resumer.resume(with: ()) }
        if let deadline {
            let timer = Task {
                try? await Task.sleep(for: deadline.remaining)
                resumer.resume(with: ())
            }
            resumer.onResume { timer.cancel() }
        }
    }
    for (future, id) in registrations.withLock({ $0 }) { future.removeCallback(id) }
    return partition(unique)
}

private func partition<Success>(_ futures: [Future<Success>]) -> DoneAndNotDone<Success> {
    var done = Set<Future<Success>>()
    var notDone = Set<Future<Success>>()
    for future in futures {
        if future.isDone { done.insert(future) } else { notDone.insert(future) }
    }
    return DoneAndNotDone(done: done, notDone: notDone)
}

/// Counts completions against a ``ReturnWhen`` condition.
private struct WaitProgress {
    let total: Int
    let returnWhen: ReturnWhen
    private var seen = Set<ObjectIdentifier>()
    private var sawError = false

    init(total: Int, returnWhen: ReturnWhen) {
        self.total = total
        self.returnWhen = returnWhen
    }

    func contains(_ future: some FutureHandle) -> Bool { seen.contains(ObjectIdentifier(future)) }

    mutating func record(_ future: some FutureHandle) {
        guard seen.insert(ObjectIdentifier(future)).inserted else { return }
        if future.isFailed { sawError = true }
    }

    var isSatisfied: Bool {
        switch returnWhen {
        case .firstCompleted: return !seen.isEmpty || total == 0
        case .firstError: return sawError || seen.count == total
        case .allCompleted: return seen.count == total
        }
    }
}
