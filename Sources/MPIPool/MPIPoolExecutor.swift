public import Futures
public import RemoteCalls
public import WasmInterpreters

/// Runs jobs and guest functions on the other ranks of an MPI launch: mpi4py's
/// `MPIPoolExecutor`, with the same `submit`, `map`, `wait`, `asCompleted` and `shutdown` as the
/// other executors.
///
/// Start the program with `mpiexec -n N program` (or `srun`), with
/// ``MPIWorker/runIfRequested(jobs:)`` first in `main`: rank 0 runs `main` and makes pools; ranks
/// 1 to N - 1 serve them. Each worker of this pool is a thread of the shared pool whose context
/// owns one slot on one rank, as a process pool's context owns one child process; each host
/// offers as many slots as it has cores, shared among its worker ranks, and a rank runs its calls
/// on pools of its own, so one rank per host uses the whole host. Guest calls run sandboxed in interpreters there; a module's bytes
/// travel to a rank once, keyed by their content, and later calls name the key only.
///
/// Faults: a call's error reaches its future with the remote message. A rank that dies or stops
/// answering for `heartbeatTimeout` (default 5 s; rank 0 pings every rank every half second) is
/// lost: the futures it was running fail with ``Futures/ExecutorError`` `.brokenMPIPool`, and the
/// pool breaks, since MPI cannot replace a rank: queued work fails too, later submissions throw,
/// work on the other ranks finishes. (By default `mpiexec` ends the whole launch when one rank
/// dies; start it with `-disable-auto-cleanup` to keep rank 0 and handle the error.)
///
/// ``shutdown(wait:cancelFutures:)`` ends this pool's work on every rank; the ranks themselves
/// serve until rank 0's program ends, so a program may make pool after pool.
public final class MPIPoolExecutor: ChunkingExecutor {
    /// The most calls running at once: slots over all worker ranks.
    public let maxWorkers: Int
    /// Limits for guest calls on the ranks.
    public let limits: InterpreterLimits
    /// The engine of the ranks' interpreters.
    public let engine: GuestEngine
    /// How long a rank may stay silent before it is lost.
    public let heartbeatTimeout: Duration
    /// The worker ranks this pool uses, in rank order.
    public let ranks: [MPIRankInfo]

    let pool: WorkerPool<MPIContext>
    let session: MPISession

    /// Creates a pool over the worker ranks; waits until they have all reported (they do as
    /// they start).
    ///
    /// - Parameters:
    ///   - maxWorkers: The most calls running at once; `nil` means one per core of every host
    ///     with worker ranks (a host's cores are divided among its worker ranks). Slots are dealt
    ///     to ranks in turn.
    ///   - limits: Limits for guest calls on the ranks.
    ///   - engine: The engine of the ranks' interpreters; with `.compiled`, each rank builds or
    ///     finds a module's native code in its host's ``WasmInterpreters/CompiledEngine`` cache.
    ///   - heartbeatTimeout: How long a rank may stay silent (dead, stopped, unreachable) before
    ///     its futures fail and the pool breaks; at least ``minimumHeartbeatTimeout``. Ranks lost
    ///     before are left out of the pool.
    ///   - startTimeout: How long to wait for the worker ranks to report.
    ///   - initializer: A job or guest call run on the ranks before their first call of that kind:
    ///     a guest call in each of a rank's interpreters, a job in each of its threads that run
    ///     jobs. If it fails, the pool breaks (``Futures/ExecutorError`` `.brokenMPIPool`, with
    ///     the remote error as `underlying`).
    ///   - observability: The pool's name in its metrics, and where metrics and traces go (by
    ///     default the metrics factory and tracer bootstrapped now; docs/observability.md).
    /// - Throws: ``MPIError`` `.notLaunched` outside an MPI launch or without
    ///   ``MPIWorker/runIfRequested(jobs:)``, `.unavailable` when MPI cannot be loaded,
    ///   ``Futures/NotShareableError`` for an initializer that is a host closure,
    ///   `.noWorkerRanks` with one rank or when every worker rank was lost, `.startFailed` when a
    ///   rank did not report in time; ``Futures/ExecutorError`` `.invalidArgument` for `maxWorkers`
    ///   below 1 or a `heartbeatTimeout` below ``minimumHeartbeatTimeout``.
    public init(
        maxWorkers: Int? = nil,
        limits: InterpreterLimits = .default,
        engine: GuestEngine = .wasmKit,
        heartbeatTimeout: Duration = .seconds(5),
        startTimeout: Duration = .seconds(30),
        initializer: Call<Void>? = nil,
        observability: PoolObservability = PoolObservability()
    ) throws {
        if let maxWorkers { _ = try validatedMaxWorkers(maxWorkers, default: 1) }
        guard heartbeatTimeout >= Self.minimumHeartbeatTimeout else {
            throw ExecutorError(
                .invalidArgument,
                "heartbeatTimeout must be at least \(Self.minimumHeartbeatTimeout) (ranks are pinged every 0.5 s), got \(heartbeatTimeout)")
        }
        let initial = try initializer.map { try CallBatch.remoteInitializer($0, runsIn: "an MPI rank") }
        let router = try MPIWorker.router()
        guard router.size > 1 else {
            throw MPIError(.noWorkerRanks, "the launch has one rank only: start it with mpiexec -n 2 or more")
        }
        let (reported, count) = router.waitForRanks(until: Deadline.after(startTimeout))
        guard count == router.size - 1 else {
            throw MPIError(
                .startFailed, "\(count) of \(router.size - 1) worker ranks reported within \(startTimeout)")
        }
        guard !reported.isEmpty else {
            let lost = router.lostRanks.map { "rank \($0.rank): \($0.reason)" }
            throw MPIError(.noWorkerRanks, "every worker rank was lost (\(lost.joined(separator: "; ")))")
        }
        // A rank offers its host's cores, shared with the other worker ranks on that host.
        var ranksPerHost: [String: Int] = [:]
        for rank in reported { ranksPerHost[rank.host, default: 0] += 1 }
        let offered = reported.map { max(1, $0.cores / ranksPerHost[$0.host, default: 1]) }
        var slots: [Int] = []
        for round in 0..<(offered.max() ?? 1) {
            for (rank, count) in zip(reported, offered) where count > round { slots.append(rank.rank) }
        }
        let maxWorkers = maxWorkers ?? slots.count
        while slots.count < maxWorkers { slots += slots }
        let assignment = Array(slots.prefix(maxWorkers))

        self.maxWorkers = maxWorkers
        self.limits = limits
        self.engine = engine
        self.heartbeatTimeout = heartbeatTimeout
        ranks = zip(reported, offered).map { rank, count in
            MPIRankInfo(rank: rank.rank, host: rank.host, processID: Int32(rank.pid), cores: rank.cores, slots: count)
        }
        let id = router.openSession(
            WorkerConfiguration(limits: limits, engine: engine), heartbeatTimeout: heartbeatTimeout,
            slots: Dictionary(assignment.map { ($0, 1) }, uniquingKeysWith: +), initializer: initial)
        let session = MPISession(id: id, router: router)
        self.session = session
        let pool = WorkerPool(
            configuration: .init(
                maxWorkers: maxWorkers, threadNamePrefix: "MPIPoolExecutor-\(nextExecutorNumber())",
                brokenCode: .brokenMPIPool, brokenMessage: "An MPI rank was lost, the MPI pool is not usable anymore"),
            instruments: PoolInstruments(kind: "mpi", observability: observability),
            makeContext: { index in MPIContext(session: session, rank: assignment[index % assignment.count]) })
        self.pool = pool
        // Told at once when a rank the session uses was lost since it opened.
        router.watch(id) { [weak pool] error, logPrefix in pool?.breakPool(because: error, logPrefix: logPrefix) }
    }

    /// The shortest ``heartbeatTimeout``: two ping intervals.
    public static let minimumHeartbeatTimeout: Duration = .seconds(1)

    deinit {
        let pool = pool
        let session = session
        pool.shutdown(wait: false, cancelFutures: false)
        closeWhenIdle(pool, session)
    }

    /// The number of workers serving now (each owns one slot on a rank): 0 once the pool is broken
    /// (a rank lost, an initializer failed), whose workers take no more work, as mpi4py's
    /// `num_workers` becomes 0.
    public var workerCount: Int { pool.broken == nil ? pool.workerCount : 0 }

    /// Sends `chunkSize` calls at a time to the ranks: each chunk is one MPI message and one
    /// reply. Futures and results stay per call.
    ///
    /// - Throws: What ``submit(_:)`` throws; ``Futures/ExecutorError`` `.invalidArgument` for a
    ///   `chunkSize` below 1.
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>], chunkSize: Int) throws -> [Future<Success>] {
        let (futures, batches) = try CallBatch.batches(for: calls, chunkSize: chunkSize)
        try pool.submit(contentsOf: batches)
        return futures
    }

    /// Stops accepting work; once the queue drains, this pool's work ends on every rank. See
    /// ``Futures/PoolExecutor/shutdown(wait:cancelFutures:)``; it never throws.
    public func shutdown(wait: Bool, cancelFutures: Bool) {
        // The ranks drop the calls they have not started first, so that none starts after the
        // queue here is cancelled.
        if cancelFutures { session.cancelQueued() }
        pool.shutdown(wait: wait, cancelFutures: cancelFutures)
        if wait { session.close() } else { closeWhenIdle(pool, session) }
    }
}

/// A worker rank of an ``MPIPoolExecutor``, as it reported itself.
public struct MPIRankInfo: Sendable, Hashable {
    /// Its rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// Its host name.
    public let host: String
    /// Its process id on that host.
    public let processID: Int32
    /// The cores its process may use.
    public let cores: Int
    /// The calls it runs at once: its cores, divided among the worker ranks on its host.
    public let slots: Int
}

/// Closes `session` on the ranks once `pool`'s workers have ended, without blocking the caller.
private func closeWhenIdle(_ pool: WorkerPool<MPIContext>, _ session: MPISession) {
    do {
        try DetachedThread.start(name: "cf-mpi-close", pool: nil) {
            pool.waitForWorkers()
            session.close()
        }
    } catch {
        session.close()
    }
}
