public import Futures

/// A job failed in a worker process, or asked for something the worker does not have.
///
/// Swift errors cannot be sent between processes as themselves, so a job's error arrives as its
/// type name and description (the analog of Python's `_RemoteTraceback` text). Guest traps,
/// module errors and decoding errors keep their own types across the process boundary.
public struct RemoteError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<RemoteError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.unknownJob, .jobFailed, .encoding, .initializerFailed, .notStarted]

    /// What went wrong.
    public let code: Code
    /// The Swift type of the job's error (`"DecodingError"`, `"MyJobError"`...), or empty.
    public let typeName: String
    /// The error's description, as the worker printed it.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, typeName: String = "", _ message: String) {
        self.code = code
        self.typeName = typeName
        self.message = message
    }

    public var description: String {
        typeName.isEmpty ? "RemoteError(\(code)): \(message)" : "RemoteError(\(code)): \(typeName): \(message)"
    }
}

extension ErrorCode where Domain == RemoteError {
    /// The worker program registers no job with that name.
    public static let unknownJob = Self("unknownJob")
    /// The job threw an error.
    public static let jobFailed = Self("jobFailed")
    /// The job's argument or result could not be decoded or encoded in the worker.
    public static let encoding = Self("encoding")
    /// The worker could not run the call because the pool's initializer failed there (an MPI
    /// rank's pool): the pool that sent it breaks.
    public static let initializerFailed = Self("initializerFailed")
    /// The worker dropped the call before it started, because its pool was shut down with
    /// `cancelFutures: true`; the call's future is cancelled, so this code reaches no one.
    public static let notStarted = Self("notStarted")
}
