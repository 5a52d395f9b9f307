package import Tracing

/// What one worker thread of a ``WorkerPool`` owns, and how it runs a task.
///
/// This is the shape CPython 3.14 gave `ThreadPoolExecutor` (`thread.py`'s `WorkerContext`), and
/// it is the only thing that differs between the three executors: a thread context runs Swift
/// closures, an interpreter context owns a WebAssembly interpreter, a process context owns a
/// child process. Queueing, lazy start, idle reuse, shutdown, cancellation and broken-pool
/// handling are written once, in ``WorkerPool``.
///
/// A context is created on its worker thread and never leaves it, so it need not be `Sendable`.
package protocol WorkerContext: SendableMetatype {
    /// One unit of work, as the pool queues it.
    associatedtype Task: WorkerTask

    /// Runs once on the worker thread before its first task. Throwing breaks the pool.
    mutating func initialize() throws

    /// Runs `task` and returns what it produced. Errors become the task's outcome; they never
    /// stop the worker.
    mutating func run(_ task: Task) throws -> Task.Output

    /// Runs when the worker thread ends normally (after shutdown), releasing what it owns.
    mutating func finalize()

    /// The most tasks a worker may take from the queue at once while its tasks are short.
    var batchLimit: Int { get }

    /// A task shorter than this on average (round trip included) lets its worker take several
    /// queued tasks at once.
    static var shortTaskNanoseconds: UInt64 { get }

    /// Whether a batch runs as one unit (``run(batch:)``, all started together) rather than task
    /// by task.
    static var runsBatchesTogether: Bool { get }

    /// Runs started tasks as one unit; the outcomes are in the tasks' order.
    mutating func run(batch: [Task]) -> [Result<Task.Output, any Error>]

    /// Whether the pool records a span around each task run (contexts that run tasks in this
    /// process); a context that sends them to another process sends the submitter's context with
    /// the call instead (``WorkerTask/attach(trace:)``), and the worker there records the span.
    static var recordsSpans: Bool { get }

    /// Receives the pool's metrics and tracer before ``initialize()``, when the pool has either,
    /// for what only the context measures (guest calls, bytes on the wire, worker replacements).
    mutating func instrument(with instruments: PoolInstruments)

    /// Runs after each batch of tasks, when the pool has metrics: a context that counts on its own
    /// (guest calls) reports what the batch added, as the pool reports its own counts.
    mutating func batchEnded()
}

extension WorkerContext {
    package var batchLimit: Int { 32 }
    package static var shortTaskNanoseconds: UInt64 { 100_000 }
    package static var runsBatchesTogether: Bool { false }
    package mutating func run(batch: [Task]) -> [Result<Task.Output, any Error>] {
        batch.map { task in Result { try run(task) } }
    }
    package static var recordsSpans: Bool { true }
    package mutating func instrument(with instruments: PoolInstruments) {}
    package mutating func batchEnded() {}
}

/// How one call of a task ended, as metrics and spans report it.
package enum TaskOutcome {
    case completed
    case failed(any Error)
    case cancelled

    /// The outcome a resolved (or cancelled) future holds.
    package init(of future: any FutureHandle) {
        if future.isCancelled {
            self = .cancelled
        } else if let error = future.failure {
            self = .failed(error)
        } else {
            self = .completed
        }
    }
}

/// A unit of work in a ``WorkerPool`` queue, and the lifecycle the pool drives it through:
/// started (or found cancelled) when a worker takes it, then finished with its outcome; or
/// cancelled or failed while queued. A task resolves its caller's futures itself; it is not a
/// future.
package protocol WorkerTask: Sendable {
    /// What ``WorkerContext/run(_:)`` produces for this task.
    associatedtype Output

    /// Whether a caller waits for the task. Tasks nobody waits for (Swift concurrency jobs) are
    /// accepted after shutdown and are never cancelled or failed by the pool.
    var isAwaited: Bool { get }

    /// Marks the task running, as a worker takes it.
    ///
    /// - Returns: `false` when it was cancelled: then it must not run.
    func start() -> Bool

    /// Cancels the task if it has not started.
    func cancel()

    /// Fails the task without running it (the pool is broken).
    func fail(_ error: ExecutorError)

    /// Publishes the outcome of running the task.
    func finish(_ outcome: Result<Output, any Error>)

    /// How many calls the task holds (a process pool's chunk holds several): what metrics count.
    var callCount: Int { get }

    /// Calls `body` with the outcome of each of the task's calls, once the task is finished,
    /// cancelled or failed.
    func forEachOutcome(_ body: (TaskOutcome) -> Void)

    /// Adds what describes the task (a guest call's module and function) to its span.
    func describe(into attributes: inout SpanAttributes)

    /// Keeps the submitter's service context, for a context that sends the task to another
    /// process to send with it (``WorkerContext/recordsSpans`` is `false` there).
    func attach(trace: ServiceContext)
}

extension WorkerTask {
    package var callCount: Int { 1 }
    package func forEachOutcome(_ body: (TaskOutcome) -> Void) { body(.completed) }
    package func describe(into attributes: inout SpanAttributes) {}
    package func attach(trace: ServiceContext) {}
}

/// A task that resolves one future: the common case.
package protocol SingleFutureTask: WorkerTask {
    /// The future the task resolves, or `nil` for work nobody waits for.
    var future: (any FutureHandle)? { get }
}

extension SingleFutureTask {
    package var isAwaited: Bool { future != nil }
    package func start() -> Bool { future.map { (try? $0.setRunningOrNotifyCancel()) == true } ?? true }
    package func cancel() { future?.cancel() }
    package func fail(_ error: ExecutorError) { try? future?.setError(error) }
    package func forEachOutcome(_ body: (TaskOutcome) -> Void) { body(future.map(TaskOutcome.init(of:)) ?? .completed) }
}
