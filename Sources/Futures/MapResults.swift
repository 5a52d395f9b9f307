/// The results of an executor's `map`, in input order: Python's `Executor.map` iterator.
///
/// Iterate it as a blocking sequence of `Result`s, call ``collect()`` for an array, or use
/// ``values`` as an `AsyncSequence` from async code. Either way:
/// - results come in input order, whatever order the calls finish in;
/// - the `timeout` given to `map` is a deadline for the whole iteration, measured from the call;
/// - with a `bufferSize`, at most that many calls are in flight; each step submits one more;
/// - when a call fails or times out, that error is the last element, and every call not yet
///   started is cancelled; the same happens when iteration stops early (the iterator is dropped
///   after its first step);
/// - without a `bufferSize`, every call is submitted before `map` returns and runs even if the
///   results are never read: dropping the results unread cancels nothing, as in Python. With a
///   `bufferSize`, dropping them cancels the calls in flight that have not started.
///
/// Results are released as they are yielded: the sequence keeps only those not yet consumed.
///
/// The sequence is single-pass: a second iteration continues where the first stopped.
public struct MapResults<Element: Sendable>: Sequence {
    @usableFromInline
    let state: MapState<Element>

    /// Starts a map. `submit` schedules a batch of inputs and returns their futures in order,
    /// or `nil` when the executor is gone.
    @inlinable
    package init<Input>(
        inputs: some Sequence<Input>,
        timeout: Duration?,
        bufferSize: Int?,
        submit: @escaping ([Input]) throws -> [Future<Element>]?
    ) throws {
        state = try MapState(inputs: inputs, timeout: timeout, bufferSize: bufferSize, submit: submit)
    }

    /// A blocking iterator; each step waits for the next result in input order.
    public struct Iterator: IteratorProtocol {
        @usableFromInline
        let state: MapState<Element>
        @usableFromInline
        let stopper: Stopper

        @inlinable
        init(state: MapState<Element>) {
            self.state = state
            stopper = Stopper(state)
        }

        /// The next result: `.success` with the value, or `.failure` with the error that ended
        /// the map (after which the iteration is over).
        @available(*, noasync, message: "Blocks the thread; iterate 'values' with 'for try await'")
        @inlinable
        public mutating func next() -> Result<Element, any Error>? {
            guard let future = state.nextFuture() else { return nil }
            switch future {
            case .failure(let error): return .failure(error)
            case .success(let future):
                do {
                    let outcome = try future.waitForOutcome(until: state.deadline)
                    future.dropValue()
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
    @inlinable
    public func makeIterator() -> Iterator { Iterator(state: state) }

    /// Waits for every result and returns them in input order.
    ///
    /// - Throws: The first error in input order (a call's error, ``ExecutorError`` `.timedOut`,
    ///   or `.cancelled`); the calls not yet started are then cancelled.
    @available(*, noasync, message: "Blocks the thread; use 'values' with 'for try await'")
    @inlinable
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
    let state: MapState<Element>

    /// Awaits results in input order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let state: MapState<Element>
        let stopper: Stopper

        init(state: MapState<Element>) {
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
                future.dropValue()
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

/// Ends the map when the iterator that owns it is dropped, as Python closes a map generator:
/// only once iteration started (a generator never started has nothing to close), or when the
/// map is buffered.
@usableFromInline
final class Stopper: Sendable {
    private let stop: @Sendable () -> Void
    @usableFromInline
    init<Element>(_ state: MapState<Element>) { stop = { state.stopIfStartedOrBuffered() } }
    deinit { stop() }
}

/// The shared state of one `map`: the futures in input order and the inputs not yet submitted.
@usableFromInline
final class MapState<Element: Sendable>: @unchecked Sendable {
    @usableFromInline
    let deadline: Deadline?
    @usableFromInline
    let lock = ConditionLock()
    /// The submitted futures; those before `head` were handed out already. Their values are
    /// dropped when they are yielded (``Future/dropValue()``), so consumed results are
    /// not kept alive; the emptied futures go in batches. (Freeing each future as it is yielded,
    /// while the workers run, made every step of a map measurably slower.)
    @usableFromInline
    var futures: [Future<Element>] = []
    @usableFromInline
    var head = 0
    @usableFromInline
    var pull: (() throws -> Future<Element>?)?
    @usableFromInline
    var finished = false
    /// Whether iteration took a first step.
    @usableFromInline
    var started = false
    /// Whether the map keeps a bounded window of calls in flight (`bufferSize`).
    @usableFromInline
    let isBuffered: Bool

    /// Inputs submitted at once by an unbuffered map, so that one lock acquisition queues many.
    @inlinable
    static var batchSize: Int { 256 }

    @inlinable
    init<Input>(
        inputs: some Sequence<Input>,
        timeout: Duration?,
        bufferSize: Int?,
        submit: @escaping ([Input]) throws -> [Future<Element>]?
    ) throws {
        if let bufferSize, bufferSize < 1 {
            throw ExecutorError(.invalidArgument, "bufferSize must be nil or > 0, got \(bufferSize)")
        }
        deadline = Deadline.after(timeout)
        isBuffered = bufferSize != nil
        var iterator = inputs.makeIterator()
        // Submits up to `count` more inputs and returns their futures.
        let pull: (Int) throws -> [Future<Element>] = { count in
            var batch: [Input] = []
            batch.reserveCapacity(count)
            while batch.count < count, let input = iterator.next() { batch.append(input) }
            guard !batch.isEmpty else { return [] }
            return try submit(batch) ?? []
        }
        do {
            if let bufferSize {
                futures.append(contentsOf: try pull(bufferSize))
                self.pull = { try pull(1).first }
            } else {
                while true {
                    let submitted = try pull(Self.batchSize)
                    if submitted.isEmpty { break }
                    futures.append(contentsOf: submitted)
                }
            }
        } catch {
            for future in futures { future.cancel() }
            throw error
        }
    }

    @inlinable
    deinit {
        if started || isBuffered {
            for future in futures[head...] { future.cancel() }
        }
    }

    /// Submits one more input when buffered, then removes and returns the oldest future.
    /// Returns `nil` at the end; a failed submission ends the map with that error.
    @inlinable
    func nextFuture() -> Result<Future<Element>, any Error>? {
        lock.withLock {
            started = true
            guard !finished else { return nil }
            if let pull {
                do {
                    if let future = try pull() { futures.append(future) } else { self.pull = nil }
                } catch {
                    finished = true
                    self.pull = nil
                    for future in futures[head...] { future.cancel() }
                    futures.removeAll()
                    head = 0
                    return .failure(error)
                }
            }
            guard head < futures.count else {
                finished = true
                return nil
            }
            let future = futures[head]
            head += 1
            if head >= 1024, head * 2 >= futures.count {
                futures.removeFirst(head)
                head = 0
            }
            return .success(future)
        }
    }

    /// Ends the map, cancelling every call not yet started.
    @inlinable
    func abort() {
        let cancelled: ArraySlice<Future<Element>> = lock.withLock {
            finished = true
            pull = nil
            let taken = futures[head...]
            futures.removeAll()
            head = 0
            return taken
        }
        for future in cancelled { future.cancel() }
    }

    /// What dropping an iterator does: ends the map once iteration started, or when buffered.
    func stopIfStartedOrBuffered() {
        let stop = lock.withLock { started || isBuffered }
        if stop { abort() }
    }
}
