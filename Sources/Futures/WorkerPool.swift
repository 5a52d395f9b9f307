import DequeModule

/// The one pool behind every executor: a FIFO queue served by up to `maxWorkers` OS threads,
/// each owning a ``WorkerContext``.
///
/// Mechanics, as in CPython 3.14's `thread.py`:
/// - threads start lazily, one per submission, but an idle worker is reused first (a worker
///   that finds the queue empty releases an *idle token*; a submission consumes one instead of
///   starting a thread);
/// - `shutdown` lets queued work run unless asked to cancel it; running work always finishes;
/// - a context whose `initialize` throws breaks the pool: queued futures fail with the pool's
///   broken-pool error, later submissions throw it, running work finishes.
///
/// A worker publishes its idle token *before* resolving the future of the task it just ran, so
/// a caller woken by that future and submitting again finds the worker idle and reuses it.
package final class WorkerPool<Context: WorkerContext>: @unchecked Sendable {
    /// How a pool's workers are named and what a broken pool reports.
    package struct Configuration: Sendable {
        package var maxWorkers: Int
        package var threadNamePrefix: String
        package var brokenCode: ExecutorError.Code
        package var brokenMessage: String

        package init(maxWorkers: Int, threadNamePrefix: String, brokenCode: ExecutorError.Code, brokenMessage: String) {
            self.maxWorkers = maxWorkers
            self.threadNamePrefix = threadNamePrefix
            self.brokenCode = brokenCode
            self.brokenMessage = brokenMessage
        }
    }

    package let configuration: Configuration
    private let makeContext: @Sendable (_ workerIndex: Int) -> Context

    private let lock = ConditionLock()
    private var queue = Deque<Context.Task>()
    private var liveWorkers = 0
    private var startedWorkers = 0
    private var idleTokens = 0
    private var sleepingWorkers = 0
    /// Signals sent to sleeping workers that have not woken yet, so a burst of submissions
    /// does not signal the same sleeper over and over.
    private var pendingWakeups = 0
    private var isShutdown = false
    private var brokenError: ExecutorError?

    /// Creates a pool; no thread starts before the first submission.
    package init(configuration: Configuration, makeContext: @escaping @Sendable (_ workerIndex: Int) -> Context) {
        self.configuration = configuration
        self.makeContext = makeContext
    }

    /// The number of worker threads alive now.
    package var workerCount: Int { lock.withLock { liveWorkers } }

    /// Whether ``shutdown(wait:cancelFutures:)`` was called.
    package var shutdownRequested: Bool { lock.withLock { isShutdown } }

    /// The broken-pool error, once the pool is broken.
    package var broken: ExecutorError? { lock.withLock { brokenError } }

    /// Queues `task`, starting a worker when no idle one can take it.
    ///
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown. Tasks
    ///   without a future (Swift concurrency jobs) are accepted even then, so that no job is lost.
    package func submit(_ task: Context.Task) throws(ExecutorError) {
        lock.lock()
        defer { lock.unlock() }
        if task.future != nil { try checkAcceptingLocked() }
        queue.append(task)
        dispatchLocked(count: 1)
    }

    /// Queues every task in `tasks` under one acquisition of the lock, or none of them.
    ///
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown.
    package func submit(contentsOf tasks: [Context.Task]) throws(ExecutorError) {
        lock.lock()
        defer { lock.unlock() }
        try checkAcceptingLocked()
        queue.append(contentsOf: tasks)
        dispatchLocked(count: tasks.count)
    }

    private func checkAcceptingLocked() throws(ExecutorError) {
        if let brokenError { throw brokenError }
        if isShutdown { throw ExecutorError.shutdownError }
    }

    /// Finds workers for `count` new tasks: idle workers first, then new threads, and wakes
    /// sleepers that are not already being woken.
    private func dispatchLocked(count: Int) {
        for _ in 0..<count {
            if idleTokens > 0 {
                idleTokens -= 1
            } else if liveWorkers < configuration.maxWorkers {
                startWorkerLocked()
            } else {
                break
            }
        }
        let wake = min(count, sleepingWorkers - pendingWakeups)
        if wake > 0 {
            pendingWakeups += wake
            if wake == 1 { lock.signal() } else { lock.broadcast() }
        }
    }

    /// Stops accepting work. With `cancelFutures`, cancels every queued task that has a future;
    /// with `wait`, returns only when every worker has ended.
    package func shutdown(wait: Bool, cancelFutures: Bool) {
        var cancelled: [Context.Task] = []
        lock.withLock {
            isShutdown = true
            if cancelFutures {
                var kept = Deque<Context.Task>()
                for task in queue {
                    if task.future != nil { cancelled.append(task) } else { kept.append(task) }
                }
                queue = kept
            }
            lock.broadcast()
        }
        for task in cancelled { task.future?.cancel() }
        if wait { waitForWorkers() }
    }

    /// Blocks until every worker ended (all but the calling one, when called from a worker).
    package func waitForWorkers() {
        let selfCount = WorkerThread.current?.pool == ObjectIdentifier(self) ? 1 : 0
        lock.withLock {
            while liveWorkers > selfCount { lock.wait(until: nil) }
        }
    }

    /// Removes and returns every queued task that has a future (for forced shutdowns).
    package func drainQueuedFutures() -> [Context.Task] {
        lock.withLock {
            let taken = Array(queue.filter { $0.future != nil })
            queue.removeAll { $0.future != nil }
            return taken
        }
    }

    private func startWorkerLocked() {
        let index = startedWorkers
        startedWorkers += 1
        liveWorkers += 1
        WorkerThread.start(name: "\(configuration.threadNamePrefix)_\(index)", pool: ObjectIdentifier(self)) {
            self.work(index: index)
        }
    }

    /// Marks the pool broken and fails every queued future.
    private func breakPool(because error: any Error) {
        let failed: [Context.Task] = lock.withLock {
            if brokenError == nil {
                brokenError = ExecutorError(configuration.brokenCode, "\(configuration.brokenMessage): \(error)")
            }
            let taken = Array(queue.filter { $0.future != nil })
            queue.removeAll { $0.future != nil }
            return taken
        }
        futuresLogger.critical("Exception in initializer: \(error)")
        let reason = broken!
        for task in failed { try? task.future?.setError(reason) }
    }

    /// The worker thread's loop.
    private func work(index: Int) {
        var context = makeContext(index)
        var initialized = true
        do {
            try context.initialize()
        } catch {
            initialized = false
            breakPool(because: error)
        }
        var tokenReleased = false
        var next: Context.Task?
        lock.lock()
        while true {
            if next == nil, let queued = queue.popFirst() { next = queued }
            guard let task = next else {
                if isShutdown { break }
                if !tokenReleased {
                    idleTokens += 1
                    tokenReleased = true
                }
                sleepingWorkers += 1
                lock.wait(until: nil)
                sleepingWorkers -= 1
                if pendingWakeups > 0 { pendingWakeups -= 1 }
                continue
            }
            next = nil
            tokenReleased = false
            lock.unlock()

            if let future = task.future {
                guard (try? future.setRunningOrNotifyCancel()) == true else {
                    lock.lock()
                    continue
                }
            }
            let outcome: Result<Context.Task.Output, any Error>
            if !initialized, task.future != nil {
                outcome = .failure(broken ?? ExecutorError(configuration.brokenCode, configuration.brokenMessage))
            } else {
                outcome = Result { try context.run(task) }
            }

            lock.lock()
            next = queue.popFirst()
            if next == nil, !tokenReleased {
                idleTokens += 1
                tokenReleased = true
            }
            lock.unlock()
            task.finish(outcome)
            lock.lock()
        }
        lock.unlock()
        if initialized { context.finalize() }
        lock.withLock {
            liveWorkers -= 1
            if tokenReleased { idleTokens -= 1 }
            lock.broadcast()
        }
    }
}
