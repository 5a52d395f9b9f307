/// The one error type that futures and executors throw for their own conditions.
///
/// Every executor reports the same situations with the same codes, so code that handles a
/// cancelled future or a broken pool does not change when the executor type does:
///
/// | code | Python 3.14 | when |
/// |---|---|---|
/// | ``Code-swift.struct/cancelled`` | `CancelledError` | the future was cancelled before it ran |
/// | ``Code-swift.struct/timedOut`` | `TimeoutError` | a `timeout` ran out before the outcome was known |
/// | ``Code-swift.struct/brokenThreadPool`` | `BrokenThreadPool` | a thread worker's initializer failed |
/// | ``Code-swift.struct/brokenInterpreterPool`` | `BrokenInterpreterPool` | an interpreter worker could not start |
/// | ``Code-swift.struct/brokenProcessPool`` | `BrokenProcessPool` | a worker process died or could not start |
/// | ``Code-swift.struct/brokenMPIPool`` | mpi4py's `BrokenExecutor` | an MPI rank died or stopped answering |
/// | ``Code-swift.struct/invalidState`` | `InvalidStateError` | a future was resolved twice |
/// | ``Code-swift.struct/shutdown`` | `RuntimeError` | work was submitted after `shutdown` |
/// | ``Code-swift.struct/invalidArgument`` | `ValueError` | an argument is out of range |
/// | ``Code-swift.struct/resourceExhausted`` | `RuntimeError` | the system could not start a thread |
public struct ExecutorError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<ExecutorError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [
        .cancelled, .timedOut, .brokenThreadPool, .brokenInterpreterPool, .brokenProcessPool, .brokenMPIPool, .invalidState, .shutdown,
        .invalidArgument, .resourceExhausted,
    ]

    /// How a worker process ended, when a broken process pool is caused by a worker's death.
    public enum WorkerExit: Hashable, Sendable, CustomStringConvertible {
        /// The worker exited with this status.
        case exited(Int32)
        /// The worker was killed by this signal.
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let status): return "exited with status \(status)"
            case .signaled(let signal): return "was killed by signal \(signal)\(signalName(signal).map { " (\($0))" } ?? "")"
            }
        }
    }

    /// What went wrong.
    public let code: Code
    /// A human-readable explanation.
    public let message: String
    /// For a broken process pool caused by a worker's death: how the worker ended.
    public let workerExit: WorkerExit?
    /// The error that caused this one, when there is one: the failing initializer's error, for
    /// a broken pool.
    public let underlying: (any Error)?

    /// Creates an error with a code and message.
    public init(_ code: Code, _ message: String, workerExit: WorkerExit? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.workerExit = workerExit
        self.underlying = underlying
    }

    /// Errors are equal when their code, message and worker exit are (the underlying error is
    /// not compared: errors in general are not equatable).
    public static func == (lhs: ExecutorError, rhs: ExecutorError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.workerExit == rhs.workerExit
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(workerExit)
    }

    /// The error a cancelled future reports.
    public static let cancelled = ExecutorError(.cancelled, "the future was cancelled")

    /// The error for a timeout of `timeout`.
    package static func timedOut(_ what: String) -> ExecutorError {
        ExecutorError(.timedOut, what)
    }

    /// The error for work submitted after shutdown.
    package static let shutdownError = ExecutorError(.shutdown, "cannot schedule new futures after shutdown")

    /// The error for work submitted while the program exits (after the exit hook ran).
    package static let exitingError = ExecutorError(
        .shutdown, "cannot schedule new futures after interpreter shutdown: the program is exiting")
}

extension ErrorCode where Domain == ExecutorError {
    /// The future was cancelled before it started running.
    public static let cancelled = Self("cancelled")
    /// A timeout passed before the awaited outcome was available.
    public static let timedOut = Self("timedOut")
    /// The thread pool cannot run work any more: a worker's initializer failed.
    public static let brokenThreadPool = Self("brokenThreadPool")
    /// The interpreter pool cannot run work any more: a worker's interpreter or initializer
    /// failed. Like Python's `BrokenInterpreterPool`, it is also a broken thread pool.
    public static let brokenInterpreterPool = Self("brokenInterpreterPool")
    /// A worker process died while running the work, or the pool could not start one.
    public static let brokenProcessPool = Self("brokenProcessPool")
    /// An MPI rank of an `MPIPoolExecutor` died or stopped answering: its futures failed, and the
    /// pool takes no more work (MPI cannot replace a rank). mpi4py's `BrokenExecutor`.
    public static let brokenMPIPool = Self("brokenMPIPool")
    /// A future was resolved a second time; the first outcome is kept.
    public static let invalidState = Self("invalidState")
    /// The executor was shut down before the work was submitted.
    public static let shutdown = Self("shutdown")
    /// An argument was out of its allowed range.
    public static let invalidArgument = Self("invalidArgument")
    /// The system refused a resource the executor needed (a thread), and no worker was left
    /// to run the work: Python's `RuntimeError("can't start new thread")`.
    public static let resourceExhausted = Self("resourceExhausted")

    /// Whether this code means a broken executor of any kind (thread, interpreter, process, MPI).
    public var isBrokenExecutor: Bool {
        self == .brokenThreadPool || self == .brokenInterpreterPool || self == .brokenProcessPool || self == .brokenMPIPool
    }

    /// Whether this code means a broken thread pool; an interpreter pool is one too.
    public var isBrokenThreadPool: Bool {
        self == .brokenThreadPool || self == .brokenInterpreterPool
    }
}

/// The name of signal `signal` (`SIGSEGV`), for messages, or `nil` for an unusual one.
package func signalName(_ signal: Int32) -> String? {
    let names: [Int32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
        8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ",
    ]
    return names[signal]
}
