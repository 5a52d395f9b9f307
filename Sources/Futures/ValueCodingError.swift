/// A value could not be decoded: malformed binary data, or a value of the wrong kind for the type
/// asked for.
public struct ValueCodingError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<ValueCodingError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.malformed, .typeMismatch]

    /// What went wrong.
    public let code: Code
    /// Details, naming the expected and actual kinds for a mismatch.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package static func mismatch(expected: String, got value: ShareableValue) -> ValueCodingError {
        ValueCodingError(.typeMismatch, "expected \(expected), got \(value.kindName) \(value)")
    }
}

extension ErrorCode where Domain == ValueCodingError {
    /// The bytes are not a valid encoding (truncated, unknown tag, bad UTF-8, too deep...).
    public static let malformed = Self("malformed")
    /// The value is well formed but of another kind than the requested type needs.
    public static let typeMismatch = Self("typeMismatch")
}

/// An object cannot be sent to another interpreter or process: Python's
/// `concurrent.interpreters.NotShareableError`.
///
/// Raised for host closures and Swift jobs submitted to an interpreter pool, for closures
/// submitted to a process pool, for queues sent to another process, and for values that have no
/// encoding. (A value too large to cross is an `GuestError` of kind `valueTooLarge`.)
public struct NotShareableError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the object cannot cross.
    public let message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var description: String { "NotShareableError: \(message)" }
}
