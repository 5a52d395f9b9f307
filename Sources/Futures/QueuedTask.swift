package import Tracing

/// A task as a ``WorkerPool`` queues it, with its ``TaskStamp`` when the pool observes it or the
/// submitter had a service context: a pool that records nothing queues the task and one `nil`.
package struct QueuedTask<Task: WorkerTask>: WorkerTask {
    package typealias Output = Task.Output

    package let task: Task
    package let stamp: TaskStamp?

    package init(task: Task, stamp: TaskStamp?) {
        self.task = task
        self.stamp = stamp
    }

    /// When the task was queued (for the time-queued metric; 0 when the pool records no metrics).
    package var queuedAt: UInt64 { stamp?.queuedAt ?? 0 }
    /// The service context current at submission: the parent of the task's span, and current
    /// while an in-process task runs.
    package var context: ServiceContext? { stamp?.context }

    package var isAwaited: Bool { task.isAwaited }
    package func start() -> Bool { task.start() }
    package func cancel() { task.cancel() }
    package func fail(_ error: ExecutorError) { task.fail(error) }
    package func finish(_ outcome: Result<Output, any Error>) { task.finish(outcome) }
    package var callCount: Int { task.callCount }
    package func forEachOutcome(_ body: (TaskOutcome) -> Void) { task.forEachOutcome(body) }
}

/// What a pool remembers of a submission, shared by the tasks submitted together: when they were
/// queued and the submitter's service context.
package final class TaskStamp: Sendable {
    package let queuedAt: UInt64
    package let context: ServiceContext?

    package init(queuedAt: UInt64, context: ServiceContext?) {
        self.queuedAt = queuedAt
        self.context = context
    }
}
