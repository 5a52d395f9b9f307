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

    /// Whether a batch runs as one unit (``run(batch:)``, all started together) rather than task
    /// by task.
    static var runsBatchesTogether: Bool { get }

    /// Runs started tasks as one unit; the outcomes are in the tasks' order.
    mutating func run(batch: [Task]) -> [Result<Task.Output, any Error>]
}

extension WorkerContext {
    package var batchLimit: Int { 32 }
    package static var runsBatchesTogether: Bool { false }
    package mutating func run(batch: [Task]) -> [Result<Task.Output, any Error>] {
        batch.map { task in Result { try run(task) } }
    }
}

/// A unit of work in a ``WorkerPool`` queue.
package protocol WorkerTask: Sendable {
    /// What ``WorkerContext/run(_:)`` produces for this task.
    associatedtype Output

    /// The future the task resolves, or `nil` for work without one (Swift concurrency jobs),
    /// which is never cancelled or failed by the pool.
    var future: (any FutureHandle)? { get }

    /// Publishes the outcome, resolving the future.
    func finish(_ outcome: Result<Output, any Error>)
}
