import ArgumentParser
import BenchJobs
import ConcurrentFutures

// Worker mode first: when a ProcessPoolExecutor started this program as a worker, this serves it
// and exits; otherwise it returns at once.
ProcessWorker.runIfRequested(jobs: BenchJobs.all)

// Parse and run the command with ArgumentParser's own error reporting.
do {
    var command = try FuturesCommand.parseAsRoot()
    if var subcommand = command as? any FuturesSubcommand {
        try await subcommand.execute()
    } else {
        try command.run()
    }
} catch {
    FuturesCommand.exit(withError: error)
}
