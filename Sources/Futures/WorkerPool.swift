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
    /// Every counter and the queue; read and changed only with `lock` held.
    private var state: WorkerPoolState<Context.Task>
    /// Set by `shutdown(cancelFutures: true)`: tasks a worker took in a batch but has not started
    /// are cancelled too, as queued ones are. Read without the lock.
    private let cancelQueued = Atomic<Bool>(false)

    /// Creates a pool; no thread starts before the first submission. While it has workers, the
    /// pool is in the program's exit hook (see ``ExitHook``): work it accepted runs before the
    /// program exits.
    package init(configuration: Configuration, makeContext: @escaping @Sendable (_ workerIndex: Int) -> Context) {
        self.configuration = configuration
        self.makeContext = makeContext
        state = WorkerPoolState(maxWorkers: configuration.maxWorkers)
    }

    /// The number of worker threads alive now.
    package var workerCount: Int { lock.withLock { state.liveWorkers } }

    /// Stops accepting work (as `shutdown` does, without cancelling) and waits for the workers:
    /// what the exit hook does to every pool.
    package func joinAtExit() {
        shutdown(wait: true, cancelFutures: false)
    }

    /// The broken-pool error, once the pool is broken.
    package var broken: ExecutorError? { lock.withLock { state.brokenError } }

    /// Queues `task`, starting a worker when no idle one can take it.
    ///
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown. Tasks
    ///   nobody awaits (Swift concurrency jobs) are accepted even then, so that no job is lost.
    package func submit(_ task: Context.Task) throws(ExecutorError) {
        try submit(contentsOf: CollectionOfOne(task))
    }

    /// Queues every task in `tasks` under one acquisition of the lock, or none of them.
    ///
    /// - Throws: The broken-pool error, or ``ExecutorError`` `.shutdown` after shutdown;
    ///   ``ExecutorError`` `.resourceExhausted` when no thread can be started and no worker is
    ///   alive to take the tasks.
    package func submit(contentsOf tasks: some Collection<Context.Task>) throws(ExecutorError) {
        lock.lock()
        defer { lock.unlock() }
        let dispatch = try state.submit(tasks, exiting: ExitHook.isExiting)
        for index in dispatch.start {
            do {
                try DetachedThread.start(name: "\(configuration.threadNamePrefix)_\(index)", pool: ObjectIdentifier(self)) {
                    self.work(index: index)
                }
                // A pool with workers is alive (they hold it) and has work to join at exit; one
                // without has none. So the exit hook holds the pool from its first worker to its last.
                if state.liveWorkers == 1 { ExitHook.register(self) }
            } catch {
                try state.workerFailedToStart(index, because: error, submitted: tasks.count)
                futuresLogger.warning("\(error); the pool's \(state.liveWorkers) live workers take the work")
            }
        }
        if dispatch.wake == 1 { lock.signal() } else if dispatch.wake > 1 { lock.broadcast() }
    }

    /// Stops accepting work. With `cancelFutures`, cancels every queued task that has a future;
    /// with `wait`, returns only when every worker has ended.
    package func shutdown(wait: Bool, cancelFutures: Bool) {
        let cancelled: [Context.Task] = lock.withLock {
            if cancelFutures { cancelQueued.store(true, ordering: .relaxed) }
            defer { lock.broadcast() }
            return state.shutdown(cancelTasks: cancelFutures)
        }
        for task in cancelled { task.cancel() }
        if wait { waitForWorkers() }
    }

    /// Blocks until every worker ended (all but the calling one, when called from a worker), or
    /// until `deadline`; returns whether they all ended.
    @discardableResult
    package func waitForWorkers(until deadline: Deadline? = nil) -> Bool {
        let selfCount = DetachedThread.current?.pool == ObjectIdentifier(self) ? 1 : 0
        return lock.withLock {
            while state.liveWorkers > selfCount {
                if !lock.wait(until: deadline), state.liveWorkers > selfCount { return false }
            }
            return true
        }
    }

    /// Marks the pool broken and fails every queued task; later submissions throw the returned
    /// error. A context's failing `initialize` does this; so may an executor that lost a worker
    /// it cannot replace (an MPI rank). Running tasks finish.
    @discardableResult
    package func breakPool(because error: any Error, logPrefix: String = "Exception in initializer") -> ExecutorError {
        let (broken, failed) = lock.withLock {
            state.breakPool(code: configuration.brokenCode, message: configuration.brokenMessage, cause: error)
        }
        futuresLogger.critical("\(logPrefix): \(error)")
        for task in failed { task.fail(broken) }
        return broken
    }

    /// The worker thread's loop.
    ///
    /// Adaptive batching: while this worker's recent tasks were short (under
    /// ``WorkerContext/shortTaskNanoseconds`` each), it takes up to its fair share of the backlog (the queue
    /// length over the number of workers, at most ``WorkerContext/batchLimit``) with one
    /// acquisition of the lock. In-process contexts still start (and so may still cancel) each
    /// task right before running it; contexts that run a batch together (a worker process) start
    /// them all at once, as Python's process pool marks calls running when it queues them. Long
    /// tasks are always taken one at a time, so no worker sits on queued work while others idle.
    private func work(index: Int) {
        var context = makeContext(index)
        var brokenBy: ExecutorError?
        do {
            try context.initialize()
        } catch {
            brokenBy = breakPool(because: error)
        }
        let batchLimit = max(1, context.batchLimit)
        var averageNanoseconds: UInt64 = .max
        var worker = WorkerPoolState<Context.Task>.Worker(index: index)
        var prefetched: [Context.Task] = []

        lock.lock()
        while true {
            let short = averageNanoseconds < Context.shortTaskNanoseconds
            if prefetched.isEmpty {
                switch state.next(for: &worker, batchLimit: batchLimit, takeShare: short) {
                case .run(let batch): prefetched = batch
                case .sleep:
                    lock.wait(until: nil)
                    state.wokeUp()
                    continue
                case .exit: break
                }
                if prefetched.isEmpty { break }
            }
            // The tasks live in this block only: they are released before the lock is taken
            // again, because a task may hold the last reference to its executor, whose deinit
            // takes the lock. (A block, not a closure: a closure here would not be specialized.)
            let perTask: UInt64
            do {
                let tasks = prefetched
                prefetched = []
                lock.unlock()
                let start = Deadline.now.nanoseconds
                func prefetchNext() {
                    lock.lock()
                    prefetched = state.prefetch(for: &worker, batchLimit: batchLimit, takeShare: short)
                    lock.unlock()
                }
                if Context.runsBatchesTogether && tasks.count > 1 {
                    let started = tasks.filter { $0.start() }
                    let outcomes = brokenBy.map { error in started.map { _ in .failure(error) } } ?? context.run(batch: started)
                    prefetchNext()
                    for (task, outcome) in zip(started, outcomes) { task.finish(outcome) }
                } else {
                    // An index loop: code of this generic class runs unspecialized for contexts of
                    // other modules (the interpreter pool's), where `enumerated()` looked up its
                    // iterator's type metadata for every task.
                    for position in 0..<tasks.count {
                        let task = tasks[position]
                        if position > 0, task.isAwaited, cancelQueued.load(ordering: .relaxed) {
                            task.cancel()
                            continue
                        }
                        guard task.start() else { continue }
                        let outcome: Result<Context.Task.Output, any Error>
                        if let brokenBy, task.isAwaited {
                            outcome = .failure(brokenBy)
                        } else {
                            do {
                                outcome = .success(try context.run(task))
                            } catch {
                                outcome = .failure(error)
                            }
                        }
                        if position == tasks.count - 1 { prefetchNext() }
                        task.finish(outcome)
                    }
                }
                perTask = (Deadline.now.nanoseconds &- start) / UInt64(tasks.count)
            }
            averageNanoseconds = averageNanoseconds == .max ? perTask : (averageNanoseconds * 3 + perTask) / 4
            lock.lock()
        }
        lock.unlock()
        if brokenBy == nil { context.finalize() }
        lock.withLock {
            if state.workerEnded(worker) { ExitHook.unregister(self) }
            lock.broadcast()
        }
    }
}

/// The worker count an executor's `maxWorkers` argument asks for: `requested`, or `default` when
/// it is `nil`; every executor checks it here.
///
/// - Throws: ``ExecutorError`` `.invalidArgument` for a count below 1.
package func validatedMaxWorkers(_ requested: Int?, default: @autoclosure () -> Int) throws(ExecutorError) -> Int {
    let count = requested ?? `default`()
    guard count > 0 else {
        throw ExecutorError(.invalidArgument, "maxWorkers must be greater than 0, got \(count)")
    }
    return count
}
