// A lean worker program for `futures`' process pools: the same jobs as `futures`, without the
// command-line tool's dependencies (Foundation among them), so that a worker process starts in a
// few milliseconds. `futures` uses it when it sits next to the `futures` binary; `futures`
// itself can also serve as a worker (its main starts with the same line).
import BenchJobs
import ProcessPool

ProcessWorker.runIfRequested(jobs: BenchJobs.all)
print("futures-worker serves the process pools of the futures tool; it is not meant to be run directly")
