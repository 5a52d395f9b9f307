import ConcurrentFutures
import TestJobs

// The worker program of the process pool tests. The first line enters worker mode.
ProcessWorker.runIfRequested(jobs: TestJobs.all)

print("FuturesTestWorker is only meant to be started by a ProcessPoolExecutor")
