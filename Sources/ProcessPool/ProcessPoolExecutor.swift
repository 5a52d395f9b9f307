import CFuturesShims
public import Futures
public import RemoteCalls
import Synchronization
public import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Runs jobs and guest functions in child processes: Python's
/// `concurrent.futures.ProcessPoolExecutor`, with crash isolation and no lost work.
///
/// Each worker is a thread of the shared pool (``Futures/ThreadPoolExecutor``'s) whose context
/// owns one child process: the program's own binary started in worker mode (see
/// ``ProcessWorker``), or a dedicated worker executable. Requests and replies travel as
/// length-prefixed frames on a socket pair that is the child's fd 3, so output the job prints
/// cannot corrupt them; the child's stdout and stderr are the parent's.
///
/// Unlike Python, a worker that dies (crash, `fatalError`, a signal, `exit`) does not break the
/// pool: the futures it was running fail with ``Futures/ExecutorError`` `.brokenProcessPool`
/// saying how it died, and the next task starts a fresh worker, as loky does. An initializer
/// that fails when a worker first starts breaks the pool, since every replacement would fail the
/// same way; if it fails later, in a replacement for a dead worker, only the task that needed
/// the replacement fails.
public final class ProcessPoolExecutor: ChunkingExecutor {
    /// The most worker processes.
    public let maxWorkers: Int
    /// After this many tasks a worker process is replaced by a fresh one; `nil` for never.
    public let maxTasksPerChild: Int?
    /// The program the workers run.
    public let workerExecutable: String
    /// Limits for guest calls in the workers' interpreters.
    public let limits: InterpreterLimits
    /// The engine of the workers' interpreters.
    public let engine: GuestEngine

    let pool: WorkerPool<ProcessContext>
    let registry: WorkerRegistry

    /// Creates a pool; no process starts before the first submission.
    ///
    /// - Parameters:
    ///   - maxWorkers: The most processes; `nil` means the number of CPUs, as in Python.
    ///   - maxTasksPerChild: Replace a worker process after this many tasks (`nil`: never).
    ///   - workerExecutable: The worker program; `nil` means this program (`/proc/self/exe`),
    ///     which must call ``ProcessWorker/runIfRequested(jobs:)`` first thing in `main`.
    ///   - environment: Variables added to the workers' environment.
    ///   - limits: Limits for guest calls in the workers.
    ///   - engine: The engine of the workers' interpreters. With `.compiled`, the pool builds a
    ///     module's native code into the compiled engine's cache (``CompiledEngine``) once, before
    ///     sending the module to a worker, and each worker loads it from there.
    ///   - initializer: A job or guest call run once in each worker process before its first
    ///     task. If it fails, the pool breaks (``Futures/ExecutorError`` `.brokenProcessPool`).
    ///   - stoppedWorkerTimeout: How long a worker that owes replies may stay stopped (`SIGSTOP`,
    ///     a debugger) before it is killed: its tasks then fail with `.brokenProcessPool` and the
    ///     next task starts a fresh worker. A stopped worker costs its tasks this long, and
    ///     `shutdown` at most this long plus two seconds.
    ///   - observability: The pool's name in its metrics, and where metrics and traces go (by
    ///     default the metrics factory and tracer bootstrapped now; docs/observability.md). The
    ///     calls' spans are recorded by the worker processes, with the tracer they bootstrap.
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` for `maxWorkers` or
    ///   `maxTasksPerChild` below 1, or when called inside a worker process (a worker that
    ///   forgot ``ProcessWorker/runIfRequested(jobs:)`` would otherwise start workers of its own);
    ///   ``Futures/NotShareableError`` for an initializer that is a host closure.
    public init(
        maxWorkers: Int? = nil,
        maxTasksPerChild: Int? = nil,
        workerExecutable: String? = nil,
        environment: [String: String] = [:],
        limits: InterpreterLimits = .default,
        engine: GuestEngine = .wasmKit,
        initializer: Call<Void>? = nil,
        stoppedWorkerTimeout: Duration = .seconds(10),
        observability: PoolObservability = PoolObservability()
    ) throws {
        let maxWorkers = try validatedMaxWorkers(maxWorkers, default: ProcessorCount.available)
        if let maxTasksPerChild, maxTasksPerChild < 1 {
            throw ExecutorError(.invalidArgument, "maxTasksPerChild must be >= 1, got \(maxTasksPerChild)")
        }
        guard !ProcessWorker.isWorkerProcess else {
            throw ExecutorError(
                .invalidArgument,
                "a worker process cannot start a process pool: call ProcessWorker.runIfRequested(jobs:) first thing in main")
        }
        let initial = try initializer.map { try CallBatch.remoteInitializer($0, runsIn: "a worker process") }
        self.maxWorkers = maxWorkers
        self.maxTasksPerChild = maxTasksPerChild
        self.workerExecutable = workerExecutable ?? currentExecutablePath()
        self.limits = limits
        self.engine = engine
        let registry = WorkerRegistry()
        self.registry = registry
        let setup = ProcessContext.Setup(
            executable: self.workerExecutable, environment: environment, maxTasksPerChild: maxTasksPerChild,
            limits: limits, engine: engine, initializer: initial, registry: registry, stoppedWorkerTimeout: stoppedWorkerTimeout)
        pool = WorkerPool(
            configuration: .init(
                maxWorkers: maxWorkers, threadNamePrefix: "ProcessPoolExecutor-\(nextExecutorNumber())",
                brokenCode: .brokenProcessPool,
                brokenMessage: "A process in the process pool could not be initialized, the process pool is not usable anymore"),
            instruments: PoolInstruments(kind: "process", observability: observability),
            makeContext: { _ in ProcessContext(setup: setup) })
    }

    deinit {
        pool.shutdown(wait: false, cancelFutures: false)
    }

    /// The number of workers alive now (each owns one worker process, or is about to start one).
    public var workerCount: Int { pool.workerCount }

    /// The process ids of the live workers.
    public var workerProcessIDs: [Int32] { registry.pids }

    /// Sends `chunkSize` calls at a time to the workers: each chunk is one request and one reply.
    /// Futures and results stay per call. Python's `map(chunksize=)`.
    ///
    /// - Throws: What ``submit(_:)`` throws; ``Futures/ExecutorError`` `.invalidArgument` for a
    ///   `chunkSize` below 1.
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>], chunkSize: Int) throws -> [Future<Success>] {
        let (futures, batches) = try CallBatch.batches(for: calls, chunkSize: chunkSize)
        try pool.submit(contentsOf: batches)
        return futures
    }

    /// Stops accepting work; each worker asks its child process to exit once the queue drains.
    /// See ``PoolExecutor/shutdown(wait:cancelFutures:)``; it never throws.
    public func shutdown(wait: Bool, cancelFutures: Bool) {
        pool.shutdown(wait: wait, cancelFutures: cancelFutures)
    }

    /// Stops everything now with SIGTERM: queued work is cancelled, running work fails with
    /// ``Futures/ExecutorError`` `.brokenProcessPool`, and the pool shuts down. Python 3.14's
    /// `terminate_workers()`.
    ///
    /// Stopped workers are continued so that they receive the signal; a worker still alive
    /// ``forceGrace`` after it (one that handles or ignores SIGTERM) is killed, so this returns
    /// within that time.
    public func terminateWorkers() { forceShutdown(signal: SIGTERM, name: "terminateWorkers()") }

    /// Like ``terminateWorkers()`` with SIGKILL. Python 3.14's `kill_workers()`.
    public func killWorkers() { forceShutdown(signal: SIGKILL, name: "killWorkers()") }

    /// How long ``terminateWorkers()`` waits for workers to end before it kills them.
    public static let forceGrace: Duration = .seconds(2)

    private func forceShutdown(signal: Int32, name: String) {
        registry.forcedBy(name)
        pool.shutdown(wait: false, cancelFutures: true)
        for pid in registry.pids {
            kill(pid, signal)
            kill(pid, SIGCONT)  // a stopped process acts on no signal but SIGKILL until continued
        }
        if !pool.waitForWorkers(until: Deadline.after(Self.forceGrace)) {
            for pid in registry.pids { kill(pid, SIGKILL) }
            pool.waitForWorkers()
        }
    }
}

/// The live worker processes of one pool, for `terminateWorkers` and `workerProcessIDs`.
final class WorkerRegistry: Sendable {
    private struct State {
        var pids: Set<pid_t> = []
        var forcedBy: String?
    }
    private let state = Locked(State())

    var pids: [pid_t] { state.withLock { $0.pids.sorted() } }
    var forcedShutdown: String? { state.withLock { $0.forcedBy } }

    func insert(_ pid: pid_t) { _ = state.withLock { $0.pids.insert(pid) } }
    func remove(_ pid: pid_t) { _ = state.withLock { $0.pids.remove(pid) } }
    func forcedBy(_ name: String) { state.withLock { $0.forcedBy = $0.forcedBy ?? name } }
}

/// The path of the running program.
package func currentExecutablePath() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
