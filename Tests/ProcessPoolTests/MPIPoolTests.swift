import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// Whether MPICH's `mpiexec` is installed. CI sets `CONCURRENT_FUTURES_REQUIRE_MPI=1` (and
/// installs MPICH first), so that there a missing MPI fails the suite rather than skipping it.
let mpiAvailable = !((try? runProgram("command -v mpiexec")) ?? "").isEmpty
let mpiRequired = getenv("CONCURRENT_FUTURES_REQUIRE_MPI").map { String(cString: $0) == "1" } ?? false

/// `mpiexec` options for the tests: under ThreadSanitizer (`TSAN_OPTIONS` set, as the README's
/// command sets it), UCX's memory hooks crash a sanitized process as MPI starts, so they are
/// turned off (`UCX_MEM_EVENTS=no`); otherwise the launch is MPICH's default.
let mpiexecSanitizerOptions = getenv("TSAN_OPTIONS") != nil ? "-genv UCX_MEM_EVENTS no" : ""

/// Runs `FuturesTestWorker mpi SCENARIO` under `mpiexec` (bounded by `timeout`), and returns its
/// output with a last line `status=N`; checks that no process of the launch is left behind.
func mpiScenario(_ scenario: String, ranks: Int = 3, options: String = "") throws -> String {
    let output = try runProgram(
        "timeout -k 10 120 mpiexec \(mpiexecSanitizerOptions) \(options) -n \(ranks) \(workerPath) mpi \(scenario); echo status=$?")
    let leftovers = try runProgram("pgrep -fx '\(workerPath) mpi \(scenario)' || true")
    #expect(leftovers.isEmpty, "processes left behind by \(scenario): \(leftovers)")
    #expect(!output.contains("status=124"), "mpiexec hung: \(output)")
    #expect(!output.contains("WARNING: ThreadSanitizer"), "a sanitized rank reported a race: \(output)")
    return output
}

@Suite("MPIPoolExecutor", .serialized)
struct MPIPoolTests {
    @Test func mpiIsInstalledWhereItIsRequired() {
        #expect(mpiAvailable || !mpiRequired, "CONCURRENT_FUTURES_REQUIRE_MPI=1 but mpiexec is not installed (apt-get install mpich)")
    }

    /// Outside a launch the pool refuses with a clear error, and nothing of MPI is loaded.
    @Test func withoutALauncherThePoolSaysHowToStartOne() throws {
        #expect(!MPIWorker.isLaunched)
        MPIWorker.runIfRequested()
        let error = #expect(throws: MPIError.self) { try MPIPoolExecutor() }
        #expect(error?.code == .notLaunched)
        #expect(error?.message.contains("mpiexec -n N") == true)
        #expect(MPIWorker.rank == nil)
    }

    @Test func theHeartbeatTimeoutCoversTwoPings() {
        let error = #expect(throws: ExecutorError.self) { try MPIPoolExecutor(heartbeatTimeout: .milliseconds(300)) }
        #expect(error?.code == .invalidArgument)
    }

    /// `maxWorkers` is the most calls running at once on the ranks, chunked or batched (it was
    /// not: a chunk ran on the rank's own pools all at once).
    @Test(.enabled(if: mpiAvailable))
    func maxWorkersCapsTheCallsRunningAtOnceOnTheRanks() throws {
        let output = try mpiScenario("max-workers")
        #expect(output.contains("maxWorkers 1: most at once on a rank 1"), "\(output)")
        #expect(output.contains("maxWorkers 2: most at once on a rank 1"), "\(output)")
        #expect(output.contains("status=0"), "\(output)")
    }

    /// `cancelFutures` cancels what a rank has received and not started (it did not: 64 of 100
    /// queued sleeps ran after the shutdown).
    @Test(.enabled(if: mpiAvailable))
    func cancelFuturesCancelsWhatTheRanksHaveNotStarted() throws {
        let output = try mpiScenario("cancel-queued")
        for label in ["chunked", "batched"] {
            #expect(
                output.contains("\(label): all resolved true, cancelled some true, started after shutdown at most 2 true"), "\(output)")
        }
        #expect(output.contains("status=0"), "\(output)")
    }

    /// Rank 0 returns from main without a pool: every rank ends, at once, and a second
    /// `runIfRequested` changes nothing.
    @Test(.enabled(if: mpiAvailable))
    func everyRankEndsWhenRankZeroReturnsAtOnce() throws {
        let output = try mpiScenario("no-pool")
        #expect(output.contains("rank: 0 of 3"), "\(output)")
        #expect(output.contains("worker ranks: 2"), "\(output)")
        #expect(output.contains("main returns"), "\(output)")
        #expect(output.contains("status=0"), "\(output)")
    }

    @Test(.enabled(if: mpiAvailable))
    func jobsAndGuestsRunOnTheWorkerRanks() throws {
        let output = try mpiScenario("basics")
        let lines = Set(output.split(separator: "\n").map(String.init))
        for expected in [
            "ranks: [1, 2]", "slots: true", "guest map in order: true", "job map in order: true", "codable job: 42", "jobs see their rank: true",
            "waited: 8 done, 0 not done", "ran on the worker ranks: true", "as completed: 20",
            "job error: jobFailed: job failed: the remote reason", "unknown job: unknownJob",
            "guest trap: divideByZero in divide", "fuel: outOfFuel", "after shutdown: shutdown",
            "second pool: true, 3 slots", "no module sent twice: true", "main returns", "status=0",
        ] {
            #expect(lines.contains(expected), "missing '\(expected)' in:\n\(output)")
        }
        // The bundled module went to each of the two ranks once, however many calls used it.
        #expect(lines.contains("modules sent by the map: 2"), "\(output)")
    }

    @Test(.enabled(if: mpiAvailable))
    func theInitializerRunsOnTheRanksAndAFailingOneBreaksThePool() throws {
        let output = try mpiScenario("initializer")
        for expected in [
            "job initializer ran before the jobs: true", "guest initializer ran in each interpreter: true",
            "failing initializer: brokenMPIPool, underlying initializerFailed", "after the failure: brokenMPIPool", "workers after the failure: 0",
            "status=0",
        ] {
            #expect(output.contains(expected), "missing '\(expected)' in:\n\(output)")
        }
    }

    /// Exiting rank 0 (returning from main or `exit`) with calls pending: the exit waits for them.
    @Test(.enabled(if: mpiAvailable))
    func exitingRankZeroFinishesTheAcceptedWork() throws {
        let output = try mpiScenario("exit-with-work")
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.contains("exiting with work queued"), "\(output)")
        #expect(lines.filter { $0.hasPrefix("call ") && $0.hasSuffix(": ran") }.count == 12, "\(output)")
        #expect(lines.filter { $0.hasPrefix("chunked call ") && $0.hasSuffix(": ran") }.count == 6, "\(output)")
        #expect(lines.contains("status=0"), "\(output)")
    }

    /// A start function that runs out of the pool's limits fails its call; the pool serves on.
    @Test(.enabled(if: mpiAvailable))
    func aSlowStartFailsTheCallNotThePool() throws {
        let output = try mpiScenario("slow-start")
        for expected in ["tight: outOfFuel", "generous: 1", "tight again: 1", "status=0"] {
            #expect(output.contains(expected), "missing '\(expected)' in:\n\(output)")
        }
    }

    /// Eight threads submitting mixed calls in chunks of every size, with cancellations: every
    /// future resolves with its own outcome (the MPI pool's stress test).
    @Test(.enabled(if: mpiAvailable))
    func concurrentMixedCallsEachGetTheirOwnOutcome() throws {
        let output = try mpiScenario("stress")
        #expect(output.contains("stress: 0 wrong outcomes, 0 unresolved futures"), "\(output)")
        #expect(output.contains("status=0"), "\(output)")
    }

    @Test(.enabled(if: mpiAvailable))
    func shutdownCancelsQueuedCallsAndResolvesEveryFuture() throws {
        let output = try mpiScenario("cancel")
        #expect(output.contains("resolved: true"), "\(output)")
        #expect(output.contains("status=0"), "\(output)")
        let counts = output.split(separator: "\n").first { $0.hasPrefix("cancelled:") }.map(String.init) ?? ""
        #expect(counts.hasSuffix("total: 20"), "\(output)")
        #expect(!counts.hasPrefix("cancelled: 0,"), "queued calls were cancelled: \(output)")
        #expect(!counts.contains("finished: 0,"), "running calls finished: \(output)")
    }

    /// A rank whose process ends mid-map, or that stops answering (SIGSTOP), fails the futures
    /// it held with `.brokenMPIPool` within the heartbeat timeout; the pool then refuses work.
    @Test(.enabled(if: mpiAvailable), arguments: ["exit-rank", "stop-rank"])
    func aLostRankFailsItsFuturesAndBreaksThePool(scenario: String) throws {
        let output = try mpiScenario(scenario, options: "-disable-auto-cleanup")
        #expect(output.contains("resolved: true"), "\(output)")
        #expect(output.contains("broken: true, succeeded: true, other: []"), "\(output)")
        #expect(output.contains("after the loss: brokenMPIPool"), "\(output)")
        #expect(output.contains("main returns"), "\(output)")
    }

    /// A rank killed by a signal: MPICH's launcher ends the whole launch, rank 0 included, at
    /// once. Nothing hangs and nothing is left running.
    @Test(.enabled(if: mpiAvailable))
    func aKilledRankEndsTheLaunchWithoutAHang() throws {
        let output = try mpiScenario("lose-rank", options: "-disable-auto-cleanup")
        #expect(output.contains("status=") && !output.contains("status=0"), "\(output)")
    }
}
