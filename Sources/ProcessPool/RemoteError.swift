/// A job failed in a worker process, or asked for something the worker does not have.
///
/// Swift errors cannot be sent between processes as themselves, so a job's error arrives as its
/// type name and description (the analog of Python's `_RemoteTraceback` text). Guest traps,
/// module errors and decoding errors keep their own types across the process boundary.
public struct RemoteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable name for the code.
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The worker program registers no job with that name.
        public static let unknownJob = Code("unknownJob")
        /// The job threw an error.
        public static let jobFailed = Code("jobFailed")
        /// The job's argument or result could not be decoded or encoded in the worker.
        public static let encoding = Code("encoding")

        package static func named(_ name: String) -> Code {
            [Code.unknownJob, .jobFailed, .encoding].first { $0.name == name } ?? .jobFailed
        }

        public var description: String { name }
    }

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
