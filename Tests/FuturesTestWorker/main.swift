import ConcurrentFutures
import TestJobs

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

// The worker program of the process pool tests, and a few small programs the tests run.

// A worker of another protocol version, for the version check (started as a worker by a pool).
if let mode = getenv("FUTURES_TEST_WORKER_MODE").map({ String(cString: $0) }) {
    TestPrograms.fakeWorker(mode)
}

// The first line a real worker program has: enters worker mode.
ProcessWorker.runIfRequested(jobs: TestJobs.all)
// Under mpiexec, ranks 1 to N - 1 serve from here on.
MPIWorker.runIfRequested(jobs: TestJobs.all)

if CommandLine.arguments.count >= 3, CommandLine.arguments[1] == "exit-hook" {
    try TestPrograms.exitHook(CommandLine.arguments[2])
} else if CommandLine.arguments.count >= 3, CommandLine.arguments[1] == "mpi" {
    try MPIScenarios.run(CommandLine.arguments[2])
} else {
    print("FuturesTestWorker is only meant to be started by a ProcessPoolExecutor")
}

enum TestPrograms {
    /// Work accepted before the program ends runs before it exits: each variant submits a task
    /// that prints "apple" after 0.3 s, and returns from main without waiting for it.
    static func exitHook(_ variant: String) throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        switch variant {
        case "thread-no-shutdown":
            let pool = try ThreadPoolExecutor(maxWorkers: 1)
            _ = try pool.submit {
                usleep(300_000)
                print("apple")
            }
        case "thread-slow":
            let pool = try ThreadPoolExecutor(maxWorkers: 1)
            _ = try pool.submit {
                sleep(5)
                print("apple")
            }
        case "thread-shutdown-nowait":
            let pool = try ThreadPoolExecutor(maxWorkers: 1)
            _ = try pool.submit {
                usleep(300_000)
                print("apple")
            }
            _ = try pool.submit {
                usleep(10_000)
                print("banana")
            }
            pool.shutdown(wait: false, cancelFutures: false)
        case "process":
            let pool = try ProcessPoolExecutor(maxWorkers: 1)
            let future = try pool.submit(TestJobs.sleep, 300)
            future.addDoneCallback { done in print("apple from worker \((try? done.result()) ?? -1)") }
        case "submit-after-exit":
            let pool = try ThreadPoolExecutor(maxWorkers: 2)
            _ = try pool.submit {
                usleep(300_000)
                print("apple")
                do {
                    _ = try pool.submit { print("never") }
                } catch let error as ExecutorError {
                    print("refused: \(error.code): \(error.message)")
                } catch {
                    print("refused: \(error)")
                }
            }
        default:
            print("unknown variant \(variant)")
            exit(2)
        }
        print("main returns")
    }

    /// Pretends to be a worker of another protocol: version 1 framing (a bare length prefix).
    static func fakeWorker(_ mode: String) -> Never {
        var payload = ShareableValue.array([.int(16), .int(Int64(getpid())), .int(1)]).encoded()
        if mode == "version-99" {
            // This version's framing, another version number.
            payload = ShareableValue.array([.int(16), .int(Int64(getpid())), .int(99)]).encoded()
            var frame: [UInt8] = [0x43, 0x46, 0x57, 0x32]
            frame += withUnsafeBytes(of: UInt32(payload.count).littleEndian, Array.init)
            frame += [UInt8](repeating: 0, count: 8)
            payload = frame + payload
        } else {
            payload = withUnsafeBytes(of: UInt32(payload.count).littleEndian, Array.init) + payload
        }
        _ = payload.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        var byte: UInt8 = 0
        while read(3, &byte, 1) > 0 {}
        exit(0)
    }
}
