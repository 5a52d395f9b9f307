public import Futures
import Tracing

/// Runs guest functions in parallel, each worker thread in its own isolated interpreter: Python's
/// `concurrent.futures.InterpreterPoolExecutor`.
///
/// This is ``Futures/ThreadPoolExecutor``'s pool with a different worker context: each worker
/// thread owns one ``Interpreter``, created when the worker starts (with the pool's modules
/// loaded and the initializer run) and closed when it ends. Everything else (lazy start, idle
/// reuse, `map`, `shutdown`, cancellation) is the thread pool's.
///
/// A guest that traps, runs out of fuel or passes a bad pointer fails only its own task with
/// ``GuestError``; the worker replaces the interpreter's instances and keeps serving. Host
/// closures and Swift jobs cannot run here: they are host code, and submitting them through the
/// ``Futures/PoolExecutor`` protocol fails with ``Futures/NotShareableError``.
public final class InterpreterPoolExecutor: PoolExecutor {
    /// The most workers (threads, each with an interpreter).
    public let maxWorkers: Int
    /// The prefix of the worker threads' names.
    public let threadNamePrefix: String
    /// The modules every worker loads when it starts.
    public let modules: [GuestModule]
    /// The limits every worker interpreter applies.
    public let limits: InterpreterLimits
    /// The engine of every worker interpreter.
    public let engine: GuestEngine

    let pool: WorkerPool<InterpreterContext>

    /// Creates a pool; no worker starts before the first submission.
    ///
    /// - Parameters:
    ///   - maxWorkers: The most workers; `nil` means `min(32, cores + 4)`, as in Python.
    ///   - threadNamePrefix: The prefix of thread names; empty means `InterpreterPoolExecutor-<k>`.
    ///   - modules: Modules loaded into each worker's interpreter when it starts. Each was parsed
    ///     and validated once, when the ``GuestModule`` was made; workers only instantiate it.
    ///   - limits: Fuel, memory and value-size limits for every call.
    ///   - engine: The engine of every worker's interpreter (``GuestEngine/wasmKit`` unless
    ///     given). With ``GuestEngine/compiled``, each module is compiled once per process (or
    ///     found in the cache) when the first worker loads it.
    ///   - initializer: A guest call run once in each worker's interpreter before its first task.
    ///     If it fails, the pool breaks: queued and later work fails with ``Futures/ExecutorError``
    ///     `.brokenInterpreterPool`. (A module that fails to instantiate when a worker starts does
    ///     not break the pool: the calls that need it fail instead.)
    ///   - observability: The pool's name in its metrics and spans, and where they go (by default
    ///     the metrics factory and tracer bootstrapped now; docs/observability.md).
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` when `maxWorkers` is 0 or less;
    ///   ``Futures/NotShareableError`` when `initializer` is not a guest function call.
    public init(
        maxWorkers: Int? = nil,
        threadNamePrefix: String = "",
        modules: [GuestModule] = [],
        limits: InterpreterLimits = .default,
        engine: GuestEngine = .wasmKit,
        initializer: Call<Void>? = nil,
        observability: PoolObservability = PoolObservability()
    ) throws {
        let maxWorkers = try validatedMaxWorkers(maxWorkers, default: min(32, ProcessorCount.available + 4))
        var initialInvocation: GuestInvocation?
        if let initializer {
            guard let invocation = initializer.remote?.guestInvocation else {
                throw NotShareableError("the initializer (\(initializer.summary)) cannot run in an interpreter")
            }
            initialInvocation = invocation
        }
        self.maxWorkers = maxWorkers
        self.threadNamePrefix =
            threadNamePrefix.isEmpty ? "InterpreterPoolExecutor-\(nextExecutorNumber())" : threadNamePrefix
        self.modules = modules
        self.limits = limits
        self.engine = engine
        let setup = InterpreterContext.Setup(modules: modules, limits: limits, engine: engine, initializer: initialInvocation)
        pool = WorkerPool(
            configuration: .init(
                maxWorkers: maxWorkers, threadNamePrefix: self.threadNamePrefix, brokenCode: .brokenInterpreterPool,
                brokenMessage: "A worker interpreter could not start (the initializer failed), "
                    + "the interpreter pool is not usable anymore"),
            instruments: PoolInstruments(kind: "interpreter", observability: observability),
            makeContext: { _ in InterpreterContext(setup: setup) })
    }

    deinit {
        pool.shutdown(wait: false, cancelFutures: false)
    }

    /// The number of workers alive now.
    public var workerCount: Int { pool.workerCount }

    /// Schedules a guest function call.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.shutdown` after shutdown, `.brokenInterpreterPool`
    ///   once broken; ``Futures/NotShareableError`` for a host closure or a job.
    @inlinable
    public func submit<Success: Sendable>(_ call: Call<Success>) throws -> Future<Success> {
        let future = Future<Success>()
        if let task = try Self.task(call, future) { try enqueue(task) }
        return future
    }

    /// Schedules every call in `calls` with one acquisition of the queue's lock, or none.
    ///
    /// - Throws: What ``submit(_:)`` throws.
    @inlinable
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>]) throws -> [Future<Success>] {
        let (futures, tasks) = try Future<Success>.withTasks(for: calls) { call, future in try Self.task(call, future) }
        try enqueue(contentsOf: tasks)
        return futures
    }

    /// Queues one task (non-generic, so the pool's code stays specialized in this module).
    @usableFromInline
    func enqueue(_ task: InterpreterTask) throws(ExecutorError) {
        try pool.submit(task)
    }

    /// Queues tasks under one acquisition of the pool's lock.
    @usableFromInline
    func enqueue(contentsOf tasks: [InterpreterTask]) throws(ExecutorError) {
        try pool.submit(contentsOf: tasks)
    }

    /// The task for `call`, or `nil` when its arguments could not be encoded (its future has
    /// then failed with that ``Futures/NotShareableError`` already).
    @inlinable
    static func task<Success>(_ call: Call<Success>, _ future: Future<Success>) throws -> InterpreterTask? {
        if case .unencodable(let error)? = call.remote {
            future.complete(.failure(error))
            return nil
        }
        guard let invocation = call.remote?.guestInvocation else {
            throw NotShareableError("\(call.summary) is host code and cannot run in an interpreter")
        }
        let decode = call.decode
        return InterpreterTask(future: future, invocation: invocation) { outcome in
            future.complete(outcome.flatMap { value in Result { try decode(value) } })
        }
    }

    /// Stops accepting work; each worker closes its interpreter once the queue drains.
    /// See ``PoolExecutor/shutdown(wait:cancelFutures:)``; it never throws.
    public func shutdown(wait: Bool, cancelFutures: Bool) {
        pool.shutdown(wait: wait, cancelFutures: cancelFutures)
    }
}

/// A guest call queued on an interpreter pool. A class, so that the pool moves one reference
/// rather than copying the call's fields.
@usableFromInline
final class InterpreterTask: SingleFutureTask {
    typealias Output = ShareableValue

    let future: (any FutureHandle)?
    let invocation: GuestInvocation
    let complete: @Sendable (Result<ShareableValue, any Error>) -> Void

    @usableFromInline
    init(future: (any FutureHandle)?, invocation: GuestInvocation, complete: @escaping @Sendable (Result<ShareableValue, any Error>) -> Void) {
        self.future = future
        self.invocation = invocation
        self.complete = complete
    }

    func finish(_ outcome: Result<ShareableValue, any Error>) { complete(outcome) }

    func describe(into attributes: inout SpanAttributes) {
        attributes["futures.module"] = invocation.module.name
        attributes["futures.function"] = invocation.function
    }
}

/// The interpreter pool's worker context: one interpreter per worker thread.
struct InterpreterContext: WorkerContext {
    struct Setup: Sendable {
        let modules: [GuestModule]
        let limits: InterpreterLimits
        let engine: GuestEngine
        let initializer: GuestInvocation?
    }

    let setup: Setup
    private var interpreter: Interpreter?
    /// The guest calls' metrics, when the pool has any: calls, traps, fuel and memory per module.
    private var guestMetrics: GuestCallMetrics?

    init(setup: Setup) { self.setup = setup }

    mutating func instrument(with instruments: PoolInstruments) { guestMetrics = instruments.metrics.map(GuestCallMetrics.init) }

    mutating func batchEnded() { guestMetrics?.flush() }

    /// Starts the worker's interpreter: loads the pool's modules and runs the initializer. Only a
    /// failing initializer breaks the pool, as in CPython: a module whose instantiation fails
    /// (its start function traps, runs out of time or fuel, or its compiled form cannot be
    /// built) is left for the calls that use it, which load it again and fail on their own if it
    /// fails again.
    mutating func initialize() throws {
        let interpreter = Interpreters.create(limits: setup.limits, engine: setup.engine)
        self.interpreter = interpreter
        _ = Interpreters.swapCurrent(interpreter)
        if setup.engine == .auto { interpreter.movesToCompiledWhenReady() }
        for module in setup.modules { try? interpreter.exec(module) }
        do {
            if let initializer = setup.initializer { _ = try interpreter.install(initializer: initializer) }
        } catch {
            finalize()
            throw error
        }
    }

    mutating func run(_ task: InterpreterTask) throws -> ShareableValue {
        guard guestMetrics != nil else { return try interpreter!.run(task.invocation, wait: false) }
        return try guestMetrics!.measure(task.invocation, in: interpreter!, limits: setup.limits)
    }

    mutating func finalize() {
        _ = Interpreters.swapCurrent(nil)
        try? interpreter?.close()
        interpreter = nil
    }
}
