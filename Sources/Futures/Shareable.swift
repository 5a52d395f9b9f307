/// A type whose values can cross to another interpreter, thread or process, as a ``ShareableValue``.
///
/// The natively shareable types (Python's `is_shareable` list) conform out of the box: `Bool`,
/// the fixed-width integers, `Double`, `Float`, `String`, `[UInt8]` (as bytes), arrays and
/// optionals of shareable values, ``ShareableValue`` itself, and queues. A `Codable` type becomes
/// shareable by declaring the conformance, with no code:
///
/// ```swift
/// struct Point: Codable, Shareable { var x: Int, y: Int }   // crosses as its encoding
/// ```
///
/// That is the analog of Python's pickle fallback: the value is encoded by ``ShareableValueEncoder`` into
/// a tree of natively shareable values. Types that are neither (closures, file handles, classes
/// without an encoding) cannot conform, so passing them to a guest function does not compile.
public protocol Shareable: Sendable {
    /// The value that crosses for `self`.
    ///
    /// - Throws: ``NotShareableError`` when the value has no form that can cross (a `Codable`
    ///   value whose encoding throws, an integer beyond 64 bits), with the reason.
    var shareableValue: ShareableValue { get throws(NotShareableError) }

    /// Rebuilds a value that crossed.
    ///
    /// - Throws: ``ValueCodingError`` when `value` is of the wrong kind or out of range.
    init(shareableValue value: ShareableValue) throws

    /// Whether the type crosses natively (`true`) or through its `Codable` encoding (`false`).
    static var isNativelyShareable: Bool { get }
}

extension Shareable where Self: Codable {
    /// The value tree ``ShareableValueEncoder`` produces for `self`.
    ///
    /// - Throws: ``NotShareableError`` carrying the encoder's reason when `encode(to:)` throws or
    ///   an unsigned integer exceeds `Int64.max`.
    public var shareableValue: ShareableValue {
        get throws(NotShareableError) {
            do {
                return try ShareableValueEncoder().encode(self)
            } catch {
                throw NotShareableError("a \(Self.self) cannot be encoded: \(error)")
            }
        }
    }

    /// Decodes with ``ShareableValueDecoder``.
    public init(shareableValue value: ShareableValue) throws {
        self = try ShareableValueDecoder().decode(Self.self, from: value)
    }

    /// `false`: the value crosses through its encoding.
    public static var isNativelyShareable: Bool { false }
}

/// Whether `object` is natively shareable: a ``ShareableValue``, or an instance of a type that crosses
/// without encoding. Like Python's `is_shareable`, the answer depends on the type, not on the
/// contents; `Codable` types that cross by encoding answer `false`.
public func isShareable(_ object: Any) -> Bool {
    guard let shareable = object as? any Shareable else { return false }
    return type(of: shareable).isNativelyShareable
}

extension ShareableValue: Shareable {
    public var shareableValue: ShareableValue { self }
    public init(shareableValue value: ShareableValue) { self = value }
    public static var isNativelyShareable: Bool { true }
}

extension Bool: Shareable {
    public var shareableValue: ShareableValue { .bool(self) }
    public init(shareableValue value: ShareableValue) throws {
        switch value {
        case .bool(let flag): self = flag
        case .int(let number) where number == 0 || number == 1: self = number == 1
        default: throw ValueCodingError.mismatch(expected: "bool", got: value)
        }
    }
    public static var isNativelyShareable: Bool { true }
}

extension String: Shareable {
    public var shareableValue: ShareableValue { .string(self) }
    public init(shareableValue value: ShareableValue) throws {
        guard case .string(let text) = value else { throw ValueCodingError.mismatch(expected: "string", got: value) }
        self = text
    }
    public static var isNativelyShareable: Bool { true }
}

extension Double: Shareable {
    public var shareableValue: ShareableValue { .double(self) }
    public init(shareableValue value: ShareableValue) throws {
        switch value {
        case .double(let number): self = number
        case .int(let number): self = Double(number)
        default: throw ValueCodingError.mismatch(expected: "double", got: value)
        }
    }
    public static var isNativelyShareable: Bool { true }
}

extension Float: Shareable {
    public var shareableValue: ShareableValue { .double(Double(self)) }
    public init(shareableValue value: ShareableValue) throws { self = Float(try Double(shareableValue: value)) }
    public static var isNativelyShareable: Bool { true }
}

/// Integers cross as 64-bit signed integers; narrowing checks the range.
public protocol ShareableInteger: FixedWidthInteger, Shareable {}

extension ShareableInteger {
    /// The value as ``ShareableValue/int(_:)``.
    ///
    /// - Throws: ``NotShareableError`` when it does not fit in the 64-bit signed integer a
    ///   ``ShareableValue`` carries.
    public var shareableValue: ShareableValue {
        get throws(NotShareableError) {
            guard let number = Int64(exactly: self) else {
                throw NotShareableError("\(self) does not fit in the 64-bit signed integer a ShareableValue carries")
            }
            return .int(number)
        }
    }

    public init(shareableValue value: ShareableValue) throws {
        switch value {
        case .int(let number):
            guard let exact = Self(exactly: number) else {
                throw ValueCodingError(.typeMismatch, "\(number) is out of range for \(Self.self)")
            }
            self = exact
        case .bool(let flag): self = flag ? 1 : 0
        default: throw ValueCodingError.mismatch(expected: "int", got: value)
        }
    }

    public static var isNativelyShareable: Bool { true }
}

extension Int: ShareableInteger {}
extension Int64: ShareableInteger {}
extension Int32: ShareableInteger {}
extension Int16: ShareableInteger {}
extension Int8: ShareableInteger {}
extension UInt8: ShareableInteger {}
extension UInt16: ShareableInteger {}
extension UInt32: ShareableInteger {}

extension Optional: Shareable where Wrapped: Shareable {
    /// `nil` crosses as ``ShareableValue/none``.
    public var shareableValue: ShareableValue {
        get throws(NotShareableError) { try self?.shareableValue ?? .none }
    }
    public init(shareableValue value: ShareableValue) throws {
        self = value == .none ? nil : try Wrapped(shareableValue: value)
    }
    public static var isNativelyShareable: Bool { Wrapped.isNativelyShareable }
}

extension Array: Shareable where Element: Shareable {
    /// `[UInt8]` crosses as ``ShareableValue/bytes(_:)``; other arrays as ``ShareableValue/array(_:)``.
    public var shareableValue: ShareableValue {
        get throws(NotShareableError) {
            if let bytes = self as? [UInt8] { return .bytes(bytes) }
            var values: [ShareableValue] = []
            values.reserveCapacity(count)
            for element in self { values.append(try element.shareableValue) }
            return .array(values)
        }
    }

    public init(shareableValue value: ShareableValue) throws {
        switch value {
        case .bytes(let bytes) where Element.self == UInt8.self:
            self = bytes as! [Element]
        case .array(let values):
            self = try values.map { try Element(shareableValue: $0) }
        default:
            throw ValueCodingError.mismatch(expected: Element.self == UInt8.self ? "bytes" : "array", got: value)
        }
    }

    public static var isNativelyShareable: Bool { Element.isNativelyShareable }
}
