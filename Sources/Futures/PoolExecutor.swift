/// What every executor offers: Python's `concurrent.futures.Executor`.
///
/// The three executors (``ThreadPoolExecutor``, `InterpreterPoolExecutor`, `ProcessPoolExecutor`)
/// share `submit`, `map`, `shutdown` and the scoped ``run(_:)-1zjcr``, so a program switches
/// between them by changing the type name. Each adds what only it can do (closures on threads,
/// jobs on threads and processes, worker controls on processes).
public protocol PoolExecutor: AnyObject, Sendable {
    /// The most workers the executor runs at once.
    var maxWorkers: Int { get }

    /// The number of workers alive now (threads, or worker processes).
    var workerCount: Int { get }

    /// Schedules `call` and returns the future of its outcome.
    ///
    /// - Throws: ``ExecutorError`` `.shutdown` after ``shutdown(wait:cancelFutures:)``; the
    ///   executor's broken-pool error once it is broken; ``NotShareableError`` when this executor
    ///   cannot run that kind of call (a host closure on an isolating executor).
    func submit<Success: Sendable>(_ call: Call<Success>) throws -> Future<Success>

    /// Schedules every call in `calls` and returns their futures, in order.
    ///
    /// Executors that can queue many calls at once do so atomically: all are queued or none.
    /// The default implementation submits them one by one.
    ///
    /// - Throws: What ``submit(_:)`` throws.
    func submit<Success: Sendable>(contentsOf calls: [Call<Success>]) throws -> [Future<Success>]

    /// Stops accepting work and releases the workers when the queued work is done.
    ///
    /// Calling it again is harmless. With `cancelFutures`, work that has not started is cancelled
    /// (its futures report `.cancelled`); running work always finishes. With `wait`, the call
    /// blocks until every worker has ended. From async code, the async twin of the same name
    /// waits without blocking a thread.
    func shutdown(wait: Bool, cancelFutures: Bool)
}

extension PoolExecutor {
    /// Submits each call in turn and returns their futures in the same order.
    ///
    /// - Throws: What ``submit(_:)`` throws; on a failure, the futures already
    ///   submitted are cancelled (those still queued never run) before the error is rethrown.
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>]) throws -> [Future<Success>] {
        var futures: [Future<Success>] = []
        futures.reserveCapacity(calls.count)
        do {
            for call in calls { futures.append(try submit(call)) }
        } catch {
            for future in futures { future.cancel() }
            throw error
        }
        return futures
    }

    /// Waits for queued work, then releases the workers: `shutdown(wait: true, cancelFutures: false)`.
    @available(*, noasync, message: "Blocks until the workers end; use 'await shutdown(wait:cancelFutures:)'")
    public func shutdown() {
        shutdown(wait: true, cancelFutures: false)
    }

    /// The async twin of ``shutdown(wait:cancelFutures:)``: waits for the workers without
    /// blocking the caller's thread. In async code `await pool.shutdown()` picks it; in
    /// synchronous code the blocking form is the one that applies.
    public func shutdown(wait: Bool = true, cancelFutures: Bool = false) async {
        // The blocking requirement, from closures that are not async.
        let stop: @Sendable () -> Void = { self.shutdown(wait: wait, cancelFutures: cancelFutures) }
        if wait { await runOnDedicatedThread(stop) } else { stop() }
    }

    /// Runs `body` with this executor, then shuts it down and waits for its workers, even when
    /// `body` throws: Python's `with executor:` block.
    ///
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    @available(*, noasync, message: "Blocks in shutdown; use the async form")
    public func run<T>(_ body: (Self) throws -> T) rethrows -> T {
        defer { shutdown(wait: true, cancelFutures: false) }
        return try body(self)
    }

    /// Runs `body` with this executor, then shuts it down and waits for its workers, even when
    /// `body` throws. The async form of Python's `with executor:` block; `body` runs in the
    /// caller's isolation.
    public func run<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (Self) async throws -> T
    ) async rethrows -> T {
        do {
            let value = try await body(self)
            await shutdown(wait: true, cancelFutures: false)
            return value
        } catch {
            await shutdown(wait: true, cancelFutures: false)
            throw error
        }
    }

    /// Submits `makeCall(input)` for each input and returns the results in input order:
    /// the general form of `map`, which each executor's `map` overloads use.
    ///
    /// - Parameters:
    ///   - inputs: The inputs. Without `bufferSize` they are all submitted before `map` returns.
    ///   - timeout: A limit for the whole map, measured from this call.
    ///   - bufferSize: At most this many calls in flight; more are submitted as results are
    ///     consumed, so infinite inputs work.
    ///   - makeCall: Turns an input into a call.
    /// - Throws: ``ExecutorError`` `.invalidArgument` for a `bufferSize` below 1; what
    ///   ``submit(_:)`` throws for the eagerly submitted calls.
    @inlinable
    public func map<Input, Output>(
        _ inputs: some Sequence<Input>,
        timeout: Duration? = nil,
        bufferSize: Int? = nil,
        call makeCall: @escaping (Input) throws -> Call<Output>
    ) throws -> MapResults<Output> {
        try MapResults(
            inputs: inputs, timeout: timeout, bufferSize: bufferSize,
            submit: { [weak self] inputs in
                guard let self else { return nil }
                return try self.submit(contentsOf: inputs.map(makeCall))
            })
    }
}

/// Runs blocking `body` on a new thread and suspends until it returns. When no thread can be
/// started, `body` runs in the calling task instead (blocking it), so that it is never skipped.
package func runOnDedicatedThread(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        do {
            try DetachedThread.start(name: "futures-wait", pool: nil) {
                body()
                continuation.resume()
            }
        } catch {
            body()
            continuation.resume()
        }
    }
}
