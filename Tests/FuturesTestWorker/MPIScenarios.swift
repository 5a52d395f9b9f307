import BundledGuests
import ConcurrentFutures
import TestJobs

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Programs that `MPIPoolTests` runs under `mpiexec -n 3`: rank 0 runs one scenario and prints
/// what it observed, one `name: value` line each; the tests check the lines.
enum MPIScenarios {
    static func run(_ scenario: String) throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        switch scenario {
        case "basics": try basics()
        case "cancel": try cancel()
        case "lose-rank": try loseRank(signal: SIGKILL)
        case "stop-rank":
            // Rank 0 ends the stopped rank itself as it exits (it is on this host), so that
            // `mpiexec -disable-auto-cleanup` ends too; the pause lets the last line out first.
            _ = try loseRank(signal: SIGSTOP)
            print("main returns")
            usleep(300_000)
            return
        case "exit-rank": try loseRank(signal: 0)
        case "no-pool": noPool()
        case "initializer": try initializer()
        case "stress": try stress()
        case "slow-start": try slowStart()
        case "exit-with-work": try exitWithWork()
        case "max-workers": try maxWorkers()
        case "cancel-queued": try cancelQueued()
        default:
            print("unknown scenario \(scenario)")
            exit(2)
        }
        print("main returns")
    }

    /// Ordered map, named jobs, errors with remote messages, wait and asCompleted, modules sent once.
    static func basics() throws {
        let pool = try MPIPoolExecutor()
        print("ranks: \(pool.ranks.map(\.rank))")
        // Two worker ranks on this host share its cores.
        print("slots: \(pool.maxWorkers == pool.ranks.map(\.slots).reduce(0, +) && pool.ranks.allSatisfy { $0.slots == max(1, $0.cores / 2) })")
        let double = try BundledGuests.tasks.function("double", returning: Int.self)
        let mapped = try pool.map(double, 0..<300, chunkSize: 7).collect()
        print("guest map in order: \(mapped == (0..<300).map { $0 * 2 })")
        print("modules sent by the map: \(MPIWorker.modulesSent)")
        let jobs = try pool.map(TestJobs.double, 0..<100).collect()
        print("job map in order: \(jobs == (0..<100).map { $0 * 2 })")
        print("codable job: \(try pool.submit(TestJobs.sum, Pair(left: 40, right: 2)).result())")
        let jobRanks = Set(try pool.map(TestJobs.mpiRank, 0..<40).collect())
        print("jobs see their rank: \(jobRanks.isSubset(of: Set(pool.ranks.map(\.rank))) && !jobRanks.contains(0))")
        let sleepers = try pool.submit(contentsOf: Array(repeating: TestJobs.sleep.call(100), count: 8))
        let waited = wait(sleepers, returnWhen: .allCompleted)
        let (done, notDone) = (waited.done, waited.notDone)
        let pids = Set(try done.map { try $0.result() })
        print("waited: \(done.count) done, \(notDone.count) not done")
        print("ran on the worker ranks: \(pids.isSubset(of: Set(pool.ranks.map { Int($0.processID) })) && !pids.contains(Int(getpid())))")
        var completed = 0
        for outcome in asCompleted(try pool.submit(contentsOf: (0..<20).map { TestJobs.double.call($0) })) {
            if case .success = outcome { completed += 1 }
        }
        print("as completed: \(completed)")
        do {
            _ = try pool.submit(TestJobs.fail, "the remote reason").result()
        } catch let error as RemoteError {
            print("job error: \(error.code.name): \(error.message)")
        }
        do {
            _ = try pool.submit(TestJobs.unknown, 1).result()
        } catch let error as RemoteError {
            print("unknown job: \(error.code.name)")
        }
        let divide = try BundledGuests.examples.function("divide", returning: Int.self)
        do {
            _ = try pool.submit(divide.call(1, 0)).result()
        } catch let error as GuestError {
            print("guest trap: \(error.kind.name) in \(error.function)")
        }
        let spin = try BundledGuests.tasks.function("cpu_bound", returning: Int.self).withFuel(1000)
        do {
            _ = try pool.submit(spin.call(5_000_000)).result()
        } catch let error as GuestError {
            print("fuel: \(error.kind.name)")
        }
        let sentBefore = MPIWorker.modulesSent
        pool.shutdown()
        do {
            _ = try pool.submit(TestJobs.double, 1)
        } catch let error as ExecutorError {
            print("after shutdown: \(error.code.name)")
        }
        // A second pool: the ranks keep the modules they were sent.
        let second = try MPIPoolExecutor(maxWorkers: 3)
        let again = try second.map(double, 0..<50).collect()
        print("second pool: \(again == (0..<50).map { $0 * 2 }), \(second.maxWorkers) slots")
        print("no module sent twice: \(MPIWorker.modulesSent == sentBefore)")
        second.shutdown()
    }

    /// `maxWorkers` caps the calls running at once on the ranks, however they are chunked: with
    /// one slot, chunks of four jobs (and short calls the context batches by itself) run one at a
    /// time on the rank; with two slots on two ranks, one at a time on each.
    static func maxWorkers() throws {
        for slots in [1, 2] {
            let pool = try MPIPoolExecutor(maxWorkers: slots)
            let chunked = try pool.map(TestJobs.concurrency, Array(repeating: 20, count: 16), chunkSize: 4).collect()
            let batched = try pool.map(TestJobs.concurrency, Array(repeating: 0, count: 400)).collect()
            print("maxWorkers \(slots): most at once on a rank \((chunked + batched).max() ?? -1)")
            pool.shutdown()
        }
    }

    /// `shutdown(cancelFutures: true)` cancels the calls a rank has received and not started
    /// (chunks, batches), not only those queued on rank 0: the calls that finish after it are at
    /// most those running then.
    static func cancelQueued() throws {
        for (label, milliseconds, chunkSize) in [("chunked", 30, 25), ("batched", 1, 1)] {
            let pool = try MPIPoolExecutor(maxWorkers: 2)
            let futures = try pool.submit(contentsOf: Array(repeating: TestJobs.startedAt.call(milliseconds), count: 100), chunkSize: chunkSize)
            usleep(UInt32(milliseconds) * 4000)
            let shutdown = monotonicNanoseconds()
            pool.shutdown(wait: true, cancelFutures: true)
            let starts = futures.compactMap { try? $0.result() }
            let cancelled = futures.filter { $0.state == .cancelled }.count
            // A call may start between the instant read and the ranks hearing of the shutdown.
            let late = starts.filter { $0 > shutdown }.count
            print(
                "\(label): all resolved \(starts.count + cancelled == 100), cancelled some \(cancelled > 0), started after shutdown at most 2 \(late <= 2)"
            )
            if late > 2 { print("\(label): \(late) started after shutdown") }
        }
    }

    /// Rank 0 makes no pool and returns at once: every rank still ends. A second
    /// `runIfRequested` changes nothing.
    static func noPool() {
        MPIWorker.runIfRequested(jobs: TestJobs.all)
        print("rank: \(MPIWorker.rank.map(String.init) ?? "none") of \(MPIWorker.size.map(String.init) ?? "none")")
        print("worker ranks: \(MPIWorker.workerRankCount.map(String.init) ?? "none")")
    }

    /// A start function that runs out of the pool's fuel fails that call, not the pool; the
    /// instance a call with more fuel makes serves the next calls.
    static func slowStart() throws {
        let module = TestGuests.slowStart
        let ready = try module.function("ready", returning: Int.self)
        let pool = try MPIPoolExecutor(limits: InterpreterLimits(fuel: 10_000))
        for (label, function) in [("tight", ready), ("generous", ready.withFuel(100_000_000)), ("tight again", ready)] {
            do {
                print("\(label): \(try pool.submit(function).result())")
            } catch let error as GuestError {
                print("\(label): \(error.kind.name)")
            }
        }
        pool.shutdown()
    }

    /// A job initializer runs on the ranks before their jobs; a guest one in their interpreters;
    /// a failing one breaks the pool.
    static func initializer() throws {
        let pool = try MPIPoolExecutor(initializer: TestJobs.initialize.call(7).discardingResult())
        let seen = Set(try pool.map(TestJobs.initialized, 0..<20).collect())
        print("job initializer ran before the jobs: \(seen == [7])")
        pool.shutdown()
        let counter = try GuestModule(
            wat: """
                (module
                  (global $calls (mut i64) (i64.const 0))
                  (func (export "bump") (result i64) (global.set $calls (i64.add (global.get $calls) (i64.const 1))) (global.get $calls)))
                """, name: "counter")
        let bump = try counter.function("bump", returning: Int.self)
        let guests = try MPIPoolExecutor(initializer: bump.call().discardingResult())
        // Each interpreter ran the initializer once, so every call here is at least its second.
        let counts = try guests.submit(contentsOf: Array(repeating: bump.call(), count: 8)).map { try $0.result() }
        print("guest initializer ran in each interpreter: \(counts.allSatisfy { $0 >= 2 })")
        guests.shutdown()
        let failing = try MPIPoolExecutor(initializer: TestJobs.failingInitializer.call(0).discardingResult())
        do {
            _ = try failing.submit(TestJobs.double, 1).result(timeout: .seconds(30))
            print("failing initializer: accepted")
        } catch let error as ExecutorError {
            print("failing initializer: \(error.code.name), underlying \((error.underlying as? RemoteError)?.code.name ?? "none")")
        }
        do {
            _ = try failing.submit(TestJobs.double, 1)
            print("after the failure: accepted")
        } catch let error as ExecutorError {
            print("after the failure: \(error.code.name)")
        }
        print("workers after the failure: \(failing.workerCount)")
        failing.shutdown()
    }

    /// Rank 0 exits with calls queued and running, some sent in chunks, and its executor already
    /// released: every accepted call still runs, as in the thread and process pools (each prints
    /// its line as it finishes, during the exit).
    static func exitWithWork() throws -> Never {
        func submitAndRelease() throws {
            let pool = try MPIPoolExecutor(maxWorkers: 2)
            for index in 0..<12 {
                try pool.submit(TestJobs.sleep, 50).addDoneCallback { future in
                    print("call \(index): \((try? future.result()) != nil ? "ran" : "failed")")
                }
            }
            let chunked = try pool.submit(contentsOf: (0..<6).map { _ in TestJobs.sleep.call(20) }, chunkSize: 3)
            for (index, future) in chunked.enumerated() {
                future.addDoneCallback { future in
                    print("chunked call \(index): \((try? future.result()) != nil ? "ran" : "failed")")
                }
            }
        }
        try submitAndRelease()
        print("exiting with work queued")
        exit(0)
    }

    /// Eight threads submit mixed calls at once (guest and job, successes, traps, job errors, in
    /// chunks of every size) and cancel some: every future resolves, each with its own outcome.
    static func stress() throws {
        let pool = try MPIPoolExecutor()
        let double = try BundledGuests.tasks.function("double", returning: Int.self)
        let divide = try BundledGuests.examples.function("divide", returning: Int.self)
        let mismatches = Locked(0)
        let unresolved = Locked(0)
        let drivers = try ThreadPoolExecutor(maxWorkers: 8)
        let runs = try (0..<8).map { thread in
            try drivers.submit {
                for round in 0..<25 {
                    let base = thread * 10_000 + round * 100
                    let calls: [Call<Int>] = (0..<40).map { index in
                        let value = base + index
                        switch index % 4 {
                        case 0: return double.call(value)
                        case 1: return TestJobs.double.call(value)
                        case 2: return divide.call(value, index % 8 == 2 ? 0 : 2)
                        default: return index % 8 == 3 ? TestJobs.fail.call("boom \(value)") : TestJobs.sum.call(Pair(left: value, right: 1))
                        }
                    }
                    guard let futures = try? pool.submit(contentsOf: calls, chunkSize: 1 + (thread + round) % 7) else {
                        mismatches.withLock { $0 += 1 }
                        continue
                    }
                    if round % 5 == 4 { for future in futures.suffix(10) { future.cancel() } }
                    for (index, future) in futures.enumerated() {
                        let value = base + index
                        _ = try? future.exception(timeout: .seconds(60))
                        guard future.isDone else {
                            unresolved.withLock { $0 += 1 }
                            continue
                        }
                        if future.isCancelled { continue }
                        let outcome = Result { try future.result(timeout: .zero) }
                        let expected: Int? =
                            switch index % 4 {
                            case 0, 1: value * 2
                            case 2: index % 8 == 2 ? nil : value / 2
                            default: index % 8 == 3 ? nil : value + 1
                            }
                        switch (outcome, expected) {
                        case (.success(let got), let want?) where got == want: break
                        case (.failure(let error as GuestError), nil) where error.kind == .divideByZero: break
                        case (.failure(let error as RemoteError), nil) where error.message.contains("boom \(value)"): break
                        default: mismatches.withLock { $0 += 1 }
                        }
                    }
                }
            }
        }
        for run in runs { try run.result() }
        drivers.shutdown()
        pool.shutdown()
        print("stress: \(mismatches.withLock { $0 }) wrong outcomes, \(unresolved.withLock { $0 }) unresolved futures")
    }

    /// `shutdown(cancelFutures: true)`: queued calls are cancelled, running ones finish, every
    /// future is resolved.
    static func cancel() throws {
        let pool = try MPIPoolExecutor(maxWorkers: 2)
        let futures = try pool.submit(contentsOf: Array(repeating: TestJobs.sleep.call(300), count: 20))
        usleep(100_000)
        pool.shutdown(wait: true, cancelFutures: true)
        let cancelled = futures.filter(\.isCancelled).count
        let finished = futures.filter { (try? $0.result(timeout: .zero)) != nil }.count
        print("resolved: \(futures.allSatisfy(\.isDone))")
        print("cancelled: \(cancelled), finished: \(finished), total: \(cancelled + finished)")
    }

    /// A rank killed (or stopped) mid-map: its futures fail with `.brokenMPIPool`, nothing hangs,
    /// later submissions are refused.
    /// Returns the process of the rank it stopped or killed.
    @discardableResult
    static func loseRank(signal: Int32) throws -> pid_t {
        let pool = try MPIPoolExecutor(heartbeatTimeout: .seconds(2))
        let victim = signal == 0 ? pool.ranks[0] : pool.ranks.last!
        // With no signal, the first call is a job that ends its rank's process (as native code
        // that calls exit would), while the rank runs the others.
        let first = signal == 0 ? [TestJobs.exit.call(3)] : []
        let futures = try pool.submit(contentsOf: first + Array(repeating: TestJobs.sleep.call(200), count: 40))
        usleep(300_000)
        if signal != 0 { kill(victim.processID, signal) }
        var succeeded = 0
        var broken = 0
        var other: [String] = []
        for future in futures {
            do {
                _ = try future.result(timeout: .seconds(30))
                succeeded += 1
            } catch let error as ExecutorError where error.code == .brokenMPIPool {
                broken += 1
            } catch let error as RemoteError where error.message.contains("after interpreter shutdown") {
                // A call that reached the exiting rank while its exit hook ran: refused there.
                continue
            } catch {
                other.append("\(error)")
            }
        }
        print("resolved: \(futures.allSatisfy(\.isDone))")
        print("broken: \(broken > 0), succeeded: \(succeeded > 0), other: \(other)")
        do {
            _ = try pool.submit(TestJobs.double, 1)
            print("after the loss: accepted")
        } catch let error as ExecutorError {
            print("after the loss: \(error.code.name)")
        }
        pool.shutdown()
        return victim.processID
    }
}
