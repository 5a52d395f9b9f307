public import Futures
import CFuturesShims

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
/// its own sized to its host's cores (interpreters for guest calls, threads for the jobs listed
/// here), and exits when rank 0's program ends, or when it has heard nothing from rank 0 for a
/// minute.
public enum MPIWorker {
    private static let state = Locked<State>(.notStarted)

    private enum State {
        case notStarted
        case root(MPIRootRouter)
        case failed(MPIError)
    }

    /// Whether an MPI launcher (`mpiexec`, `srun`) started this process.
    public static var isLaunched: Bool { cf_mpi_launched() != 0 }

    /// Serves as a worker rank when this process is one; returns at once otherwise.
    ///
    /// Failing to load or initialize MPI under a launcher is fatal on the worker ranks (they
    /// print why and exit with status 70); on rank 0 it is kept and thrown by
    /// ``MPIPoolExecutor/init(maxWorkers:limits:heartbeatTimeout:startTimeout:)``.
    ///
    /// - Parameter jobs: The jobs worker ranks can run, found by name. Two jobs with the same
    ///   name are a programming error (the first is used).
    public static func runIfRequested(jobs: [any AnyJob] = []) {
        guard isLaunched else { return }
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
            if let rank = launcherRank, rank != 0 {
                let line = Array("MPI worker rank \(rank): \(error.message)\n".utf8)
                _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                exit(70)
            }
            state.withLock { $0 = .failed(error) }
            return
        }
        let (runtime, identity) = started
        if identity.rank == 0 {
            let router = MPIRootRouter(runtime: runtime, size: identity.size)
            runtime.attach(router)
            state.withLock { $0 = .root(router) }
            // After the exit hook joined the pools (atexit runs handlers in reverse order of
            // registration, and the hook registers with the first pool), the worker ranks end.
            atexit { MPIWorker.endWorkers() }
            return
        }
        let server = MPIWorkerServer(runtime: runtime, jobs: jobs)
        runtime.attach(server)
        server.announce()
        runtime.waitUntilFinished()
        fflush(nil)
        _exit(0)
    }

    /// The rank the launcher gave this process, from its environment, before MPI is up.
    private static var launcherRank: Int? {
        for key in ["PMI_RANK", "PMIX_RANK", "SLURM_PROCID"] {
            if let text = getenv(key), let rank = Int(String(cString: text)) { return rank }
        }
        return nil
    }

    /// This process's rank in `MPI_COMM_WORLD` when it is rank 0 of an MPI launch, else `nil`.
    public static var rank: Int? {
        state.withLock { if case .root = $0 { 0 } else { nil } }
    }

    /// The number of ranks in the launch, when this process is its rank 0, else `nil`.
    public static var size: Int? {
        state.withLock { if case .root(let router) = $0 { router.size } else { nil } }
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
        case .notStarted:
            if isLaunched {
                throw MPIError(.notLaunched, "call MPIWorker.runIfRequested(jobs:) first thing in main: it starts MPI on every rank")
            }
            throw MPIError(
                .notLaunched,
                "this program was not started by an MPI launcher: run it with `mpiexec -n N program` (N - 1 worker ranks), "
                    + "and call MPIWorker.runIfRequested(jobs:) first thing in main")
        }
    }

    /// Ends the worker ranks and MPI; runs at exit on rank 0.
    private static func endWorkers() {
        let current = state.withLock { $0 }
        if case .root(let router) = current { router.endWorkers() }
    }
}
