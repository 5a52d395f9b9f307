import DequeModule
import Synchronization

/// Returns `futures` as they complete: those already done first, then in completion order.
/// Python's `as_completed`.
///
/// Duplicates are yielded once. The `timeout` counts from this call; when it passes, the
/// iteration ends with ``ExecutorError`` `.timedOut`, whose message says how many futures are
/// unfinished, such as "2 (of 4) futures unfinished". Unlike CPython (gh-92001), a cancelled
/// future is yielded like any other done future.
///
/// - Parameters:
///   - futures: The futures to watch.
///   - timeout: The longest time the whole iteration may take; `nil` for no limit.
public func asCompleted<Success>(_ futures: some Sequence<Future<Success>>, timeout: Duration? = nil) -> AsCompleted<Success> {
    AsCompleted(futures: futures, deadline: Deadline.after(timeout))
}

/// The futures of ``asCompleted(_:timeout:)``, as a blocking sequence of `Result`s or, through
/// ``values``, an `AsyncSequence`.
public struct AsCompleted<Success: Sendable>: Sequence {
    private let futures: [Future<Success>]
    private let deadline: Deadline?

    fileprivate init(futures: some Sequence<Future<Success>>, deadline: Deadline?) {
        var seen = Set<Future<Success>>()
        self.futures = futures.filter { seen.insert($0).inserted }
        self.deadline = deadline
    }

    /// Waits for each next completed future.
    public struct Iterator: IteratorProtocol {
        private let watch: Watch

        fileprivate init(futures: [Future<Success>], deadline: Deadline?) {
            watch = Watch(futures: futures, deadline: deadline)
        }

        /// The next completed future, or `.failure` with ``ExecutorError`` `.timedOut` when the
        /// timeout passes (the iteration ends there).
        @available(*, noasync, message: "Blocks the thread; iterate 'values' with 'for try await'")
        public mutating func next() -> Result<Future<Success>, any Error>? { watch.next() }
    }

    /// Returns a blocking iterator.
    public func makeIterator() -> Iterator { Iterator(futures: futures, deadline: deadline) }

    /// The completed futures as an `AsyncSequence`, suspending instead of blocking. It throws
    /// ``ExecutorError`` `.timedOut` when the timeout passes.
    public var values: AsyncThrowingStream<Future<Success>, any Error> {
        let futures = self.futures
        let deadline = self.deadline
        return AsyncThrowingStream { continuation in
            let state = StreamState(remaining: futures.count)
            @Sendable func deliver(_ future: Future<Success>) {
                continuation.yield(future)
                if state.remaining.withLock({
                    $0 -= 1
                    return $0 == 0
                }) {
                    continuation.finish()
                }
            }
            if futures.isEmpty { continuation.finish() }
            let pending = futures.filter { future in
                if future.isDone {
                    deliver(future)
                    return false
                }
                return true
            }
            for future in pending {
                if let id = future.addCallbackUnlessDone({ deliver($0) }) {
                    state.registrations.withLock { $0.append((future, id)) }
                } else {
                    deliver(future)
                }
            }
            let timer = deadline.map { deadline in
                Task {
                    try await Task.sleep(for: deadline.remaining)
                    let left = state.remaining.withLock { $0 }
                    continuation.finish(
                        throwing: ExecutorError.timedOut("\(left) (of \(futures.count)) futures unfinished"))
                }
            }
            continuation.onTermination = { _ in
                timer?.cancel()
                for (future, id) in state.registrations.withLock({ $0 }) { future.removeCallback(id) }
            }
        }
    }

    private final class StreamState: Sendable {
        let remaining: Locked<Int>
        let registrations = Locked<[(Future<Success>, UInt64)]>([])
        init(remaining: Int) { self.remaining = Locked(remaining) }
    }

    /// The waiting state of one blocking iteration.
    private final class Watch {
        private var ready: Deque<Future<Success>>
        private var pending: [ObjectIdentifier: Future<Success>] = [:]
        private let total: Int
        private let deadline: Deadline?
        private let waiter = Waiter()
        private var received = 0
        private var ended = false

        init(futures: [Future<Success>], deadline: Deadline?) {
            total = futures.count
            self.deadline = deadline
            ready = Deque(futures.filter { $0.isDone })
            for future in futures where !future.isDone {
                if future.addWaiter(waiter) {
                    pending[ObjectIdentifier(future)] = future
                } else {
                    ready.append(future)
                }
            }
        }

        deinit {
            for future in pending.values { future.removeWaiter(waiter) }
        }

        func next() -> Result<Future<Success>, any Error>? {
            guard !ended else { return nil }
            while ready.isEmpty {
                guard !pending.isEmpty else {
                    ended = true
                    return nil
                }
                let reached = waiter.wait(forNotifications: received + 1, until: deadline)
                for handle in waiter.takeCompleted() {
                    received += 1
                    if let future = pending.removeValue(forKey: ObjectIdentifier(handle)) { ready.append(future) }
                }
                if !reached, ready.isEmpty {
                    ended = true
                    return .failure(ExecutorError.timedOut("\(pending.count) (of \(total)) futures unfinished"))
                }
            }
            return .success(ready.removeFirst())
        }
    }
}
