import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures

/// A task that records what the pool did to it.
final class FakeTask: WorkerTask, @unchecked Sendable {
    typealias Output = Int

    let id: Int
    let isAwaited: Bool
    private let events = Locked<[String]>([])
    private let cancelledBeforeStart: Bool

    init(_ id: Int, awaited: Bool = true, cancelled: Bool = false) {
        self.id = id
        isAwaited = awaited
        cancelledBeforeStart = cancelled
    }

    var log: [String] { events.withLock { $0 } }

    func start() -> Bool {
        events.withLock { $0.append("start") }
        return !cancelledBeforeStart
    }
    func cancel() { events.withLock { $0.append("cancel") } }
    func fail(_ error: ExecutorError) { events.withLock { $0.append("fail \(error.code)") } }
    func finish(_ outcome: Result<Int, any Error>) {
        events.withLock { $0.append("finish \((try? outcome.get()).map(String.init) ?? "error")") }
    }
}

/// The pool's rules, tested on its state alone: no threads, no locks.
@Suite("WorkerPool state")
struct WorkerPoolStateTests {
    typealias State = WorkerPoolState<FakeTask>

    @Test func submissionsStartOneWorkerPerTaskUpToTheMaximum() throws {
        var state = State(maxWorkers: 2)
        #expect(try state.submit([FakeTask(0)], exiting: false) == .init(start: [0], wake: 0))
        #expect(try state.submit([FakeTask(1), FakeTask(2)], exiting: false) == .init(start: [1], wake: 0))
        #expect(state.liveWorkers == 2 && state.startedWorkers == 2)
        #expect(state.queuedTasks.map(\.id) == [0, 1, 2])
    }

    @Test func anIdleWorkerIsReusedBeforeANewOneStarts() throws {
        var state = State(maxWorkers: 4)
        _ = try state.submit([FakeTask(0)], exiting: false)
        var worker = State.Worker(index: 0)
        guard case .run(let batch) = state.next(for: &worker, batchLimit: 1, takeShare: false) else {
            Issue.record("expected a batch")
            return
        }
        #expect(batch.map(\.id) == [0])
        // Finished, nothing left: the worker publishes its idle token and sleeps.
        #expect(state.prefetch(for: &worker, batchLimit: 1, takeShare: false).isEmpty)
        #expect(state.idleTokens == 1 && worker.hasIdleToken)
        guard case .sleep = state.next(for: &worker, batchLimit: 1, takeShare: false) else {
            Issue.record("expected sleep")
            return
        }
        #expect(state.idleTokens == 1, "a second token is not published for the same idle worker")
        // The next submission takes the token and wakes the sleeper instead of starting a thread.
        #expect(try state.submit([FakeTask(1)], exiting: false) == .init(start: [], wake: 1))
        #expect(state.idleTokens == 0 && state.liveWorkers == 1)
        state.wokeUp()
        guard case .run(let next) = state.next(for: &worker, batchLimit: 1, takeShare: false) else {
            Issue.record("expected a batch")
            return
        }
        #expect(next.map(\.id) == [1])
        #expect(!worker.hasIdleToken)
    }

    @Test func aWorkerWithShortTasksTakesItsFairShare() throws {
        var state = State(maxWorkers: 2)
        _ = try state.submit((0..<11).map { FakeTask($0) }, exiting: false)
        var worker = State.Worker(index: 0)
        guard case .run(let long) = state.next(for: &worker, batchLimit: 32, takeShare: false) else { return }
        #expect(long.map(\.id) == [0], "long tasks go one at a time")
        guard case .run(let short) = state.next(for: &worker, batchLimit: 32, takeShare: true) else { return }
        #expect(short.map(\.id) == [1, 2, 3, 4, 5], "the first task, then 9 left over 2 workers: 4 more")
        guard case .run(let capped) = state.next(for: &worker, batchLimit: 2, takeShare: true) else { return }
        #expect(capped.map(\.id) == [6, 7], "at most batchLimit tasks")
    }

    @Test func shutdownRefusesWorkAndCancelsOnlyAwaitedTasks() throws {
        var state = State(maxWorkers: 1)
        let awaited = FakeTask(0)
        let job = FakeTask(1, awaited: false)
        _ = try state.submit([awaited, job], exiting: false)
        let cancelled = state.shutdown(cancelTasks: true)
        #expect(cancelled.map(\.id) == [0])
        #expect(state.queuedTasks.map(\.id) == [1], "a Swift concurrency job is never dropped")
        let error = try #require(throws: ExecutorError.self) { _ = try state.submit([FakeTask(2)], exiting: false) }
        #expect(error.code == .shutdown)
        #expect(throws: Never.self) { _ = try state.submit([FakeTask(3, awaited: false)], exiting: false) }
        var worker = State.Worker(index: 0)
        guard case .run(let batch) = state.next(for: &worker, batchLimit: 1, takeShare: false) else { return }
        #expect(batch.map(\.id) == [1])
        guard case .run = state.next(for: &worker, batchLimit: 1, takeShare: false) else { return }
        guard case .exit = state.next(for: &worker, batchLimit: 1, takeShare: false) else {
            Issue.record("a shut-down pool's worker ends once the queue is empty")
            return
        }
        let wasLast = state.workerEnded(worker)
        #expect(wasLast)
    }

    @Test func atExitSubmissionsAreRefusedWithTheirOwnMessage() {
        var state = State(maxWorkers: 1)
        let error = #expect(throws: ExecutorError.self) { _ = try state.submit([FakeTask(0)], exiting: true) }
        #expect(error?.message.contains("interpreter shutdown") == true)
    }

    @Test func aBrokenPoolFailsWhatIsQueuedAndRefusesMore() throws {
        var state = State(maxWorkers: 1)
        _ = try state.submit([FakeTask(0), FakeTask(1, awaited: false)], exiting: false)
        let (error, failed) = state.breakPool(code: .brokenThreadPool, message: "broken", cause: Boom(id: 5))
        #expect(error.code == .brokenThreadPool)
        #expect(error.underlying as? Boom == Boom(id: 5), "the cause is kept, not only its text")
        #expect(failed.map(\.id) == [0])
        #expect(state.queuedTasks.map(\.id) == [1])
        #expect(throws: error) { _ = try state.submit([FakeTask(2)], exiting: false) }
        let (again, _) = state.breakPool(code: .brokenThreadPool, message: "other", cause: Boom(id: 6))
        #expect(again == error, "the first error is kept")
    }

    @Test func aWorkerThatCannotStartTakesBackTheSubmissionWhenNoneIsLeft() throws {
        var state = State(maxWorkers: 2)
        let dispatch = try state.submit([FakeTask(0)], exiting: false)
        let failure = ExecutorError(.resourceExhausted, "no thread")
        #expect(throws: failure) { try state.workerFailedToStart(dispatch.start[0], because: failure, submitted: 1) }
        #expect(state.queuedTasks.isEmpty && state.liveWorkers == 0)
        // With a worker alive, the task waits for it.
        _ = try state.submit([FakeTask(1)], exiting: false)
        let second = try state.submit([FakeTask(2)], exiting: false)
        try state.workerFailedToStart(second.start[0], because: failure, submitted: 1)
        #expect(state.queuedTasks.map(\.id) == [1, 2] && state.liveWorkers == 1)
    }

    @Test func wakeUpsAreNotSentTwiceToOneSleeper() throws {
        var state = State(maxWorkers: 1)
        _ = try state.submit([FakeTask(0)], exiting: false)
        var worker = State.Worker(index: 0)
        _ = state.next(for: &worker, batchLimit: 1, takeShare: false)
        guard case .sleep = state.next(for: &worker, batchLimit: 1, takeShare: false) else { return }
        #expect(try state.submit([FakeTask(1)], exiting: false).wake == 1)
        #expect(try state.submit([FakeTask(2)], exiting: false).wake == 0, "one wake-up is already on its way")
        state.wokeUp()
        #expect(state.pendingWakeups == 0 && state.sleepingWorkers == 0)
    }
}

/// A worker context that records its lifecycle.
struct FakeContext: WorkerContext {
    let events: Recorder<String>
    let failInitialize: Bool

    mutating func initialize() throws {
        events.append("initialize")
        if failInitialize { throw Boom(id: 42) }
    }
    mutating func run(_ task: FakeTask) throws -> Int {
        events.append("run \(task.id)")
        return task.id * 10
    }
    mutating func finalize() { events.append("finalize") }
}

@Suite("WorkerPool with a fake context")
struct WorkerPoolTests {
    func makePool(maxWorkers: Int = 1, failInitialize: Bool = false, events: Recorder<String>) -> WorkerPool<FakeContext> {
        WorkerPool(
            configuration: .init(maxWorkers: maxWorkers, threadNamePrefix: "fake", brokenCode: .brokenThreadPool, brokenMessage: "broken"),
            makeContext: { _ in FakeContext(events: events, failInitialize: failInitialize) })
    }

    @Test func tasksRunInOrderBetweenInitializeAndFinalize() throws {
        let events = Recorder<String>()
        let pool = makePool(events: events)
        let tasks = (0..<3).map { FakeTask($0) }
        try pool.submit(contentsOf: tasks)
        pool.shutdown(wait: true, cancelFutures: false)
        #expect(events.all == ["initialize", "run 0", "run 1", "run 2", "finalize"])
        for (index, task) in tasks.enumerated() { #expect(task.log == ["start", "finish \(index * 10)"]) }
        #expect(pool.workerCount == 0)
    }

    @Test func aCancelledTaskIsNotRun() throws {
        let events = Recorder<String>()
        let pool = makePool(events: events)
        let cancelled = FakeTask(7, cancelled: true)
        try pool.submit(cancelled)
        pool.shutdown(wait: true, cancelFutures: false)
        #expect(cancelled.log == ["start"])
        #expect(!events.all.contains("run 7"))
    }

    @Test func aFailingInitializerBreaksThePoolAndFailsTheTasks() throws {
        let events = Recorder<String>()
        let pool = makePool(failInitialize: true, events: events)
        let task = FakeTask(1)
        try pool.submit(task)
        pool.shutdown(wait: true, cancelFutures: false)
        #expect(events.all == ["initialize"], "no task runs and finalize does not run after a failed initialize")
        #expect(task.log.contains { $0.hasPrefix("fail brokenThreadPool") || $0 == "finish error" })
        let error = try #require(pool.broken)
        #expect(error.underlying as? Boom == Boom(id: 42))
        #expect(throws: error) { try pool.submit(FakeTask(2)) }
    }
}
