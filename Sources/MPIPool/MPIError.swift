public import Futures

/// Why MPI could not be used: the error ``MPIWorker`` and ``MPIPoolExecutor`` throw for their
/// own conditions. (A lost rank is an ``Futures/ExecutorError`` `.brokenMPIPool`, as every broken
/// pool is an ``Futures/ExecutorError``.)
public struct MPIError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<MPIError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.unavailable, .notLaunched, .noWorkerRanks, .startFailed, .callFailed]

    /// What went wrong.
    public let code: Code
    /// A human-readable explanation.
    public let message: String

    /// Creates an error with a code and message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "MPIError.\(code.name): \(message)" }
}

extension ErrorCode where Domain == MPIError {
    /// No MPI library could be loaded (install one: `apt-get install mpich`), or it is not of
    /// MPICH's ABI.
    public static let unavailable = Self("unavailable")
    /// The program was not started by an MPI launcher, or did not call
    /// ``MPIWorker/runIfRequested(jobs:)`` first in `main`.
    public static let notLaunched = Self("notLaunched")
    /// The launcher started one rank only: there is no rank to run work on.
    public static let noWorkerRanks = Self("noWorkerRanks")
    /// A worker rank did not report in time after the launch.
    public static let startFailed = Self("startFailed")
    /// An MPI call failed (the text names the call and MPI's message).
    public static let callFailed = Self("callFailed")
}
