import Synchronization

/// The state machine of a ``Future``, without its value type.
///
/// Keeping `ShareableValue` out of the locked state means that code which is generic over the value
/// (most of this module, seen from a client) does not instantiate generic metadata on every
/// transition; only the one stored value is typed.
@usableFromInline
package final class FutureCore: @unchecked Sendable {
    typealias State = FutureState

    /// The observers to notify after a transition, taken out of the lock.
    @usableFromInline
    package struct Observers {
        let waiters: [Waiter]
        let callbacks: [@Sendable () -> Void]

        @usableFromInline
        func notify(_ future: some FutureHandle) {
            for waiter in waiters { waiter.notify(future) }
            for callback in callbacks { callback() }
        }
    }

    /// How a done future ended.
    @usableFromInline
    package enum Settled {
        case succeeded
        case failed(any Error)
        case cancelled
    }

    @usableFromInline
    package enum CancelOutcome {
        case refused
        case alreadyCancelled
        case cancelled(Observers)
    }

    private struct Storage {
        var state: State = .pending
        var error: (any Error)?
        var waiters: [Waiter] = []
        var callbacks: [(id: UInt64, body: @Sendable () -> Void)] = []
        var nextCallbackID: UInt64 = 0

        mutating func takeObservers() -> Observers {
            let observers = Observers(waiters: waiters, callbacks: callbacks.map { $0.body })
            waiters = []
            callbacks = []
            return observers
        }

        var settled: Settled? {
            switch state {
            case .pending, .running: return nil
            case .cancelled: return .cancelled
            case .finished: return error.map { .failed($0) } ?? .succeeded
            }
        }
    }

    private let mutex = PThreadMutex()
    /// Read and written only with `mutex` held.
    private var storage = Storage()
    /// A copy of `storage.state`, written under the lock and read without it, so that observers
    /// (and waiters spinning before they block) do not contend with the worker resolving it.
    private let published = Atomic<UInt8>(FutureState.pending.rawValue)
    /// Set, before `published` says finished, when the future finished with an error: so that
    /// the pool's metrics learn a success without taking the lock.
    private let publishedFailure = Atomic<Bool>(false)

    @usableFromInline
    package init() {}

    deinit { mutex.destroy() }

    /// Runs `body` with the state locked.
    private func withStorage<T>(_ body: (inout Storage) throws -> T) rethrows -> T {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&storage)
    }

    @usableFromInline
    var state: FutureState { FutureState(rawValue: published.load(ordering: .acquiring))! }

    private var isDone: Bool {
        let state = published.load(ordering: .acquiring)
        return state == FutureState.finished.rawValue || state == FutureState.cancelled.rawValue
    }

    @usableFromInline
    var settled: Settled? { withStorage { $0.settled } }

    var isFailed: Bool { withStorage { $0.state == .finished && $0.error != nil } }

    /// The error a finished future holds; `nil` without taking the lock when it succeeded.
    var failure: (any Error)? {
        guard publishedFailure.load(ordering: .acquiring) else { return nil }
        return withStorage { $0.error }
    }

    /// Moves to `.finished`, running `store` under the lock first. Returns `nil` when the future
    /// was already finished or cancelled (then `store` does not run).
    @usableFromInline
    func finish(error: (any Error)?, store: () -> Void) -> Observers? {
        withStorage { storage in
            switch storage.state {
            case .finished, .cancelled: return nil
            case .pending, .running:
                store()
                storage.error = error
                storage.state = .finished
                if error != nil { publishedFailure.store(true, ordering: .releasing) }
                published.store(FutureState.finished.rawValue, ordering: .releasing)
                return storage.takeObservers()
            }
        }
    }

    @usableFromInline
    func cancel() -> CancelOutcome {
        withStorage { storage in
            switch storage.state {
            case .running, .finished: return .refused
            case .cancelled: return .alreadyCancelled
            case .pending:
                storage.state = .cancelled
                published.store(FutureState.cancelled.rawValue, ordering: .releasing)
                return .cancelled(storage.takeObservers())
            }
        }
    }

    /// Moves a pending or running future to `.cancelled`; `nil` when it is already done.
    func withdraw() -> Observers? {
        withStorage { storage in
            switch storage.state {
            case .finished, .cancelled: return nil
            case .pending, .running:
                storage.state = .cancelled
                published.store(FutureState.cancelled.rawValue, ordering: .releasing)
                return storage.takeObservers()
            }
        }
    }

    @usableFromInline
    func setRunningOrNotifyCancel() throws(ExecutorError) -> Bool {
        let state = withStorage { storage in
            let old = storage.state
            if old == .pending {
                storage.state = .running
                published.store(FutureState.running.rawValue, ordering: .releasing)
            }
            return old
        }
        switch state {
        case .pending: return true
        case .cancelled: return false
        case .running, .finished: throw ExecutorError(.invalidState, "future in unexpected state: \(state)")
        }
    }

    func addCallbackUnlessDone(_ callback: @escaping @Sendable () -> Void) -> UInt64? {
        withStorage { storage in
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

    func removeCallback(_ id: UInt64) {
        withStorage { $0.callbacks.removeAll { $0.id == id } }
    }

    func addWaiter(_ waiter: Waiter) -> Bool {
        withStorage { storage in
            switch storage.state {
            case .finished, .cancelled: return false
            case .pending, .running:
                storage.waiters.append(waiter)
                return true
            }
        }
    }

    func removeWaiter(_ waiter: Waiter) {
        withStorage { $0.waiters.removeAll { $0 === waiter } }
    }

    /// Waits until done or `deadline`. Returns the error of a failed future, `nil` for success.
    ///
    /// Before blocking, the caller yields its CPU a few times: a future that is about to be
    /// resolved (the common case when collecting `map` results from busy workers) is then picked
    /// up without the two context switches of a sleep and a wake-up.
    @usableFromInline
    func waitUntilDone(until deadline: Deadline?) throws(ExecutorError) -> (any Error)? {
        var spins = 0
        var waiter: Waiter?
        while true {
            if spins < Self.spinLimit, !isDone {
                spins += 1
                if let deadline, deadline.hasPassed { spins = Self.spinLimit } else { yieldProcessor() }
                continue
            }
            let settled: Settled? = withStorage { storage in
                if let settled = storage.settled { return settled }
                if spins >= Self.spinLimit, waiter == nil, deadline.map({ !$0.hasPassed }) ?? true {
                    let newWaiter = Waiter()
                    storage.waiters.append(newWaiter)
                    waiter = newWaiter
                }
                return nil
            }
            switch settled {
            case .succeeded: return nil
            case .failed(let error): return error
            case .cancelled: throw ExecutorError.cancelled
            case nil: break
            }
            guard let waiter, waiter.wait(forNotifications: 1, until: deadline) else {
                if let waiter { removeWaiter(waiter) }
                switch withStorage({ $0.settled }) {
                case .succeeded: return nil
                case .failed(let error): return error
                case .cancelled: throw ExecutorError.cancelled
                case nil: throw Future<Never>.timeoutError
                }
            }
        }
    }

    /// How many times a waiter yields before it blocks.
    static let spinLimit = 16
}
