package import Tracing

/// A task as a ``WorkerPool`` queues it: with when it was queued (for the time-queued metric;
/// 0 when the pool records no metrics) and the service context current at submission, which the
/// task's span takes as its parent and which is current while an in-process task runs.
package struct QueuedTask<Task: WorkerTask>: WorkerTask {
    package typealias Output = Task.Output

    package let task: Task
    package let queuedAt: UInt64
    package let context: ServiceContext?

    package init(task: Task, queuedAt: UInt64, context: ServiceContext?) {
        self.task = task
        self.queuedAt = queuedAt
        self.context = context
    }

    package var isAwaited: Bool { task.isAwaited }
    package func start() -> Bool { task.start() }
    package func cancel() { task.cancel() }
    package func fail(_ error: ExecutorError) { task.fail(error) }
    package func finish(_ outcome: Result<Output, any Error>) { task.finish(outcome) }
    package var callCount: Int { task.callCount }
    package func forEachOutcome(_ body: (TaskOutcome) -> Void) { task.forEachOutcome(body) }
}
