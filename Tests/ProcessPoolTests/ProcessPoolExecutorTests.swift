import BundledGuests
import TestJobs
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// The test worker program, built next to the test bundle by `swift test`.
let workerPath: String = {
    let me = currentExecutablePath()
    return String(me[..<me.lastIndex(of: "/")!]) + "/FuturesTestWorker"
}()

/// Whether `pid` no longer exists (exited and reaped: not even a zombie).
func isGone(_ pid: Int32) -> Bool {
    kill(pid, 0) == -1 && errno == ESRCH
}

/// The number of sockets this process has open.
func openSockets() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        // Read in place: a record may be shorter than a whole `dirent`.
        let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
        var target = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/fd/\(name)", &target, 255)
        if length > 0, String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("socket:") {
            count += 1
        }
    }
    return count
}

func makePool(
    maxWorkers: Int = 2, maxTasksPerChild: Int? = nil, limits: InterpreterLimits = .default
) throws -> ProcessPoolExecutor {
    try ProcessPoolExecutor(
        maxWorkers: maxWorkers, maxTasksPerChild: maxTasksPerChild, workerExecutable: workerPath, limits: limits)
}

/// Runs a shell command and returns what it wrote to stdout and stderr.
func runProgram(_ command: String) throws -> String {
    guard let pipe = popen(command + " 2>&1", "r") else { throw Boom(id: 0) }
    var output = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, pipe)
        if count <= 0 { break }
        output += buffer[0..<count]
    }
    pclose(pipe)
    return String(decoding: output, as: UTF8.self)
}

func brokenError<T>(_ future: Future<T>) -> ExecutorError? {
    (try? future.exception(timeout: .seconds(30))).flatMap { $0 as? ExecutorError }
}

/// Process pool tests run one at a time: they count this process's sockets and children.
@Suite("ProcessPoolExecutor", .serialized)
struct ProcessPoolExecutorTests {
    @Test func jobsRunInWorkerProcesses() throws {
        let pool = try makePool()
        #expect(try pool.submit(TestJobs.double, 21).result() == 42)
        #expect(try pool.submit(TestJobs.sum, Pair(left: 2, right: 3)).result() == 5, "Codable arguments cross by encoding")
        let pid = try pool.submit(TestJobs.pid, 0).result()
        #expect(pid != Int(getpid()))
        #expect(pool.workerProcessIDs.contains(Int32(pid)))
        pool.shutdown()
        #expect(isGone(Int32(pid)), "no zombie is left")
        #expect(pool.workerProcessIDs.isEmpty)
    }

    @Test func tenThousandSmallTasks() throws {
        try makePool(maxWorkers: 2).run { pool throws in
            #expect(try pool.map(TestJobs.double, 0..<10_000).collect() == (0..<10_000).map { $0 * 2 })
            #expect(try pool.map(TestJobs.double, 0..<10_000, chunkSize: 64).collect() == (0..<10_000).map { $0 * 2 })
        }
    }

    /// The general chunked `map` takes a call per input: calls of several arguments from a
    /// sequence of tuples (mpi4py's `starmap`), results in input order whatever the chunking.
    @Test func chunkedMapOfTuplesCallsWithSeveralArguments() throws {
        try makePool(maxWorkers: 2).run { pool throws in
            let pairs = (0..<300).map { Pair(left: $0, right: 1_000 - 3 * $0) }
            let sums = try pool.map(pairs.map { ($0.left, $0.right) }, chunkSize: 16) { left, right in
                TestJobs.sum.call(Pair(left: left, right: right))
            }.collect()
            #expect(sums == pairs.map { $0.left + $0.right })
            #expect(throws: ExecutorError.self) { try pool.map([(1, 2)], chunkSize: 0) { TestJobs.sum.call(Pair(left: $0.0, right: $0.1)) } }
        }
    }

    @Test func sameGuestFunctionRunsOnAllThreeExecutors() throws {
        let square = try BundledGuests.tasks.function("square", returning: Int.self)
        let cpuBound = try BundledGuests.tasks.function("cpu_bound", returning: Int.self)
        func run(on executor: some PoolExecutor) throws -> [Int] {
            try executor.map(square, 1...5).collect() + [executor.submit(cpuBound, 1000).result()]
        }
        let expected = [1, 4, 9, 16, 25, 332_833_500]
        try ThreadPoolExecutor(maxWorkers: 2).run { pool throws in #expect(try run(on: pool) == expected) }
        try InterpreterPoolExecutor(maxWorkers: 2).run { pool throws in #expect(try run(on: pool) == expected) }
        try makePool().run { pool throws in #expect(try run(on: pool) == expected) }
    }

    @Test func guestTrapsKeepTheirTypeAcrossProcesses() throws {
        let divide = try BundledGuests.faults.function("divide", returning: Int.self)
        try makePool(limits: InterpreterLimits(fuel: 1_000_000)).run { pool throws in
            let error = try #require(throws: GuestError.self) { try pool.submit(divide, 1, 0).result() }
            #expect(error.kind == .divideByZero)
            #expect(error.function == "divide")
            #expect(try pool.submit(divide, 9, 3).result() == 3)
            let spin = try BundledGuests.examples.function("spin", returning: ShareableValue.self)
            let fuel = try #require(throws: GuestError.self) { try pool.submit(spin).result() }
            #expect(fuel.kind == .outOfFuel, "the pool's limits reach the workers")
        }
    }

    @Test func unknownJobsAndBadArgumentsFailTheirFuture() throws {
        try makePool().run { pool throws in
            let unknown = try #require(throws: RemoteError.self) { try pool.submit(TestJobs.unknown, 1).result() }
            #expect(unknown.code == .unknownJob)
            #expect(unknown.message.contains("not-registered"))
            #expect(throws: NotShareableError.self) { try pool.submit(TestJobs.unencodable, Unencodable()).result() }
            let failed = try #require(throws: RemoteError.self) { try pool.submit(TestJobs.fail, "no").result() }
            #expect(failed.code == .jobFailed)
            #expect(failed.typeName.hasSuffix("JobFailure"))
            #expect(failed.message == "job failed: no")
            #expect(throws: NotShareableError.self) { try pool.submit(Call { 1 }) }
            #expect(try pool.submit(TestJobs.double, 1).result() == 2, "the pool still serves")
        }
    }

    @Test func printingJobsCannotCorruptTheProtocol() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            #expect(try pool.map(TestJobs.chatty, [1, 2, 3]).collect() == [2, 3, 4])
        }
    }

    @Test func aWorkerKilledMidTaskFailsOnlyItsFutureAndIsReplaced() throws {
        let pool = try makePool(maxWorkers: 1)
        let first = try pool.submit(TestJobs.pid, 0).result()
        let running = try pool.submit(TestJobs.sleep, 10_000)
        let queued = try pool.submit(TestJobs.double, 5)
        waitUntil { running.isRunning }
        kill(Int32(first), SIGKILL)
        let error = try #require(brokenError(running))
        #expect(error.code == .brokenProcessPool)
        #expect(error.workerExit == .signaled(SIGKILL))
        #expect(error.message.contains("killed by signal 9 (SIGKILL)"))
        #expect(try queued.result(timeout: .seconds(30)) == 10, "the rest carries on in a new worker")
        let second = try pool.submit(TestJobs.pid, 0).result()
        #expect(second != first)
        pool.shutdown()
        #expect(isGone(Int32(first)) && isGone(Int32(second)))
    }

    @Test(arguments: [
        ("crash", ExecutorError.WorkerExit.signaled(SIGILL)), ("killSelf", .signaled(SIGKILL)), ("exit", .exited(3)),
        // Under a sanitizer the worker dies as the sanitizer makes it (a report, status 66), as it
        // would without the guests' handler.
        ("segfault", sanitized ? .exited(66) : .signaled(SIGSEGV)),
    ])
    func deathsAreReportedWithHowTheWorkerDied(job: String, expected: ExecutorError.WorkerExit) throws {
        try makePool(maxWorkers: 1).run { pool throws in
            let future: Future<Int> =
                switch job {
                case "crash": try pool.submit(TestJobs.crash, 0)
                case "killSelf": try pool.submit(TestJobs.killSelf, 0)
                case "segfault": try pool.submit(TestJobs.segfault, 8)
                default: try pool.submit(TestJobs.exit, 3)
                }
            let error = try #require(brokenError(future))
            #expect(error.code == .brokenProcessPool)
            #expect(error.workerExit == expected)
            #expect(try pool.submit(TestJobs.double, 4).result() == 8)
        }
    }

    @Test func aMalformedFrameIsTheWorkersDeathNotTheParents() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            let error = try #require(brokenError(try pool.submit(TestJobs.forge, 0)))
            #expect(error.code == .brokenProcessPool)
            #expect(error.message.contains("malformed frame"))
            #expect(try pool.submit(TestJobs.double, 4).result() == 8)
        }
    }

    /// A job that writes to fd 3, where the channel used to be, reaches nothing: results stay
    /// with their requests (it used to shift every later result of its worker by one).
    @Test func writingToDescriptorThreeCannotMisdirectResults() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            #expect(try pool.submit(TestJobs.writeDescriptor3, 5).result(timeout: .seconds(30)) == 10)
            for value in 10..<20 { #expect(try pool.submit(TestJobs.double, value).result(timeout: .seconds(30)) == value * 2) }
        }
    }

    /// A reply that names another request kills its worker as corrupt; later results are right.
    @Test func aReplyToAnotherRequestKillsTheWorker() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            let error = try #require(brokenError(try pool.submit(TestJobs.forge, 2)))
            #expect(error.code == .brokenProcessPool)
            #expect(error.message.contains("a reply to request 12345"), "\(error.message)")
            for value in 10..<15 { #expect(try pool.submit(TestJobs.double, value).result(timeout: .seconds(30)) == value * 2) }
        }
    }

    /// Random bytes written into the channel, bare or behind a frame header: the worker dies as
    /// corrupt or its reply is unaffected, and no later result is misdirected.
    @Test func corruptChannelsNeverMisdirectResults() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            for kind in 3..<43 {
                let forged = try pool.submit(TestJobs.forge, kind)
                switch Result(catching: { try forged.result(timeout: .seconds(30)) }) {
                case .success(let value): #expect(value == kind)
                case .failure(let error): #expect((error as? ExecutorError)?.code == .brokenProcessPool, "\(error)")
                }
                #expect(try pool.submit(TestJobs.double, kind).result(timeout: .seconds(30)) == kind * 2)
            }
        }
    }

    /// A plausible header announcing bytes that never come: the frame stalls, and the worker is
    /// killed instead of the future waiting for ever.
    @Test func aStalledFrameDoesNotHangThePool() throws {
        try makePool(maxWorkers: 1).run { pool throws in
            let error = try #require(brokenError(try pool.submit(TestJobs.forge, 1)))
            #expect(error.code == .brokenProcessPool)
            #expect(error.message.contains("stopped arriving"), "\(error.message)")
            #expect(try pool.submit(TestJobs.double, 4).result(timeout: .seconds(30)) == 8)
        }
    }

    @Test(arguments: ["old-protocol", "version-99"])
    func aWorkerOfAnotherProtocolVersionIsAClearError(mode: String) throws {
        let pool = try ProcessPoolExecutor(
            maxWorkers: 1, workerExecutable: workerPath, environment: ["FUTURES_TEST_WORKER_MODE": mode])
        defer { pool.shutdown() }
        let error = try #require(brokenError(try pool.submit(TestJobs.double, 1)))
        #expect(error.code == .brokenProcessPool)
        #expect(error.message.contains("protocol"), "\(error.message)")
        #expect(error.message.contains("Rebuild the worker program"))
    }

    /// A stopped worker costs its tasks `stoppedWorkerTimeout`, then it is killed and replaced.
    @Test func aStoppedWorkerIsKilledAfterItsTimeout() throws {
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: workerPath, stoppedWorkerTimeout: .milliseconds(500))
        defer { pool.shutdown() }
        let pid = try pool.submit(TestJobs.pid, 0).result()
        let slow = try pool.submit(TestJobs.sleep, 3_000)
        waitUntil { slow.isRunning }
        kill(Int32(pid), SIGSTOP)
        let error = try #require(brokenError(slow))
        #expect(error.code == .brokenProcessPool)
        #expect(error.message.contains("stopped"), "\(error.message)")
        #expect(error.workerExit == .signaled(SIGKILL))
        #expect(try pool.submit(TestJobs.double, 21).result(timeout: .seconds(30)) == 42)
        waitUntil { isGone(Int32(pid)) }
        #expect(isGone(Int32(pid)))
    }

    /// `terminateWorkers()` reaches stopped workers too, and returns.
    @Test func terminateWorkersEndsStoppedWorkers() throws {
        let pool = try makePool(maxWorkers: 2)
        let pids = try (0..<2).map { _ in try pool.submit(TestJobs.sleep, 200) }.map { try $0.result() }
        let running = try pool.submit(TestJobs.sleep, 10_000)
        waitUntil { running.isRunning }
        for pid in Set(pids) { kill(Int32(pid), SIGSTOP) }
        pool.terminateWorkers()
        #expect(brokenError(running)?.code == .brokenProcessPool)
        for pid in Set(pids) {
            waitUntil { isGone(Int32(pid)) }
            #expect(isGone(Int32(pid)))
        }
    }

    /// The parent kills a worker that stays silent past the calls' time limits (plus a grace),
    /// and a guest call's own time limit is enforced inside the worker.
    @Test func guestTimeLimitsHoldInWorkerProcesses() throws {
        let start = try GuestModule(wat: "(module (func $spin (loop $l (br $l))) (start $spin) (func (export \"f\") (result i64) (i64.const 1)))")
        let pool = try makePool(maxWorkers: 1, limits: InterpreterLimits(timeLimit: .milliseconds(100)))
        defer { pool.shutdown() }
        let error = try #require(try pool.submit(start.function("f", returning: Int.self)).exception(timeout: .seconds(30)) as? GuestError)
        #expect(error.kind == .timedOut)
        #expect(try pool.submit(TestJobs.double, 2).result(timeout: .seconds(30)) == 4)
    }

    /// Work accepted before the program ends runs before it exits, as Python joins its pools.
    @Test(arguments: ["thread-no-shutdown", "thread-shutdown-nowait", "process"])
    func acceptedWorkRunsBeforeTheProgramExits(variant: String) throws {
        let output = try runProgram("\(workerPath) exit-hook \(variant)")
        #expect(output.contains("main returns"))
        #expect(output.contains("apple"), "\(output)")
        if variant == "thread-shutdown-nowait" { #expect(output.contains("banana")) }
    }

    @Test func submittingAfterTheExitHookFailsClearly() throws {
        let output = try runProgram("\(workerPath) exit-hook submit-after-exit")
        #expect(output.contains("apple"))
        #expect(output.contains("refused: shutdown: cannot schedule new futures after interpreter shutdown"), "\(output)")
        #expect(!output.contains("never"))
    }

    @Test func theExitHookCanBeTurnedOff() throws {
        let output = try runProgram("CONCURRENT_FUTURES_EXIT_WAIT=0 \(workerPath) exit-hook thread-slow")
        #expect(output.contains("main returns"))
        #expect(!output.contains("apple"))
    }

    @Test func maxTasksPerChildRotatesWorkersThroughABacklog() throws {
        let pool = try makePool(maxWorkers: 1, maxTasksPerChild: 2)
        let pids = try pool.map(TestJobs.pid, Array(repeating: 0, count: 10)).collect()
        pool.shutdown()
        #expect(pids.count == 10)
        #expect(Set(pids).count == 5)
        #expect(pids.allSatisfy { isGone(Int32($0)) })
        expectCode(.invalidArgument) { _ = try makePool(maxTasksPerChild: 0) }
        expectCode(.invalidArgument) { _ = try makePool(maxWorkers: 0) }
    }

    @Test func shutdownWaitsForWorkInFlight() throws {
        let pool = try makePool(maxWorkers: 2)
        let futures = try (0..<4).map { _ in try pool.submit(TestJobs.sleep, 200) }
        pool.shutdown(wait: true, cancelFutures: false)
        let pids = try futures.map { try $0.result(timeout: .zero) }
        #expect(pids.allSatisfy { isGone(Int32($0)) })
        expectCode(.shutdown) { _ = try pool.submit(TestJobs.double, 1) }
    }

    @Test func shutdownCancelsQueuedWork() throws {
        let pool = try makePool(maxWorkers: 1)
        let running = try pool.submit(TestJobs.sleep, 300)
        waitUntil { running.isRunning }
        let queued = try (0..<5).map { try pool.submit(TestJobs.double, $0) }
        pool.shutdown(wait: true, cancelFutures: true)
        #expect(queued.allSatisfy { $0.isCancelled })
        #expect(isGone(Int32(try running.result(timeout: .zero))))
    }

    @Test(arguments: [true, false])
    func terminateAndKillWorkers(useKill: Bool) throws {
        let pool = try makePool(maxWorkers: 2)
        let running = try (0..<2).map { _ in try pool.submit(TestJobs.sleep, 20_000) }
        waitUntil { running.allSatisfy(\.isRunning) }
        let pids = pool.workerProcessIDs
        let queued = try pool.submit(TestJobs.double, 1)
        if useKill { pool.killWorkers() } else { pool.terminateWorkers() }
        for future in running {
            let error = try #require(brokenError(future))
            #expect(error.code == .brokenProcessPool)
            #expect(error.workerExit == .signaled(useKill ? SIGKILL : SIGTERM))
            #expect(error.message.contains(useKill ? "killWorkers()" : "terminateWorkers()"))
        }
        #expect(queued.isCancelled)
        #expect(pids.count == 2 && pids.allSatisfy(isGone))
        expectCode(.shutdown) { _ = try pool.submit(TestJobs.double, 1) }
    }

    @Test func initializerRunsInEachWorkerAndItsFailureBreaksThePool() throws {
        let pool = try ProcessPoolExecutor(
            maxWorkers: 1, workerExecutable: workerPath, initializer: TestJobs.initialize.call(7).discardingResult())
        #expect(try pool.submit(TestJobs.initialized, 0).result() == 7)
        pool.shutdown()
        let broken = try ProcessPoolExecutor(
            maxWorkers: 1, workerExecutable: workerPath, initializer: TestJobs.failingInitializer.call(0).discardingResult())
        let error = try #require(brokenError(try broken.submit(TestJobs.double, 1)))
        #expect(error.code == .brokenProcessPool)
        expectCode(.brokenProcessPool) { _ = try broken.submit(TestJobs.double, 1) }
        broken.shutdown()
        #expect(broken.workerProcessIDs.isEmpty)
    }

    @Test func aProgramThatIsNotAWorkerIsReportedClearly() throws {
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: "/bin/true")
        let error = try #require(brokenError(try pool.submit(TestJobs.double, 1)))
        #expect(error.code == .brokenProcessPool)
        #expect(error.message.contains("ProcessWorker.runIfRequested"))
        pool.shutdown()
        let missing = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: "/nonexistent/worker")
        #expect(brokenError(try missing.submit(TestJobs.double, 1))?.code == .brokenProcessPool)
        missing.shutdown()
    }

    @Test func noSocketsLeakAcrossPoolLifecycles() throws {
        let before = openSockets()
        for round in 0..<10 {
            let pool = try makePool(maxWorkers: 2)
            _ = try pool.map(TestJobs.double, 0..<4).collect()
            if round % 2 == 0 { pool.shutdown() } else { pool.killWorkers() }
        }
        #expect(openSockets() == before)
    }
}

@Suite("ProcessPoolExecutor limits", .serialized)
struct ProcessPoolLimitTests {
    @Test func queuesCannotCrossToAnotherProcess() throws {
        let producer = try BundledGuests.examples.function("producer", returning: Int.self)
        let pool = try makePool(maxWorkers: 1)
        #expect(throws: NotShareableError.self) { _ = try pool.submit(producer, Interpreters.createQueue()) }
        pool.shutdown()
    }

    @Test func maxTasksPerChildCountsCallsInChunks() throws {
        let pool = try makePool(maxWorkers: 1, maxTasksPerChild: 4)
        let pids = try pool.map(TestJobs.pid, Array(repeating: 0, count: 16), chunkSize: 4).collect()
        pool.shutdown()
        #expect(Set(pids).count == 4, "one worker per chunk of 4 calls")
    }

    @Test func guestInitializersRunAgainInTheWorkerAfterATrap() throws {
        let module = try GuestModule(wat: Fixtures.counter)
        let bump = try module.function("bump", returning: Int.self)
        let boom = try module.function("boom", returning: ShareableValue.self)
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: workerPath, initializer: bump.call().discardingResult())
        #expect(try pool.submit(bump).result() == 2)
        #expect(throws: GuestError.self) { try pool.submit(boom).result() }
        #expect(try pool.submit(bump).result() == 2)
        pool.shutdown()
    }
}

enum Fixtures {
    static let counter = """
        (module
          (global $counter (mut i64) (i64.const 0))
          (func (export "bump") (result i64)
            global.get $counter i64.const 1 i64.add global.set $counter global.get $counter)
          (func (export "boom") unreachable))
        """
}

/// Host functions on the process pool: a worker links the ones its program registered
/// (`ProcessWorker.runIfRequested(jobs:hostFunctions:)`); the test worker registers none.
@Suite("Process pool, host functions")
struct ProcessHostFunctionTests {
    @Test func aModuleImportingAnUnregisteredHostFunctionFailsToLoadWithTheList() throws {
        let linker = Linker([HostFunction(module: "env", name: "answer", results: [.i64]) { _ in [.int64(42)] }])
        let module = try GuestModule(
            wat: """
                (module (import "env" "answer" (func $answer (result i64)))
                  (func (export "ask") (result i64) (call $answer)))
                """, name: "asks", linker: linker)
        let ask = try module.function("ask", returning: Int.self)
        // In this process the host function is there.
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        #expect(try interpreter.call(ask) == 42)
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: workerPath)
        defer { pool.shutdown() }
        let error = #expect(throws: ModuleError.self) { try pool.submit(ask).result() }
        #expect(error?.code == .missingImports)
        #expect(error?.missingImports == ["env.answer"])
        #expect(error?.message.contains("no host functions are defined") == true, "\(String(describing: error))")
        // The worker goes on serving.
        let good = try GuestModule(wat: "(module (func (export \"two\") (result i64) (i64.const 2)))")
        #expect(try pool.submit(good.function("two", returning: Int.self)).result() == 2)
    }
}
