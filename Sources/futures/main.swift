import BenchJobs
import ConcurrentFutures

// Worker mode first: when a ProcessPoolExecutor started this program as a worker, this serves it
// and exits; otherwise it returns at once.
ProcessWorker.runIfRequested(jobs: BenchJobs.all)
// Under an MPI launcher (`mpiexec -n N futures ...`), ranks 1 to N - 1 serve MPI pools from here
// on and never return; rank 0 goes on. Without a launcher it returns at once.
MPIWorker.runIfRequested(jobs: BenchJobs.all)

/// Runs the command line, with ArgumentParser's async dispatch and error reporting.
func runCommandLine() async {
    await FuturesCommand.main()
}
await runCommandLine()
