import Dispatch
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

@Suite("ThreadPoolExecutor")
struct ThreadPoolExecutorTests {
    @Test func rejectsNonPositiveMaxWorkers() {
        expectCode(.invalidArgument) { _ = try ThreadPoolExecutor(maxWorkers: 0) }
        expectCode(.invalidArgument) { _ = try ThreadPoolExecutor(maxWorkers: -3) }
    }

    @Test func defaultMaxWorkersFollowsPython() throws {
        let pool = try ThreadPoolExecutor()
        #expect(pool.maxWorkers == min(32, ProcessorCount.available + 4))
        pool.shutdown()
    }

    @Test func submitReturnsValuesAndErrorsFailOnlyTheirFuture() throws {
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            let good = try pool.submit { 6 * 7 }
            let bad = try pool.submit { () throws -> Int in throw Boom(id: 1) }
            let after = try pool.submit { "still serving" }
            #expect(try good.result() == 42)
            #expect(throws: Boom(id: 1)) { try bad.result() }
            #expect(try after.result() == "still serving")
        }
    }

    @Test func sequentialSubmissionsReuseOneThread() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 4, threadNamePrefix: "Reuse")
        var names: Set<String> = []
        for value in 0..<3 {
            let name = try pool.submit { ExecutorThread.currentName ?? "?" }.result()
            names.insert(name)
            #expect(value >= 0)
        }
        #expect(names == ["Reuse_0"])
        #expect(pool.workerCount == 1)
        pool.shutdown()
        #expect(pool.workerCount == 0)
    }

    @Test func saturationStartsExactlyMaxWorkersNamedByPrefix() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 4, threadNamePrefix: "SpecialPool")
        let gate = Gate()
        let futures = try (0..<10).map { _ in
            try pool.submit { () -> String in
                gate.wait()
                return ExecutorThread.currentName ?? "?"
            }
        }
        gate.awaitArrivals(4)
        #expect(pool.workerCount == 4)
        gate.open()
        let names = Set(try futures.map { try $0.result() })
        #expect(names == ["SpecialPool_0", "SpecialPool_1", "SpecialPool_2", "SpecialPool_3"])
        pool.shutdown()
    }

    @Test func defaultPrefixNamesThePool() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let name = try pool.submit { ExecutorThread.currentName ?? "?" }.result()
        #expect(name.hasPrefix("ThreadPoolExecutor-"))
        #expect(name.hasSuffix("_0"))
        #expect(pool.threadNamePrefix + "_0" == name)
        pool.shutdown()
    }

    @Test func initializerRunsOncePerWorkerBeforeItsFirstTask() throws {
        let initialized = Recorder<String>()
        let pool = try ThreadPoolExecutor(
            maxWorkers: 3, threadNamePrefix: "Init",
            initializer: Call {
                initialized.append(ExecutorThread.currentName ?? "?")
            })
        let gate = Gate()
        let futures = try (0..<9).map { _ in
            try pool.submit { () -> Bool in
                gate.wait()
                return initialized.all.contains(ExecutorThread.currentName ?? "?")
            }
        }
        gate.awaitArrivals(3)
        gate.open()
        #expect(try futures.allSatisfy { try $0.result() })
        pool.shutdown()
        #expect(initialized.all.sorted() == ["Init_0", "Init_1", "Init_2"])
    }

    @Test func failingInitializerBreaksThePool() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 1, initializer: Call { throw Boom(id: 99) })
        let first = try pool.submit { 1 }
        let error = try #require(throws: ExecutorError.self) { try first.result(timeout: .seconds(5)) }
        #expect(error.code == .brokenThreadPool)
        #expect(error.code.isBrokenExecutor)
        #expect(error.message.contains("initializer"))
        expectCode(.brokenThreadPool) { _ = try pool.submit { 2 } }
        pool.shutdown()
    }

    @Test func brokenPoolLetsRunningTasksFinish() throws {
        let attempts = Counter()
        let gate = Gate()
        let pool = try ThreadPoolExecutor(
            maxWorkers: 2,
            initializer: Call {
                // The first worker initializes fine; the second one fails.
                if attempts.increment() == 2 { throw Boom(id: 2) }
            })
        let running = try pool.submit { () -> Int in
            gate.wait()
            return 1
        }
        gate.awaitArrivals(1)
        let queued = try pool.submit { 2 }  // starts the failing second worker
        let error = try #require(throws: ExecutorError.self) { try queued.result(timeout: .seconds(5)) }
        #expect(error.code == .brokenThreadPool)
        gate.open()
        #expect(try running.result(timeout: .seconds(5)) == 1)
        pool.shutdown()
    }

    @Test func shutdownIsIdempotentAndRejectsNewWork() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2)
        _ = try pool.submit { 1 }.result()
        pool.shutdown()
        pool.shutdown()
        pool.shutdown(wait: false, cancelFutures: true)
        let error = try #require(throws: ExecutorError.self) { try pool.submit { 1 } }
        #expect(error.code == .shutdown)
        #expect(error.message == "cannot schedule new futures after shutdown")
        expectCode(.shutdown) { _ = try pool.map([1, 2]) { $0 } }
    }

    @Test func shutdownRunsQueuedWorkUnlessCancelled() throws {
        let gate = Gate()
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let running = try pool.submit { () -> Int in
            gate.wait()
            return 0
        }
        gate.awaitArrivals(1)
        let queued = try (1...5).map { value in try pool.submit { value } }
        pool.shutdown(wait: false, cancelFutures: false)
        gate.open()
        #expect(try queued.map { try $0.result(timeout: .seconds(5)) } == [1, 2, 3, 4, 5])
        #expect(try running.result() == 0)
        pool.shutdown()
    }

    @Test func shutdownWithCancelFuturesCancelsQueuedAndFinishesRunning() throws {
        let gate = Gate()
        let pool = try ThreadPoolExecutor(maxWorkers: 1)
        let running = try pool.submit { () -> Int in
            gate.wait()
            return 7
        }
        gate.awaitArrivals(1)
        let queued = try (0..<5).map { value in try pool.submit { value } }
        pool.shutdown(wait: false, cancelFutures: true)
        #expect(queued.allSatisfy { $0.isCancelled })
        gate.open()
        #expect(try running.result(timeout: .seconds(5)) == 7)
        pool.shutdown()
        #expect(pool.workerCount == 0)
    }

    @Test func scopedRunShutsDownEvenWhenTheBodyThrows() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2)
        #expect(throws: Boom(id: 5)) {
            try pool.run { pool throws in
                _ = try pool.submit { 1 }
                throw Boom(id: 5)
            }
        }
        expectCode(.shutdown) { _ = try pool.submit { 1 } }
        #expect(pool.workerCount == 0)
    }

    @Test func genericCallsRunThroughTheExecutorProtocol() throws {
        func runAnywhere(_ executor: some PoolExecutor) throws -> Int {
            try executor.submit(Call { 20 + 22 }).result()
        }
        try ThreadPoolExecutor(maxWorkers: 1).run { pool throws in
            #expect(try runAnywhere(pool) == 42)
        }
    }

    @Test func jobsRunDirectlyOnThreads() throws {
        let double = Job("double") { (value: Int) in value * 2 }
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            #expect(try pool.submit(double, 21).result() == 42)
            #expect(try pool.map(double, [1, 2, 3]).collect() == [2, 4, 6])
        }
    }

    @Test func resultFromInsideATaskWorksWhenAWorkerIsFree() throws {
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in
            let outer = try pool.submit { () -> Int in
                let inner = try pool.submit { 5 }
                return try inner.result(timeout: .seconds(5)) + 1
            }
            #expect(try outer.result() == 6)
        }
    }

    @Test func shutdownFromInsideATaskDoesNotDeadlock() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2)
        let future = try pool.submit { () -> Bool in
            pool.shutdown(wait: true, cancelFutures: false)
            return true
        }
        #expect(try future.result(timeout: .seconds(5)))
        pool.shutdown()
    }

    /// A task that holds the last reference to its executor: the executor's deinit runs on the
    /// worker thread when the task is released, and must not find the pool's lock held.
    @Test func aTaskHoldingTheLastReferenceToItsExecutorEndsCleanly() throws {
        let ranPromise = Promise<Int>()
        let ran = ranPromise.future
        let inner: WorkerPool<ThreadContext>
        do {
            let pool = try ThreadPoolExecutor(maxWorkers: 1)
            inner = pool.pool
            _ = try pool.submit {
                usleep(20_000)
                withExtendedLifetime(pool) {}
                try? ranPromise.setResult(1)
            }
        }
        #expect(try ran.result(timeout: .seconds(10)) == 1)
        waitUntil { inner.workerCount == 0 }
        #expect(inner.workerCount == 0, "the worker ended: the executor's deinit shut the pool down")
    }
}
