import Futures
import ProcessPool

/// One executor's sessions on the worker ranks, as rank 0 sees it.
final class MPISession: Sendable {
    let id: Int64
    let router: MPIRootRouter

    init(id: Int64, router: MPIRootRouter) {
        self.id = id
        self.router = router
    }

    func close() { router.closeSession(id) }
}

/// The MPI pool's worker context: it owns one slot on one worker rank, as a process context owns
/// one child process. A batch of calls is one MPI message there and one back; the worker thread
/// waits for the reply, which the MPI thread delivers.
struct MPIContext: WorkerContext {
    let session: MPISession
    let rank: Int

    mutating func initialize() throws {}

    /// Short tasks go to the rank in batches of up to this many, one round trip each.
    var batchLimit: Int { 64 }
    static var runsBatchesTogether: Bool { true }
    /// A round trip to a rank costs tens of microseconds or more (a network, MPI's progress):
    /// tasks are batched while they average under 2 ms with it, so that small calls share round
    /// trips, and long ones still go one at a time.
    static var shortTaskNanoseconds: UInt64 { 2_000_000 }

    mutating func run(_ task: CallBatch) throws -> CallBatch.Output {
        try session.router.run(task.started.map(\.call), session: session.id, on: rank)
    }

    mutating func run(batch: [CallBatch]) -> [Result<CallBatch.Output, any Error>] {
        let session = session
        let rank = rank
        return CallBatch.run(batch) { calls in try session.router.run(calls, session: session.id, on: rank) }
    }

    mutating func finalize() {}
}
