/// A value that can cross from one interpreter, thread or process to another: the package's
/// common currency for arguments, results and queue items.
///
/// These are the *natively shareable* values (Python's `is_shareable` types): they cross by
/// copying, with no encoding step that could fail. Every other `Codable` type crosses by being
/// encoded into a tree of these values (see ``Shareable`` and ``ShareableValueEncoder``), the analog of
/// Python's pickle fallback. The binary form, shared by the guest ABI, the process-pool wire
/// format and queue items, is described in `docs/guest-abi.md`.
public enum ShareableValue: Sendable, Hashable {
    /// Python's `None`.
    case none
    /// A boolean.
    case bool(Bool)
    /// A 64-bit signed integer.
    case int(Int64)
    /// A 64-bit floating-point number.
    case double(Double)
    /// A Unicode string.
    case string(String)
    /// Raw bytes.
    case bytes([UInt8])
    /// An ordered sequence of values (Python's tuple).
    case array([ShareableValue])
    /// A cross-interpreter queue, by id: the queue itself is shared, not copied.
    case queue(Int)

    /// The name of the case, for error messages.
    public var kindName: String {
        switch self {
        case .none: "none"
        case .bool: "bool"
        case .int: "int"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .array: "array"
        case .queue: "queue"
        }
    }
}

extension ShareableValue: CustomStringConvertible {
    /// A Python-like rendering: `None`, `True`, `42`, `1.5`, `'text'`, `b'\x01'`, `[1, 2]`, `Queue(3)`.
    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let value): return value ? "True" : "False"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .string(let value): return "'\(value)'"
        case .bytes(let value):
            return "b'"
                + value.map { byte in
                    (0x20..<0x7f).contains(byte) && byte != 0x27 && byte != 0x5c
                        ? String(UnicodeScalar(byte)) : "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
                }.joined() + "'"
        case .array(let values): return "[" + values.map { $0.description }.joined(separator: ", ") + "]"
        case .queue(let id): return "Queue(\(id))"
        }
    }
}

extension ShareableValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral
{
    /// `42` is `.int(42)`.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// `1.5` is `.double(1.5)`.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// `"text"` is `.string("text")`.
    public init(stringLiteral value: String) { self = .string(value) }
    /// `true` is `.bool(true)`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// `[1, 2]` is `.array([.int(1), .int(2)])`.
    public init(arrayLiteral elements: ShareableValue...) { self = .array(elements) }
    /// `nil` is `.none`.
    public init(nilLiteral: ()) { self = .none }
}
