import Synchronization

extension Future {
    /// The value, awaited without blocking a thread.
    ///
    /// Cancelling the awaiting task cancels the future when it has not started yet (the error is
    /// then ``ExecutorError`` `.cancelled`); a running future cannot be cancelled, so the task
    /// keeps waiting for its outcome.
    ///
    /// - Throws: The error the work threw, or ``ExecutorError`` `.cancelled`.
    public var value: Success {
        get async throws {
            try await withTaskCancellationHandler {
                try await awaitOutcome(until: nil).get().get()
            } onCancel: {
                self.cancel()
            }
        }
    }

    /// Returns the value, suspending up to `timeout` (forever when `nil`). The async twin of the
    /// blocking ``result(timeout:)``; task cancellation is not forwarded to the future.
    ///
    /// - Throws: The error the work threw; ``ExecutorError`` `.cancelled` or `.timedOut`.
    public func result(timeout: Duration? = nil) async throws -> Success {
        try await awaitOutcome(until: Deadline.after(timeout)).get().get()
    }

    /// Returns the error the work threw, or `nil`, suspending up to `timeout`. The async twin of
    /// the blocking ``exception(timeout:)``.
    ///
    /// - Throws: ``ExecutorError`` `.cancelled` or `.timedOut`.
    public func exception(timeout: Duration? = nil) async throws -> (any Error)? {
        switch try await awaitOutcome(until: Deadline.after(timeout)).get() {
        case .success: return nil
        case .failure(let error): return error
        }
    }

    /// Suspends until the future is done or `deadline` passes. The outer result fails with
    /// ``ExecutorError`` `.cancelled` or `.timedOut`; the inner one is the work's outcome.
    package func awaitOutcome(until deadline: Deadline?) async -> Result<Result<Success, any Error>, ExecutorError> {
        if let settled = settledOutcome() { return settled }
        if let deadline, deadline.hasPassed { return settledOutcome() ?? .failure(Self.timeoutError) }
        let resumer = Resumer<Result<Result<Success, any Error>, ExecutorError>>()
        return await withCheckedContinuation { continuation in
            resumer.install(continuation)
            let id = addCallbackUnlessDone { future in
                resumer.resume(with: future.settledOutcome()!)
            }
            guard let id else {
                resumer.resume(with: settledOutcome()!)
                return
            }
            if let deadline {
                let timer = Task {
                    try? await Task.sleep(for: deadline.remaining)
                    self.removeCallback(id)
                    resumer.resume(with: self.settledOutcome() ?? .failure(Self.timeoutError))
                }
                resumer.onResume { timer.cancel() }
            }
        }
    }
}

/// Resumes a continuation exactly once, whoever gets there first.
package final class Resumer<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, Never>?
        var resumed = false
        var onResume: [@Sendable () -> Void] = []
    }
    private let state = Locked(State())

    package init() {}

    package func install(_ continuation: CheckedContinuation<T, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Runs `action` after the first resumption (at once if it already happened).
    package func onResume(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.resumed { return true }
            state.onResume.append(action)
            return false
        }
        if runNow { action() }
    }

    package func resume(with value: T) {
        let taken: (CheckedContinuation<T, Never>, [@Sendable () -> Void])? = state.withLock { state in
            guard !state.resumed, let continuation = state.continuation else { return nil }
            state.resumed = true
            state.continuation = nil
            let actions = state.onResume
            state.onResume = []
            return (continuation, actions)
        }
        guard let (continuation, actions) = taken else { return }
        continuation.resume(returning: value)
        for action in actions { action() }
    }
}
