/// The type of a WebAssembly number: what a host function takes and returns.
public enum WasmValueType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A 32-bit integer (also a pointer into a guest's memory).
    case i32
    /// A 64-bit integer.
    case i64
    /// A 32-bit IEEE 754 float.
    case f32
    /// A 64-bit IEEE 754 float.
    case f64

    /// `i32`, `i64`, `f32` or `f64`, as WAT writes it.
    public var description: String { rawValue }
}

/// A WebAssembly number, exactly as the guest has it: integers as their bits, floats as their
/// IEEE 754 bit patterns, so that every value crosses unchanged (a signaling NaN stays one,
/// which a trip through `Double` would not guarantee).
public enum WasmValue: Sendable, Hashable, CustomStringConvertible {
    /// A 32-bit integer's bits.
    case i32(UInt32)
    /// A 64-bit integer's bits.
    case i64(UInt64)
    /// A 32-bit float's bit pattern.
    case f32(UInt32)
    /// A 64-bit float's bit pattern.
    case f64(UInt64)

    /// A signed 32-bit integer.
    public static func int32(_ value: Int32) -> WasmValue { .i32(UInt32(bitPattern: value)) }
    /// A signed 64-bit integer.
    public static func int64(_ value: Int64) -> WasmValue { .i64(UInt64(bitPattern: value)) }
    /// A 32-bit float (its bits kept).
    public static func float(_ value: Float) -> WasmValue { .f32(value.bitPattern) }
    /// A 64-bit float (its bits kept).
    public static func double(_ value: Double) -> WasmValue { .f64(value.bitPattern) }

    /// The value's type.
    public var type: WasmValueType {
        switch self {
        case .i32: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        }
    }

    /// The value's bits, widened to 64 (i32 and f32 in the low half).
    public var bits: UInt64 {
        switch self {
        case .i32(let bits), .f32(let bits): UInt64(bits)
        case .i64(let bits), .f64(let bits): bits
        }
    }

    /// The value of type `type` whose bits are `bits` (i32 and f32 from the low half).
    public init(bits: UInt64, type: WasmValueType) {
        switch type {
        case .i32: self = .i32(UInt32(truncatingIfNeeded: bits))
        case .i64: self = .i64(bits)
        case .f32: self = .f32(UInt32(truncatingIfNeeded: bits))
        case .f64: self = .f64(bits)
        }
    }

    /// An `i32` as a signed integer; `nil` for other types.
    public var int32: Int32? { if case .i32(let bits) = self { Int32(bitPattern: bits) } else { nil } }
    /// An `i64` as a signed integer; `nil` for other types.
    public var int64: Int64? { if case .i64(let bits) = self { Int64(bitPattern: bits) } else { nil } }
    /// An `f32` as a `Float` (bits kept); `nil` for other types.
    public var float: Float? { if case .f32(let bits) = self { Float(bitPattern: bits) } else { nil } }
    /// An `f64` as a `Double` (bits kept); `nil` for other types.
    public var double: Double? { if case .f64(let bits) = self { Double(bitPattern: bits) } else { nil } }

    /// `i32:42`, `f32:0x7fa00000`...: the type and the value (floats as bits).
    public var description: String {
        switch self {
        case .i32(let bits): "i32:\(Int32(bitPattern: bits))"
        case .i64(let bits): "i64:\(Int64(bitPattern: bits))"
        case .f32(let bits): "f32:0x\(String(bits, radix: 16))"
        case .f64(let bits): "f64:0x\(String(bits, radix: 16))"
        }
    }
}
