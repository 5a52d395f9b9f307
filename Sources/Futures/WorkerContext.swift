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
}

extension WorkerContext {
    package var batchLimit: Int { 32 }
    package static var shortTaskNanoseconds: UInt64 { 100_000 }
    package static var runsBatchesTogether: Bool { false }
    package mutating func run(batch: [Task]) -> [Result<Task.Output, any Error>] {
        batch.map { task in Result { try run(task) } }
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
}
