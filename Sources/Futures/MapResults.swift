import DequeModule

/// The results of an executor's `map`, in input order: Python's `Executor.map` iterator.
///
/// Iterate it as a blocking sequence of `Result`s, call ``collect()`` for an array, or use
/// ``values`` as an `AsyncSequence` from async code. Either way:
/// - results come in input order, whatever order the calls finish in;
/// - the `timeout` given to `map` is a deadline for the whole iteration, measured from the call;
/// - with a `bufferSize`, at most that many calls are in flight; each step submits one more;
/// - when a call fails or times out, that error is the last element, and every call not yet
///   started is cancelled; the same happens when iteration stops early (the iterator is dropped).
///
/// The sequence is single-pass: a second iteration continues where the first stopped.
public struct MapResults<Element: Sendable>: Sequence {
    private let state: MapState<Element>

    package init<Input>(
        inputs: some Sequence<Input>,
        timeout: Duration?,
        bufferSize: Int?,
        submit: @escaping (Input) throws -> Future<Element>?
    ) throws {
        state = try MapState(inputs: inputs, timeout: timeout, bufferSize: bufferSize, submit: submit)
    }

    /// A blocking iterator; each step waits for the next result in input order.
    public struct Iterator: IteratorProtocol {
        fileprivate let state: MapState<Element>
        private let stopper: Stopper

        fileprivate init(state: MapState<Element>) {
            self.state = state
            stopper = Stopper(state)
        }

        /// The next result: `.success` with the value, or `.failure` with the error that ended
        /// the map (after which the iteration is over).
        @available(*, noasync, message: "Blocks the thread; iterate 'values' with 'for try await'")
        public mutating func next() -> Result<Element, any Error>? {
            guard let future = state.nextFuture() else { return nil }
            switch future {
            case .failure(let error): return .failure(error)
            case .success(let future):
                do {
                    let outcome = try future.waitForOutcome(until: state.deadline)
                    if case .failure = outcome { state.abort() }
                    return outcome
                } catch {
                    future.cancel()
                    state.abort()
                    return .failure(error)
                }
            }
        }
    }

    /// Returns a blocking iterator over the results.
    public func makeIterator() -> Iterator { Iterator(state: state) }

    /// Waits for every result and returns them in input order.
    ///
    /// - Throws: The first error in input order (a call's error, ``ExecutorError`` `.timedOut`,
    ///   or `.cancelled`); the calls not yet started are then cancelled.
    @available(*, noasync, message: "Blocks the thread; use 'values' with 'for try await'")
    public func collect() throws -> [Element] {
        var values: [Element] = []
        for result in self { values.append(try result.get()) }
        return values
    }

    /// The results as an `AsyncSequence`, awaited without blocking a thread. Cancelling the
    /// consuming task stops the map and cancels the calls not yet started.
    public var values: AsyncMapResults<Element> { AsyncMapResults(state: state) }
}

/// The results of an executor's `map` as an `AsyncSequence`, in input order. See ``MapResults``.
public struct AsyncMapResults<Element: Sendable>: AsyncSequence, Sendable {
    fileprivate let state: MapState<Element>

    /// Awaits results in input order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate let state: MapState<Element>
        private let stopper: Stopper

        fileprivate init(state: MapState<Element>) {
            self.state = state
            stopper = Stopper(state)
        }

        /// The next value, or `nil` at the end.
        ///
        /// - Throws: A call's error, ``ExecutorError`` `.timedOut` or `.cancelled`, or
        ///   `CancellationError` when the consuming task is cancelled. The map is over after a throw.
        public mutating func next() async throws -> Element? {
            if Task.isCancelled {
                state.abort()
                throw CancellationError()
            }
            guard let next = state.nextFuture() else { return nil }
            let future = try next.get()
            let outcome = await withTaskCancellationHandler {
                await future.awaitOutcome(until: state.deadline)
            } onCancel: {
                future.cancel()
            }
            switch outcome {
            case .success(.success(let value)):
                return value
            case .success(.failure(let error)):
                state.abort()
                throw error
            case .failure(let error):
                future.cancel()
                state.abort()
                if Task.isCancelled { throw CancellationError() }
                throw error
            }
        }
    }

    /// Returns an iterator.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(state: state) }
}

/// Ends the map when the iterator that owns it is dropped, as Python closes a map generator.
private final class Stopper: Sendable {
    private let abort: @Sendable () -> Void
    init<Element>(_ state: MapState<Element>) { abort = { state.abort() } }
    deinit { abort() }
}

/// The shared state of one `map`: the futures in input order and the inputs not yet submitted.
private final class MapState<Element: Sendable>: @unchecked Sendable {
    let deadline: Deadline?
    private let lock = ConditionLock()
    private var pending = Deque<Future<Element>>()
    private var pull: (() throws -> Future<Element>?)?
    private var finished = false

    init<Input>(
        inputs: some Sequence<Input>,
        timeout: Duration?,
        bufferSize: Int?,
        submit: @escaping (Input) throws -> Future<Element>?
    ) throws {
        if let bufferSize, bufferSize < 1 {
            throw ExecutorError(.invalidArgument, "bufferSize must be nil or > 0, got \(bufferSize)")
        }
        deadline = Deadline.after(timeout)
        var iterator = inputs.makeIterator()
        let pull: () throws -> Future<Element>? = {
            guard let input = iterator.next() else { return nil }
            return try submit(input)
        }
        do {
            if let bufferSize {
                for _ in 0..<bufferSize {
                    guard let future = try pull() else { break }
                    pending.append(future)
                }
                self.pull = pull
            } else {
                while let future = try pull() { pending.append(future) }
            }
        } catch {
            for future in pending { future.cancel() }
            throw error
        }
    }

    deinit {
        for future in pending { future.cancel() }
    }

    /// Submits one more input when buffered, then removes and returns the oldest future.
    /// Returns `nil` at the end; a failed submission ends the map with that error.
    func nextFuture() -> Result<Future<Element>, any Error>? {
        lock.withLock {
            guard !finished else { return nil }
            if let pull {
                do {
                    if let future = try pull() { pending.append(future) } else { self.pull = nil }
                } catch {
                    finished = true
                    self.pull = nil
                    for future in pending { future.cancel() }
                    pending.removeAll()
                    return .failure(error)
                }
            }
            guard let future = pending.popFirst() else {
                finished = true
                return nil
            }
            return .success(future)
        }
    }

    /// Ends the map, cancelling every call not yet started.
    func abort() {
        let cancelled: Deque<Future<Element>> = lock.withLock {
            finished = true
            pull = nil
            let taken = pending
            pending.removeAll()
            return taken
        }
        for future in cancelled { future.cancel() }
    }
}
