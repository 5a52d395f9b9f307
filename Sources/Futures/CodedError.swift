/// A stable, named condition of the error type `Domain`. Each error type declares its codes as
/// static members, so a code reads like a case: `error.code == .cancelled`.
public struct ErrorCode<Domain>: Hashable, Sendable, CustomStringConvertible {
    /// The code's stable name, as descriptions show it and as it crosses between processes.
    public let name: String

    /// Creates a code; error types declare theirs as static members.
    public init(_ name: String) { self.name = name }

    /// The name.
    public var description: String { name }
}

/// The shape every error of this package shares: a stable ``code``, a human-readable
/// ``message``, and a description built from both.
public protocol CodedError: Error, CustomStringConvertible {
    /// Every code the type uses, for looking one up by name.
    static var codes: [ErrorCode<Self>] { get }
    /// What went wrong.
    var code: ErrorCode<Self> { get }
    /// Details.
    var message: String { get }
}

extension CodedError {
    /// `TypeName(code): message`.
    public var description: String { "\(Self.self)(\(code)): \(message)" }
}

extension ErrorCode where Domain: CodedError {
    /// The code named `name`, or `fallback` when the type has none by that name (a name sent
    /// by another version of the program).
    package static func named(_ name: String, default fallback: ErrorCode) -> ErrorCode {
        Domain.codes.first { $0.name == name } ?? fallback
    }
}
