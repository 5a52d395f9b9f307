import Futures
import RemoteCalls

/// One executor's sessions on the worker ranks, as rank 0 sees it.
final class MPISession: Sendable {
    let id: Int64
    let router: MPIRootRouter

    init(id: Int64, router: MPIRootRouter) {
        self.id = id
        self.router = router
    }

    func close() { router.closeSession(id) }

    /// Asks the ranks to answer this session's calls that have not started as not started.
    func cancelQueued() { router.cancelSession(id) }

    /// Runs `calls` on `rank`. A call refused because the initializer failed on the rank breaks
    /// the pool, as a failing initializer breaks every pool, and fails with the broken-pool error.
    func run(_ calls: [RemoteCall], on rank: Int) throws(ExecutorError) -> [Result<ShareableValue, any Error>] {
        var outcomes = try router.run(calls, session: id, on: rank)
        for (index, outcome) in outcomes.enumerated() {
            guard case .failure(let error as RemoteError) = outcome, error.code == .initializerFailed else { continue }
            let broken = ExecutorError(
                .brokenMPIPool, "The initializer failed on MPI rank \(rank), the MPI pool is not usable anymore: \(error.message)",
                underlying: error)
            router.breakSession(id, broken, logPrefix: "Exception in initializer on an MPI rank")
            outcomes[index] = .failure(broken)
        }
        return outcomes
    }
}

/// The MPI pool's worker context: it owns one slot on one worker rank, as a process context owns
/// one child process. A batch of calls is one MPI message there and one back; the worker thread
/// waits for the reply, which the MPI thread delivers.
struct MPIContext: WorkerContext {
    let session: MPISession
    let rank: Int
    /// The pool's metrics, when it has any: the round trips to the rank.
    private var metrics: PoolMetrics?

    init(session: MPISession, rank: Int) {
        self.session = session
        self.rank = rank
    }

    mutating func initialize() throws {}

    mutating func instrument(with instruments: PoolInstruments) { metrics = instruments.metrics }

    /// Short tasks go to the rank in batches of up to this many, one round trip each.
    var batchLimit: Int { 64 }
    static var runsBatchesTogether: Bool { true }
    /// A round trip to a rank costs tens of microseconds or more (a network, MPI's progress):
    /// tasks are batched while they average under 2 ms with it, so that small calls share round
    /// trips, and long ones still go one at a time.
    static var shortTaskNanoseconds: UInt64 { 2_000_000 }

    mutating func run(_ task: CallBatch) throws -> CallBatch.Output {
        try timed { try session.run(task.started.map(\.call), on: rank) }
    }

    mutating func run(batch: [CallBatch]) -> [Result<CallBatch.Output, any Error>] {
        let session = session
        let rank = rank
        return timed { CallBatch.run(batch) { calls, _ in try session.run(calls, on: rank) } }
    }

    /// Runs `body`, one round trip to the rank, recording its time when the pool has metrics.
    private func timed<T>(_ body: () throws -> T) rethrows -> T {
        guard let roundTrip = metrics?.roundTrip else { return try body() }
        let start = Deadline.now.nanoseconds
        defer { roundTrip.recordNanoseconds(Int64(clamping: Deadline.now.nanoseconds &- start)) }
        return try body()
    }

    mutating func finalize() {}
}
