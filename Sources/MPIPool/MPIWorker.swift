import CFuturesShims
public import Futures
public import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Worker mode for MPI, SPMD style: `mpiexec -n N program` runs the program on every rank; rank 0
/// runs `main`, and every other rank serves ``MPIPoolExecutor``s. The MPI twin of
/// ``ProcessPool/ProcessWorker``, and of `python -m mpi4py.futures`.
///
/// Put one line at the top of `main`, after ``ProcessPool/ProcessWorker/runIfRequested(jobs:)``
/// if the program has both:
///
/// ```swift
/// MPIWorker.runIfRequested(jobs: [double, cpuBound])
/// ```
///
/// Started without an MPI launcher, it returns at once and loads nothing. Under one, it loads
/// the MPI library and initializes MPI on a thread of its own. On rank 0 it then returns. On the
/// other ranks it never returns: each reports to rank 0, runs the calls it is sent on pools of
/// its own, as many workers as the rank 0 pool's slots there (interpreters for guest calls,
/// threads for the jobs listed here), and exits when rank 0's program ends, or when it has heard nothing from rank 0 for a
/// minute.
public enum MPIWorker {
    private static let state = Locked<State>(.notStarted)

    private enum State {
        case notStarted
        case starting
        case root(MPIRootRouter)
        case serving(rank: Int, size: Int)
        case failed(MPIError)
    }

    /// Whether an MPI launcher (`mpiexec`, `srun`) started this process.
    public static var isLaunched: Bool { cf_mpi_launched() != 0 }

    /// Serves as a worker rank when this process is one; returns at once otherwise.
    ///
    /// Failing to load or initialize MPI under a launcher is fatal on the worker ranks (they
    /// print why and exit with status 70); on rank 0 it is kept and thrown by
    /// ``MPIPoolExecutor/init(maxWorkers:limits:heartbeatTimeout:startTimeout:initializer:)``.
    ///
    /// - Parameter jobs: The jobs worker ranks can run, found by name. Two jobs with the same
    ///   name are a programming error (the first is used).
    /// - Parameter hostFunctions: The host functions the guest modules worker ranks load may
    ///   import, found by import name (as `ProcessWorker.runIfRequested(jobs:hostFunctions:)`).
    public static func runIfRequested(jobs: [any AnyJob] = [], hostFunctions: [HostFunction] = []) {
        guard isLaunched else { return }
        // Once per process: a second call (a library and its program both calling it) returns.
        let first = state.withLock { current -> Bool in
            guard case .notStarted = current else { return false }
            current = .starting
            return true
        }
        guard first else { return }
        // Hydra started with -disable-auto-cleanup tells the survivors of a rank's death with
        // SIGUSR1, whose default action ends them: keep them alive to report the loss (unless the
        // program handles SIGUSR1 itself).
        var current = sigaction()
        if sigaction(SIGUSR1, nil, &current) == 0, current.__sigaction_handler.sa_handler == nil {
            signal(SIGUSR1, SIG_IGN)
        }
        let started: (MPIRuntime, MPIRuntime.Identity)
        do {
            started = try MPIRuntime.start()
        } catch {
            // Every rank fails the same way: rank 0 reports it when a pool is made.
            endIfWorkerRank(error)
            state.withLock { $0 = .failed(error) }
            return
        }
        let (runtime, identity) = started
        if identity.size == 1, let expected = launcherSize, expected > 1 {
            // A launcher of another MPI (Open MPI's mpirun with MPICH loaded): every process would
            // be a rank 0 of its own and run main.
            let error = MPIError(
                .unavailable,
                "the launcher started \(expected) processes but the MPI library sees 1: launch with the mpiexec of the "
                    + "library loaded (MPICH's), or set CONCURRENT_FUTURES_MPI_LIBRARY to the launcher's MPICH-ABI library")
            endIfWorkerRank(error)
            runtime.requestFinish(finalize: true, timeout: .seconds(1))
            state.withLock { $0 = .failed(error) }
            return
        }
        if identity.rank == 0 {
            let router = MPIRootRouter(runtime: runtime, size: identity.size)
            runtime.attach(router)
            state.withLock { $0 = .root(router) }
            // At exit: the pools finish their work, then the worker ranks end.
            atexit { MPIWorker.endWorkers() }
            return
        }
        state.withLock { $0 = .serving(rank: identity.rank, size: identity.size) }
        let server = MPIWorkerServer(runtime: runtime, jobs: jobs, linker: Linker(hostFunctions))
        runtime.attach(server)
        server.announce()
        runtime.waitUntilFinished()
        fflush(nil)
        _exit(0)
    }

    /// On a worker rank (by the launcher's numbering), prints why MPI cannot serve and exits
    /// with status 70; returns on rank 0, which reports `error` when a pool is made.
    private static func endIfWorkerRank(_ error: MPIError) {
        guard let rank = launcherRank, rank != 0 else { return }
        let line = Array("MPI worker rank \(rank): \(error.message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(70)
    }

    /// The rank the launcher gave this process, from its environment, before MPI is up.
    private static var launcherRank: Int? {
        environmentNumber(["PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"])
    }

    /// The number of processes the launcher started, from its environment.
    private static var launcherSize: Int? {
        environmentNumber(["PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"])
    }

    private static func environmentNumber(_ keys: [String]) -> Int? {
        for key in keys {
            if let text = getenv(key), let number = Int(String(cString: text)) { return number }
        }
        return nil
    }

    /// This process's rank in `MPI_COMM_WORLD` (0 in `main`, the worker's rank in a job running
    /// on a worker rank), or `nil` outside an MPI launch.
    public static var rank: Int? {
        state.withLock {
            switch $0 {
            case .root: 0
            case .serving(let rank, _): rank
            default: nil
            }
        }
    }

    /// The number of worker ranks in the launch (every rank but rank 0), in `main` or in a job
    /// running on a worker rank; `nil` outside an MPI launch. mpi4py's `get_comm_workers().size`.
    public static var workerRankCount: Int? { size.map { $0 - 1 } }

    /// The number of ranks in the launch, or `nil` outside an MPI launch.
    public static var size: Int? {
        state.withLock {
            switch $0 {
            case .root(let router): router.size
            case .serving(_, let size): size
            default: nil
            }
        }
    }

    /// How many module messages rank 0 has sent to worker ranks (for tests: each module goes to
    /// each rank once).
    package static var modulesSent: Int {
        state.withLock { if case .root(let router) = $0 { router.modulesSent } else { 0 } }
    }

    /// Rank 0's router.
    ///
    /// - Throws: ``MPIError`` `.notLaunched` without a launcher or without
    ///   ``runIfRequested(jobs:)``; the error MPI failed with.
    static func router() throws(MPIError) -> MPIRootRouter {
        let current = state.withLock { $0 }
        switch current {
        case .root(let router): return router
        case .failed(let error): throw error
        case .serving:
            throw MPIError(.notLaunched, "a worker rank cannot make an MPI pool: only rank 0 runs main")
        case .notStarted, .starting:
            if isLaunched {
                throw MPIError(.notLaunched, "call MPIWorker.runIfRequested(jobs:) first thing in main: it starts MPI on every rank")
            }
            throw MPIError(
                .notLaunched,
                "this program was not started by an MPI launcher: run it with `mpiexec -n N program` (N - 1 worker ranks), "
                    + "and call MPIWorker.runIfRequested(jobs:) first thing in main")
        }
    }

    /// Ends the worker ranks and MPI; runs at exit on rank 0. The pools are joined first (their
    /// work needs the ranks), whatever the order of the `atexit` handlers.
    private static func endWorkers() {
        let current = state.withLock { $0 }
        guard case .root(let router) = current else { return }
        ExitHook.run()
        router.endWorkers()
    }
}
