import DequeModule
import Synchronization
import Tracing

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
    /// The pool's metrics and tracer (docs/observability.md), resolved when it was created.
    package let instruments: PoolInstruments
    private let makeContext: @Sendable (_ workerIndex: Int) -> Context

    private let lock = ConditionLock()
    /// Every counter and the queue; read and changed only with `lock` held.
    private var state: WorkerPoolState<QueuedTask<Context.Task>>
    /// Set by `shutdown(cancelFutures: true)`: tasks a worker took in a batch but has not started
    /// are cancelled too, as queued ones are. Read without the lock.
    private let cancelQueued = Atomic<Bool>(false)

    /// Creates a pool; no thread starts before the first submission. While it has workers, the
    /// pool is in the program's exit hook (see ``ExitHook``): work it accepted runs before the
    /// program exits.
    package init(
        configuration: Configuration, instruments: PoolInstruments = .disabled,
        makeContext: @escaping @Sendable (_ workerIndex: Int) -> Context
    ) {
        self.configuration = configuration
        self.instruments = instruments
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
        let metrics = instruments.metrics
        // The submitter's context: the parent of the tasks' spans, and current while they run here.
        let context = ServiceContext.current
        let stamp =
            metrics == nil && instruments.tracer == nil && context == nil
            ? nil : TaskStamp(queuedAt: metrics == nil ? 0 : Deadline.now.nanoseconds, context: context)
        lock.lock()
        defer { lock.unlock() }
        let dispatch = try state.submit(tasks.lazy.map { QueuedTask(task: $0, stamp: stamp) }, exiting: ExitHook.isExiting)
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
        if let metrics {
            metrics.submitted.increment(by: tasks.reduce(0) { $0 + $1.callCount })
            metrics.queueDepth.increment(by: Double(tasks.count))
        }
    }

    /// Stops accepting work. With `cancelFutures`, cancels every queued task that has a future;
    /// with `wait`, returns only when every worker has ended.
    package func shutdown(wait: Bool, cancelFutures: Bool) {
        let cancelled: [QueuedTask<Context.Task>] = lock.withLock {
            if cancelFutures { cancelQueued.store(true, ordering: .relaxed) }
            defer { lock.broadcast() }
            return state.shutdown(cancelTasks: cancelFutures)
        }
        for task in cancelled { task.cancel() }
        if let metrics = instruments.metrics, !cancelled.isEmpty {
            metrics.queueDepth.decrement(by: Double(cancelled.count))
            for task in cancelled { metrics.recordOutcomes(of: task) }
        }
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
        let (broken, failed, first) = lock.withLock {
            let first = state.brokenError == nil
            let (broken, failed) = state.breakPool(code: configuration.brokenCode, message: configuration.brokenMessage, cause: error)
            return (broken, failed, first)
        }
        futuresLogger.critical("\(logPrefix): \(error)")
        for task in failed { task.fail(broken) }
        if let metrics = instruments.metrics {
            if first { metrics.brokenPools.increment() }
            metrics.queueDepth.decrement(by: Double(failed.count))
            for task in failed { metrics.recordOutcomes(of: task) }
        }
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
        let metrics = instruments.metrics
        let tracer = instruments.tracer
        if metrics != nil || tracer != nil { context.instrument(with: instruments) }
        metrics?.idleWorkers.increment()
        var brokenBy: ExecutorError?
        do {
            try context.initialize()
        } catch {
            brokenBy = breakPool(because: error)
        }
        let batchLimit = max(1, context.batchLimit)
        var averageNanoseconds: UInt64 = .max
        var worker = WorkerPoolState<QueuedTask<Context.Task>>.Worker(index: index)
        var prefetched: [QueuedTask<Context.Task>] = []

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
                var tally = BatchTally()
                if let metrics {
                    metrics.queueDepth.decrement(by: Double(tasks.count))
                    metrics.busyWorkers.increment()
                    metrics.idleWorkers.decrement()
                }
                func prefetchNext() {
                    lock.lock()
                    prefetched = state.prefetch(for: &worker, batchLimit: batchLimit, takeShare: short)
                    lock.unlock()
                }
                if Context.runsBatchesTogether && tasks.count > 1 {
                    let started = tasks.filter { task in
                        if task.start() { return true }
                        if let metrics { tally.count(task, started: false, metrics) }
                        return false
                    }
                    if tracer != nil, !Context.recordsSpans {
                        for task in started { task.task.attach(trace: task.context ?? .topLevel) }
                    }
                    let outcomes =
                        brokenBy.map { error in started.map { _ in .failure(error) } } ?? context.run(batch: started.map(\.task))
                    prefetchNext()
                    for (task, outcome) in zip(started, outcomes) { task.finish(outcome) }
                    if let metrics { for task in started { tally.count(task, started: true, metrics) } }
                } else {
                    // An index loop: code of this generic class runs unspecialized for contexts of
                    // other modules (the interpreter pool's), where `enumerated()` looked up its
                    // iterator's type metadata for every task.
                    for position in 0..<tasks.count {
                        let task = tasks[position]
                        if position > 0, task.isAwaited, cancelQueued.load(ordering: .relaxed) {
                            task.cancel()
                            if let metrics { tally.count(task, started: false, metrics) }
                            continue
                        }
                        guard task.start() else {
                            if let metrics { tally.count(task, started: false, metrics) }
                            continue
                        }
                        if tracer == nil, task.stamp == nil || brokenBy != nil {
                            let outcome: Result<Context.Task.Output, any Error>
                            if let brokenBy, task.isAwaited {
                                outcome = .failure(brokenBy)
                            } else {
                                do {
                                    outcome = .success(try context.run(task.task))
                                } catch {
                                    outcome = .failure(error)
                                }
                            }
                            if position == tasks.count - 1 { prefetchNext() }
                            task.finish(outcome)
                            if let metrics { tally.count(task, started: true, metrics) }
                        } else {
                            runTraced(task, in: &context, isLast: position == tasks.count - 1, prefetchNext: prefetchNext)
                            if let metrics { tally.count(task, started: true, metrics) }
                        }
                    }
                }
                let end = Deadline.now.nanoseconds
                perTask = (end &- start) / UInt64(tasks.count)
                if let metrics {
                    context.batchEnded()
                    tally.report(to: metrics, start: start, end: end)
                }
            }
            averageNanoseconds = averageNanoseconds == .max ? perTask : (averageNanoseconds * 3 + perTask) / 4
            lock.lock()
        }
        lock.unlock()
        metrics?.idleWorkers.decrement()
        if brokenBy == nil { context.finalize() }
        lock.withLock {
            if state.workerEnded(worker) { ExitHook.unregister(self) }
            lock.broadcast()
        }
    }
}

/// What a worker counts over one batch of tasks, reported at the batch's end: the metrics see one
/// update per batch, not per task, so that recording costs next to nothing beside a short task.
/// Failures and cancellations (rare, and labelled) are counted as they happen.
private struct BatchTally {
    var started = 0
    var completed = 0
    var ran = 0
    var oldestQueuedAt: UInt64 = 0

    mutating func count(_ task: some WorkerTask, started: Bool, _ metrics: PoolMetrics) {
        if started {
            self.started += task.callCount
            ran += 1
        }
        var completed = 0
        task.forEachOutcome { outcome in
            switch outcome {
            case .completed: completed += 1
            case .failed(let error): metrics.failed(error)
            case .cancelled: metrics.cancelled.increment()
            }
        }
        self.completed += completed
    }

    mutating func count<Task>(_ task: QueuedTask<Task>, started: Bool, _ metrics: PoolMetrics) {
        if started, oldestQueuedAt == 0 || (task.queuedAt != 0 && task.queuedAt < oldestQueuedAt) { oldestQueuedAt = task.queuedAt }
        count(task.task, started: started, metrics)
    }

    /// Reports the batch, run from `start` to `end`: the counts; the time queued of its oldest
    /// task; its run time per task, as one observation; the worker idle again.
    func report(to metrics: PoolMetrics, start: UInt64, end: UInt64) {
        metrics.busyWorkers.decrement()
        metrics.idleWorkers.increment()
        if started > 0 { metrics.started.increment(by: started) }
        if completed > 0 { metrics.completed.increment(by: completed) }
        if ran > 0 {
            if oldestQueuedAt != 0, start > oldestQueuedAt { metrics.queuedTime.recordNanoseconds(Int64(clamping: start &- oldestQueuedAt)) }
            metrics.runTime.recordNanoseconds(Int64(clamping: (end &- start) / UInt64(ran)))
        }
    }
}

extension WorkerPool {
    /// Runs a started task with its span (a child of the submitter's context, for contexts that
    /// run tasks here) and the submitter's context as the current one while it runs; a context
    /// that sends tasks to another process gets the submitter's context to send with it.
    fileprivate func runTraced(
        _ task: QueuedTask<Context.Task>, in context: inout Context, isLast: Bool, prefetchNext: () -> Void
    ) {
        var span: (any Span)?
        var current = task.context
        if let tracer = instruments.tracer {
            if Context.recordsSpans {
                let started = tracer.startSpan("futures.task", context: task.context ?? .topLevel, ofKind: .internal)
                started.updateAttributes { attributes in
                    instruments.addPoolAttributes(to: &attributes)
                    task.task.describe(into: &attributes)
                }
                span = started
                current = started.context
            } else {
                task.task.attach(trace: task.context ?? .topLevel)
            }
        }
        let outcome: Result<Context.Task.Output, any Error>
        if let current {
            outcome = ServiceContext.$current.withValue(current) { Result { try context.run(task.task) } }
        } else {
            outcome = Result { try context.run(task.task) }
        }
        if isLast { prefetchNext() }
        task.finish(outcome)
        if let span {
            task.forEachOutcome { outcome in
                switch outcome {
                case .completed:
                    span.attributes["futures.outcome"] = "completed"
                case .cancelled:
                    span.attributes["futures.outcome"] = "cancelled"
                case .failed(let error):
                    span.attributes["futures.outcome"] = "failed"
                    span.attributes["futures.error"] = PoolMetrics.errorLabel(error)
                    span.recordError(error)
                    span.setStatus(SpanStatus(code: .error))
                }
            }
            span.end()
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
