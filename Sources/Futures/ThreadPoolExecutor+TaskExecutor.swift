extension ThreadPoolExecutor: TaskExecutor {
    /// Runs a Swift concurrency job on a pool thread.
    ///
    /// Jobs are never dropped: after ``shutdown(wait:cancelFutures:)`` (or once the pool is broken)
    /// they still run, on a worker started for them if none is left, so a task that prefers this
    /// executor always completes.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        try? pool.submit(
            ThreadTask(future: nil) {
                job.runSynchronously(on: executor)
                return {}
            })
    }
}
