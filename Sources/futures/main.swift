import BenchJobs
import ConcurrentFutures

// Worker mode first: when a ProcessPoolExecutor started this program as a worker, this serves it
// and exits; otherwise it returns at once.
ProcessWorker.runIfRequested(jobs: BenchJobs.all)

/// Runs the command line, with ArgumentParser's async dispatch and error reporting.
func runCommandLine() async {
    await FuturesCommand.main()
}
await runCommandLine()
