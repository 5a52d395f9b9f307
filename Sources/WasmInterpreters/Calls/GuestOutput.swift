public import Futures

/// A call's result with what the guest wrote to its standard streams during the call: what a
/// function made with ``GuestFunction/capturingOutput()`` (or ``GuestModule/command()``) returns.
///
/// Each stream holds at most ``InterpreterLimits/maxValueBytes`` bytes: a guest that writes more
/// fails its call with ``GuestError/Kind-swift.struct/outputLimit``.
public struct GuestOutput<Value: Shareable>: Shareable {
    /// The function's result; for a command, its exit status.
    public let value: Value
    /// Standard output, as written.
    public let stdout: [UInt8]
    /// Standard error, as written.
    public let stderr: [UInt8]

    /// Creates a result with output.
    public init(value: Value, stdout: [UInt8], stderr: [UInt8]) {
        self.value = value
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Standard output decoded as UTF-8 (invalid sequences replaced).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid sequences replaced).
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// `[value, stdout, stderr]`.
    public var shareableValue: ShareableValue {
        get throws(NotShareableError) { .array([try value.shareableValue, .bytes(stdout), .bytes(stderr)]) }
    }

    /// Rebuilds a result from `[value, stdout, stderr]`.
    ///
    /// - Throws: ``Futures/ValueCodingError`` when `value` has another shape.
    public init(shareableValue value: ShareableValue) throws {
        guard case .array(let fields) = value, fields.count == 3, case .bytes(let stdout) = fields[1],
            case .bytes(let stderr) = fields[2]
        else {
            throw ValueCodingError.mismatch(expected: "[value, stdout bytes, stderr bytes]", got: value)
        }
        self.init(value: try Value(shareableValue: fields[0]), stdout: stdout, stderr: stderr)
    }

    /// Crosses natively when its value does.
    public static var isNativelyShareable: Bool { Value.isNativelyShareable }
}

extension GuestOutput: Equatable where Value: Equatable {}

/// What one call gives a WASI guest besides its arguments.
@usableFromInline
package struct WASICallOptions: Sendable, Hashable {
    /// `argv[1...]`, replacing the module's; `nil` keeps the module's.
    package var arguments: [String]?
    /// The environment, replacing the module's; `nil` keeps the module's.
    package var environment: [String: String]?
    /// Standard input.
    package var stdin: [UInt8] = []
    /// Whether the result carries the output (`[value, stdout, stderr]`) instead of the output
    /// going to the module's destination.
    package var capture = false
    /// Whether the call is one exchange with a resident instance of the command (see
    /// ``GuestModule/residentCommand()``) rather than a run of it.
    package var resident = false

    package init(
        arguments: [String]? = nil, environment: [String: String]? = nil, stdin: [UInt8] = [], capture: Bool = false,
        resident: Bool = false
    ) {
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.capture = capture
        self.resident = resident
    }
}
