import CFuturesShims
import Synchronization

/// Runs Swift closures, jobs and guest functions on a pool of OS threads: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Swift has no global interpreter lock, so native Swift work submitted here runs in parallel
/// on up to ``maxWorkers`` threads. Guest (WebAssembly) functions submitted here all run in the
/// one shared main interpreter, one at a time, behind its lock: the GIL of this world. Use
/// `InterpreterPoolExecutor` to give each worker its own interpreter.
///
/// Threads start lazily, one per submission, and an idle worker is reused before a new one
/// starts. The pool is also a `TaskExecutor`: `Task(executorPreference: pool)` and
/// `withTaskExecutorPreference(pool)` run async code on its threads, keeping blocking work off
/// Swift's cooperative pool.
///
/// - Warning: Calling ``Future/result(timeout:)`` from inside a task on a pool whose every worker
///   is busy waiting the same way deadlocks, as in Python.
public final class ThreadPoolExecutor: JobExecutor {
    /// The most threads the pool runs.
    public let maxWorkers: Int
    /// The prefix of the worker threads' names; threads are named `<prefix>_<n>`.
    public let threadNamePrefix: String

    package let pool: WorkerPool<ThreadContext>

    /// Creates a pool; no thread starts before the first submission.
    ///
    /// - Parameters:
    ///   - maxWorkers: The most threads; `nil` means `min(32, cores + 4)`, as in Python.
    ///   - threadNamePrefix: The prefix of thread names; empty means `ThreadPoolExecutor-<k>`.
    ///   - initializer: A call run once on each worker thread before its first task (a closure,
    ///     `Call { setUp() }`, a job or a guest function; ``Call/discardingResult()`` turns any
    ///     call into one). If it throws, the pool breaks: queued and later work fails with
    ///     ``ExecutorError`` `.brokenThreadPool`.
    ///   - observability: The pool's name in its metrics and spans, and where they go (by default
    ///     the metrics factory and tracer bootstrapped now; docs/observability.md).
    /// - Throws: ``ExecutorError`` `.invalidArgument` when `maxWorkers` is 0 or less.
    public init(
        maxWorkers: Int? = nil,
        threadNamePrefix: String = "",
        initializer: Call<Void>? = nil,
        observability: PoolObservability = PoolObservability()
    ) throws {
        let maxWorkers = try validatedMaxWorkers(maxWorkers, default: min(32, ProcessorCount.available + 4))
        self.maxWorkers = maxWorkers
        self.threadNamePrefix = threadNamePrefix.isEmpty ? "ThreadPoolExecutor-\(nextExecutorNumber())" : threadNamePrefix
        pool = WorkerPool(
            configuration: .init(
                maxWorkers: maxWorkers, threadNamePrefix: self.threadNamePrefix, brokenCode: .brokenThreadPool,
                brokenMessage: "A thread initializer failed, the thread pool is not usable anymore"),
            instruments: PoolInstruments(kind: "thread", observability: observability),
            makeContext: { _ in ThreadContext(initializer: initializer?.localBody) })
    }

    deinit {
        pool.shutdown(wait: false, cancelFutures: false)
    }

    /// The number of worker threads alive now.
    public var workerCount: Int { pool.workerCount }

    /// Schedules `call`; every kind of call runs here, in this process.
    ///
    /// - Throws: ``ExecutorError`` `.shutdown` after shutdown, `.brokenThreadPool` once broken.
    public func submit<Success: Sendable>(_ call: Call<Success>) throws -> Future<Success> {
        try submit(try Self.body(of: call))
    }

    /// Schedules every call in `calls` with one acquisition of the queue's lock.
    ///
    /// - Throws: ``ExecutorError`` `.shutdown` after shutdown, `.brokenThreadPool` once broken;
    ///   then none of the calls is queued.
    @inlinable
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>]) throws -> [Future<Success>] {
        try submit(contentsOf: calls.map { try Self.body(of: $0) })
    }

    @inlinable
    static func body<Success>(of call: Call<Success>) throws -> @Sendable () throws -> Success {
        guard let local = call.localBody else {
            throw NotShareableError("\(call.summary) cannot run in this process")
        }
        return local
    }

    /// Schedules `body` and returns the future of its outcome.
    ///
    /// - Throws: ``ExecutorError`` `.shutdown` after shutdown, `.brokenThreadPool` once broken.
    @inlinable
    public func submit<Success: Sendable>(_ body: @escaping @Sendable () throws -> Success) throws -> Future<Success> {
        let future = Future<Success>()
        try enqueue(Self.task(body, future))
        return future
    }

    /// Schedules every closure in `bodies` with one acquisition of the queue's lock.
    ///
    /// - Throws: ``ExecutorError`` `.shutdown` after shutdown, `.brokenThreadPool` once broken;
    ///   then none is queued.
    @inlinable
    public func submit<Success: Sendable>(
        contentsOf bodies: [@Sendable () throws -> Success]
    ) throws -> [Future<Success>] {
        let (futures, tasks) = Future<Success>.withTasks(for: bodies) { body, future in Self.task(body, future) }
        try enqueue(contentsOf: tasks)
        return futures
    }

    /// Queues one task (non-generic, so the pool's code stays specialized in this module).
    @usableFromInline
    func enqueue(_ task: ThreadTask) throws(ExecutorError) {
        try pool.submit(task)
    }

    /// Queues tasks under one acquisition of the pool's lock.
    @usableFromInline
    func enqueue(contentsOf tasks: [ThreadTask]) throws(ExecutorError) {
        try pool.submit(contentsOf: tasks)
    }

    @inlinable
    static func task<Success>(
        _ body: @escaping @Sendable () throws -> Success, _ future: Future<Success>
    ) -> ThreadTask {
        ThreadTask(future: future) {
            let outcome = Result { try body() }
            return { future.complete(outcome) }
        }
    }

    /// Runs `transform` over `inputs` on the pool, results in input order.
    /// See ``PoolExecutor/map(_:timeout:bufferSize:call:)`` for `timeout` and `bufferSize`.
    ///
    /// - Throws: ``ExecutorError`` `.invalidArgument` for a bad `bufferSize`; what `submit` throws.
    @inlinable
    public func map<Input: Sendable, Output: Sendable>(
        _ inputs: some Sequence<Input>,
        timeout: Duration? = nil,
        bufferSize: Int? = nil,
        _ transform: @escaping @Sendable (Input) throws -> Output
    ) throws -> MapResults<Output> {
        try MapResults(
            inputs: inputs, timeout: timeout, bufferSize: bufferSize,
            submit: { [weak self] inputs in
                try self?.submit(contentsOf: inputs.map { input in { try transform(input) } })
            })
    }

    /// Stops accepting work and ends the worker threads once the queue drains.
    /// See ``PoolExecutor/shutdown(wait:cancelFutures:)``; it never throws.
    public func shutdown(wait: Bool, cancelFutures: Bool) {
        pool.shutdown(wait: wait, cancelFutures: cancelFutures)
    }
}

/// The thread pool's worker context: it owns nothing and calls the closure.
package struct ThreadContext: WorkerContext {
    let initializer: (@Sendable () throws -> Void)?

    package mutating func initialize() throws { try initializer?() }
    package mutating func run(_ task: ThreadTask) throws -> ThreadTask.Output { task.body() }
    package mutating func finalize() {}
}

/// A closure queued on a thread pool. Running it returns the step that resolves its future,
/// which the pool takes after marking the worker idle.
@usableFromInline
package struct ThreadTask: SingleFutureTask {
    package typealias Output = @Sendable () -> Void

    package let future: (any FutureHandle)?
    let body: @Sendable () -> Output

    @usableFromInline
    package init(future: (any FutureHandle)?, body: @escaping @Sendable () -> @Sendable () -> Void) {
        self.future = future
        self.body = body
    }

    package func finish(_ outcome: Result<Output, any Error>) {
        if case .success(let publish) = outcome { publish() }
    }
}

private let executorCounter = Atomic<Int>(0)

/// The next number for a default thread name prefix, shared by the thread-based executors as
/// Python shares one counter between `ThreadPoolExecutor` and `InterpreterPoolExecutor`.
package func nextExecutorNumber() -> Int {
    executorCounter.wrappingAdd(1, ordering: .relaxed).oldValue
}

/// The number of CPUs this process may run on.
package enum ProcessorCount {
    package static var available: Int { max(1, Int(cf_available_cpus())) }
}
