import DequeModule

/// The bookkeeping of a ``WorkerPool``, as a value: the queue of tasks, the workers alive,
/// asleep and idle, and whether the pool is shut down or broken.
///
/// It holds no lock and starts no thread. The pool keeps it under its lock, calls one
/// transition per event (a submission, a worker looking for work, a worker waking or ending,
/// `shutdown`, a failed initializer) and carries out what the transition returns: threads to
/// start, sleepers to wake, tasks to cancel or fail. So every rule of the pool can be read in one
/// place and tested without threads.
///
/// The rules, as in CPython 3.14's `thread.py`:
/// - a worker that finds the queue empty publishes an *idle token* before it sleeps; a
///   submission takes a token instead of starting a thread, so idle workers are reused first;
/// - otherwise a submission starts one worker per task, up to `maxWorkers`;
/// - `shutdown` stops accepting work; queued work still runs unless cancelled; workers end
///   once the queue is empty;
/// - a broken pool (an initializer failed) refuses work and fails what is queued.
/// Tasks no caller waits for (Swift concurrency jobs) are accepted even after shutdown, and never
/// cancelled or failed: no job may be lost.
package struct WorkerPoolState<Task: WorkerTask> {
    /// What one worker remembers between transitions.
    package struct Worker {
        /// The worker's index, for its thread name.
        package let index: Int
        /// Whether the worker has published an idle token that no submission took yet.
        package var hasIdleToken = false

        package init(index: Int) { self.index = index }
    }

    /// What a worker does next.
    package enum Step {
        /// Run these tasks, in order.
        case run([Task])
        /// Wait for a wake-up, then ask again.
        case sleep
        /// End: the pool is shut down and the queue is empty.
        case exit
    }

    /// What a submission asks of the pool.
    package struct Dispatch: Equatable {
        /// Workers to start, by index.
        package var start: [Int] = []
        /// Sleeping workers to wake.
        package var wake = 0

        package init(start: [Int] = [], wake: Int = 0) {
            self.start = start
            self.wake = wake
        }
    }

    package let maxWorkers: Int
    private var queue = Deque<Task>()
    /// Workers started and not yet ended.
    package private(set) var liveWorkers = 0
    package private(set) var startedWorkers = 0
    /// Idle tokens published and not taken: workers with nothing to do.
    package private(set) var idleTokens = 0
    package private(set) var sleepingWorkers = 0
    /// Wake-ups sent to sleeping workers that have not woken yet, so that a burst of
    /// submissions does not signal the same sleeper over and over.
    package private(set) var pendingWakeups = 0
    package private(set) var isShutdown = false
    package private(set) var brokenError: ExecutorError?

    package init(maxWorkers: Int) {
        self.maxWorkers = maxWorkers
    }

    /// The tasks waiting, oldest first.
    package var queuedTasks: [Task] { Array(queue) }

    // MARK: Submitting

    /// Queues `tasks` and says which workers to start and how many sleepers to wake: idle
    /// workers first, then new workers up to `maxWorkers`.
    ///
    /// - Parameter exiting: Whether the program is exiting (the exit hook ran).
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown or at
    ///   exit, when any of the tasks is awaited; then nothing is queued.
    package mutating func submit(_ tasks: some Collection<Task>, exiting: Bool) throws(ExecutorError) -> Dispatch {
        if tasks.contains(where: \.isAwaited) {
            if let brokenError { throw brokenError }
            if exiting { throw ExecutorError.exitingError }
            if isShutdown { throw ExecutorError.shutdownError }
        }
        queue.append(contentsOf: tasks)
        var dispatch = Dispatch()
        for _ in 0..<tasks.count {
            if idleTokens > 0 {
                idleTokens -= 1
            } else if liveWorkers < maxWorkers {
                dispatch.start.append(startedWorkers)
                startedWorkers += 1
                liveWorkers += 1
            } else {
                break
            }
        }
        let wake = min(tasks.count, sleepingWorkers - pendingWakeups)
        if wake > 0 {
            pendingWakeups += wake
            dispatch.wake = wake
        }
        return dispatch
    }

    /// A worker that ``submit(_:exiting:)`` asked for could not be started.
    ///
    /// - Throws: ``ExecutorError`` `.resourceExhausted`, when no worker is left alive to take the
    ///   tasks: then the `count` tasks just submitted are taken back out of the queue, and the
    ///   submission fails. With a live worker, the tasks wait for it.
    package mutating func workerFailedToStart(
        _ index: Int, because error: ExecutorError, submitted count: Int
    ) throws(ExecutorError) {
        liveWorkers -= 1
        if liveWorkers == 0 {
            queue.removeLast(min(count, queue.count))
            throw error
        }
    }

    // MARK: Working

    /// The next step of `worker`: a batch to run, a sleep, or the end.
    ///
    /// A batch is the oldest task plus, when `takeShare` (its recent tasks were short), up to
    /// its fair share of the rest: the queue over the number of workers, at most `batchLimit`
    /// in all. Before a worker sleeps it publishes its idle token.
    package mutating func next(for worker: inout Worker, batchLimit: Int, takeShare: Bool) -> Step {
        let batch = takeBatch(batchLimit: batchLimit, takeShare: takeShare)
        if !batch.isEmpty {
            worker.hasIdleToken = false
            return .run(batch)
        }
        if isShutdown { return .exit }
        publishIdleToken(&worker)
        sleepingWorkers += 1
        return .sleep
    }

    /// A sleeping worker woke up.
    package mutating func wokeUp() {
        sleepingWorkers -= 1
        if pendingWakeups > 0 { pendingWakeups -= 1 }
    }

    /// Takes the worker's next batch before it finishes its current one, and publishes its idle
    /// token when there is none: done before the futures just run are resolved, so that a
    /// caller woken by them and submitting again finds this worker idle. The batch is the
    /// worker's: its next ``next(for:batchLimit:takeShare:)`` would have taken it.
    package mutating func prefetch(for worker: inout Worker, batchLimit: Int, takeShare: Bool) -> [Task] {
        let batch = takeBatch(batchLimit: batchLimit, takeShare: takeShare)
        if queue.isEmpty, batch.isEmpty { publishIdleToken(&worker) }
        return batch
    }

    /// `worker` ended.
    ///
    /// - Returns: Whether it was the last live worker.
    package mutating func workerEnded(_ worker: Worker) -> Bool {
        liveWorkers -= 1
        if worker.hasIdleToken { idleTokens = max(0, idleTokens - 1) }
        return liveWorkers == 0
    }

    private mutating func takeBatch(batchLimit: Int, takeShare: Bool) -> [Task] {
        guard let first = queue.popFirst() else { return [] }
        var batch = [first]
        if takeShare, batchLimit > 1 {
            let share = min(batchLimit - 1, queue.count / maxWorkers)
            batch.reserveCapacity(share + 1)
            for _ in 0..<share { batch.append(queue.removeFirst()) }
        }
        return batch
    }

    private mutating func publishIdleToken(_ worker: inout Worker) {
        guard !worker.hasIdleToken else { return }
        idleTokens += 1
        worker.hasIdleToken = true
    }

    // MARK: Ending

    /// Stops accepting work.
    ///
    /// - Returns: With `cancelTasks`, the awaited tasks taken out of the queue, for the pool to
    ///   cancel; tasks nobody awaits stay queued.
    package mutating func shutdown(cancelTasks: Bool) -> [Task] {
        isShutdown = true
        guard cancelTasks else { return [] }
        var kept = Deque<Task>()
        var cancelled: [Task] = []
        for task in queue {
            if task.isAwaited { cancelled.append(task) } else { kept.append(task) }
        }
        queue = kept
        return cancelled
    }

    /// Marks the pool broken (the first error is kept).
    ///
    /// - Returns: The broken-pool error, and the awaited tasks taken out of the queue, for the
    ///   pool to fail with it.
    package mutating func breakPool(code: ExecutorError.Code, message: String, cause: any Error) -> (ExecutorError, [Task]) {
        let error = brokenError ?? ExecutorError(code, "\(message): \(cause)", underlying: cause)
        brokenError = error
        let failed = Array(queue.filter(\.isAwaited))
        queue.removeAll(where: \.isAwaited)
        return (error, failed)
    }
}
