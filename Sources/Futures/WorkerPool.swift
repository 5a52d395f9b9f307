import DequeModule
import Synchronization

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
package final class WorkerPool<Context: WorkerContext>: ExitJoinable, @unchecked Sendable {
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
    /// Set by `shutdown(cancelFutures: true)`: tasks a worker took in a batch but has not started
    /// are cancelled too, as queued ones are.
    private let cancelQueued = Atomic<Bool>(false)
    private var brokenError: ExecutorError?

    /// Creates a pool; no thread starts before the first submission. While it has workers, the
    /// pool is in the program's exit hook (see ``ExitHook``): work it accepted runs before the
    /// program exits.
    package init(configuration: Configuration, makeContext: @escaping @Sendable (_ workerIndex: Int) -> Context) {
        self.configuration = configuration
        self.makeContext = makeContext
    }

    /// The number of worker threads alive now.
    package var workerCount: Int { lock.withLock { liveWorkers } }

    /// Stops accepting work (as `shutdown` does, without cancelling) and waits for the workers:
    /// what the exit hook does to every pool.
    package func joinAtExit() {
        shutdown(wait: true, cancelFutures: false)
    }

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
        do {
            try dispatchLocked(count: 1)
        } catch {
            queue.removeLast()
            throw error
        }
    }

    /// Queues every task in `tasks` under one acquisition of the lock, or none of them.
    ///
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown.
    package func submit(contentsOf tasks: [Context.Task]) throws(ExecutorError) {
        lock.lock()
        defer { lock.unlock() }
        try checkAcceptingLocked()
        queue.append(contentsOf: tasks)
        do {
            try dispatchLocked(count: tasks.count)
        } catch {
            queue.removeLast(tasks.count)
            throw error
        }
    }

    private func checkAcceptingLocked() throws(ExecutorError) {
        if let brokenError { throw brokenError }
        if ExitHook.isExiting { throw ExecutorError.exitingError }
        if isShutdown { throw ExecutorError.shutdownError }
    }

    /// Finds workers for `count` new tasks: idle workers first, then new threads, and wakes
    /// sleepers that are not already being woken.
    ///
    /// - Throws: ``ExecutorError`` `.resourceExhausted` when no thread can be started and no
    ///   worker is alive to take the tasks (with a live worker, the tasks wait for it).
    private func dispatchLocked(count: Int) throws(ExecutorError) {
        for _ in 0..<count {
            if idleTokens > 0 {
                idleTokens -= 1
            } else if liveWorkers < configuration.maxWorkers {
                do {
                    try startWorkerLocked()
                } catch {
                    if liveWorkers == 0 { throw error }
                    futuresLogger.warning("\(error); the pool's \(liveWorkers) live workers take the work")
                    break
                }
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
                cancelQueued.store(true, ordering: .relaxed)
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

    /// Blocks until every worker ended (all but the calling one, when called from a worker), or
    /// until `deadline`; returns whether they all ended.
    @discardableResult
    package func waitForWorkers(until deadline: Deadline? = nil) -> Bool {
        let selfCount = DetachedThread.current?.pool == ObjectIdentifier(self) ? 1 : 0
        return lock.withLock {
            while liveWorkers > selfCount {
                if !lock.wait(until: deadline), liveWorkers > selfCount { return false }
            }
            return true
        }
    }

    private func startWorkerLocked() throws(ExecutorError) {
        let index = startedWorkers
        try DetachedThread.start(name: "\(configuration.threadNamePrefix)_\(index)", pool: ObjectIdentifier(self)) {
            self.work(index: index)
        }
        // A pool with workers is alive (they hold it) and has work to join at exit; one without
        // has none. So the exit hook holds the pool from its first worker to its last.
        if liveWorkers == 0 { ExitHook.register(self) }
        startedWorkers += 1
        liveWorkers += 1
    }

    /// Marks the pool broken and fails every queued future.
    private func breakPool(because error: any Error) {
        let failed: [Context.Task] = lock.withLock {
            if brokenError == nil {
                brokenError = ExecutorError(configuration.brokenCode, "\(configuration.brokenMessage): \(error)", underlying: error)
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
    ///
    /// Adaptive batching: while this worker's recent tasks were short (under
    /// ``shortTaskNanoseconds`` each), it takes up to its fair share of the backlog (the queue
    /// length over the number of workers, at most ``WorkerContext/batchLimit``) with one
    /// acquisition of the lock. In-process contexts still start (and so may still cancel) each
    /// task right before running it; contexts that run a batch together (a worker process) start
    /// them all at once, as Python's process pool marks calls running when it queues them. Long
    /// tasks are always taken one at a time, so no worker sits on queued work while others idle.
    private func work(index: Int) {
        var context = makeContext(index)
        var initialized = true
        do {
            try context.initialize()
        } catch {
            initialized = false
            breakPool(because: error)
        }
        let batchLimit = max(1, context.batchLimit)
        var averageNanoseconds: UInt64 = .max
        var tokenReleased = false
        var batch: [Context.Task] = []
        batch.reserveCapacity(batchLimit)

        /// Takes the next batch from the queue; the lock must be held.
        func refill() {
            guard let first = queue.popFirst() else { return }
            batch.append(first)
            if batchLimit > 1, averageNanoseconds < Self.shortTaskNanoseconds {
                let share = min(batchLimit, queue.count / configuration.maxWorkers)
                for _ in 0..<share { batch.append(queue.removeFirst()) }
            }
        }

        lock.lock()
        while true {
            if batch.isEmpty { refill() }
            guard !batch.isEmpty else {
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
            tokenReleased = false
            // The tasks live in this block only: they are released before the lock is taken
            // again, because a task may hold the last reference to its executor, whose deinit
            // takes the lock. (A block, not a closure: a closure here would not be specialized.)
            let perTask: UInt64
            do {
                let tasks = batch
                batch.removeAll(keepingCapacity: true)
                lock.unlock()
                let start = Deadline.now.nanoseconds
                if Context.runsBatchesTogether && tasks.count > 1 {
                    let started = tasks.filter { task in task.future.map { (try? $0.setRunningOrNotifyCancel()) == true } ?? true }
                    let outcomes = initialized
                        ? context.run(batch: started)
                        : started.map { _ in .failure(broken ?? ExecutorError(configuration.brokenCode, configuration.brokenMessage)) }
                    lock.lock()
                    refillAndReleaseToken(&tokenReleased, refill)
                    lock.unlock()
                    for (task, outcome) in zip(started, outcomes) { task.finish(outcome) }
                } else {
                    for (position, task) in tasks.enumerated() {
                        if let future = task.future {
                            if position > 0, cancelQueued.load(ordering: .relaxed) {
                                future.cancel()
                                continue
                            }
                            guard (try? future.setRunningOrNotifyCancel()) == true else { continue }
                        }
                        let outcome: Result<Context.Task.Output, any Error>
                        if !initialized, task.future != nil {
                            outcome = .failure(broken ?? ExecutorError(configuration.brokenCode, configuration.brokenMessage))
                        } else {
                            outcome = Result { try context.run(task) }
                        }
                        if position == tasks.count - 1 {
                            lock.lock()
                            refillAndReleaseToken(&tokenReleased, refill)
                            lock.unlock()
                        }
                        task.finish(outcome)
                    }
                }
                perTask = (Deadline.now.nanoseconds &- start) / UInt64(tasks.count)
            }
            averageNanoseconds = averageNanoseconds == .max ? perTask : (averageNanoseconds * 3 + perTask) / 4
            lock.lock()
        }
        lock.unlock()
        if initialized { context.finalize() }
        lock.withLock {
            liveWorkers -= 1
            if liveWorkers == 0 { ExitHook.unregister(self) }
            if tokenReleased { idleTokens = max(0, idleTokens - 1) }
            lock.broadcast()
        }
    }

    /// Takes the next batch, or publishes this worker's idle token when there is none: done before
    /// resolving the futures just run, so that a caller woken by them finds this worker idle.
    private func refillAndReleaseToken(_ tokenReleased: inout Bool, _ refill: () -> Void) {
        refill()
        if queue.isEmpty, !tokenReleased {
            idleTokens += 1
            tokenReleased = true
        }
    }

    /// A task shorter than this on average lets its worker take several queued tasks at once.
    static var shortTaskNanoseconds: UInt64 { 100_000 }
}
