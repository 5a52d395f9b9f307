public import ConcurrentFutures

/// What `POST /run` asks for: a guest module (WebAssembly text, or binary starting with
/// `\0asm`), the function to call and its integer arguments, and this request's limits.
///
/// Query parameters: `function` (required), `args` (comma-separated integers), `fuel` (units,
/// default ``defaultFuel``), `timeout_ms` (default ``defaultTimeout``), `memory` (bytes the
/// module may declare; default and most the pool's cap, ``PluginService/memoryCap``).
public struct GuestRequest: Sendable {
    /// The module's bytes, as posted.
    public var module: [UInt8]
    /// The exported function to call.
    public var function: String
    /// Its arguments.
    public var arguments: [Int64]
    /// The call's fuel budget.
    public var fuel: UInt64
    /// The call's time limit.
    public var timeLimit: Duration
    /// The memory the module may declare, in bytes.
    public var memoryBytes: Int

    /// The fuel a request gets unless it asks for less (or more, up to ``maxFuel``).
    public static let defaultFuel: UInt64 = 10_000_000
    /// The most fuel a request may ask for.
    public static let maxFuel: UInt64 = 2_000_000_000
    /// The time limit a request gets unless it asks otherwise (up to ``maxTimeout``).
    public static let defaultTimeout: Duration = .seconds(2)
    /// The longest time limit a request may ask for.
    public static let maxTimeout: Duration = .seconds(10)

    /// Reads a request from its query parameters and body.
    ///
    /// - Throws: ``ServiceError`` `.badRequest` for a missing function, or an argument or limit
    ///   that does not read or is out of range.
    public init(query: [String: String], body: [UInt8]) throws(ServiceError) {
        guard let function = query["function"], !function.isEmpty else { throw ServiceError(.badRequest, "missing ?function=") }
        guard !body.isEmpty else { throw ServiceError(.badRequest, "post the module (WebAssembly text or binary) as the body") }
        module = body
        self.function = function
        var arguments: [Int64] = []
        for text in (query["args"] ?? "").split(separator: ",") {
            guard let value = Int64(text) else { throw ServiceError(.badRequest, "argument '\(text)' is not an integer") }
            arguments.append(value)
        }
        self.arguments = arguments
        fuel = try Self.number(query["fuel"], default: Self.defaultFuel, max: Self.maxFuel, name: "fuel")
        let milliseconds = try Self.number(
            query["timeout_ms"], default: UInt64(Self.defaultTimeout.components.seconds * 1000),
            max: UInt64(Self.maxTimeout.components.seconds * 1000), name: "timeout_ms")
        timeLimit = .milliseconds(milliseconds)
        memoryBytes = Int(
            try Self.number(query["memory"], default: UInt64(PluginService.memoryCap), max: UInt64(PluginService.memoryCap), name: "memory"))
    }

    private static func number(_ text: String?, default value: UInt64, max: UInt64, name: String) throws(ServiceError) -> UInt64 {
        guard let text else { return value }
        guard let number = UInt64(text), number > 0, number <= max else {
            throw ServiceError(.badRequest, "\(name) must be an integer from 1 to \(max), got '\(text)'")
        }
        return number
    }
}

/// Why a request was refused, with the HTTP status it gets.
public struct ServiceError: CodedError, Sendable {
    /// Every code, for looking one up by name.
    public static let codes: [ErrorCode<ServiceError>] = [.badRequest, .badModule, .unavailable]

    /// What went wrong.
    public let code: ErrorCode<ServiceError>
    /// Details.
    public let message: String

    /// Creates an error.
    public init(_ code: ErrorCode<ServiceError>, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The HTTP status: 400 for a bad request or module, 503 while the service drains.
    public var status: Int {
        switch code {
        case .unavailable: 503
        default: 400
        }
    }
}

extension ErrorCode where Domain == ServiceError {
    /// The request's parameters do not read.
    public static let badRequest = Self("badRequest")
    /// The module does not load (malformed, or declares more memory than the request allows).
    public static let badModule = Self("badModule")
    /// The service is shutting down and takes no new work.
    public static let unavailable = Self("unavailable")
}
