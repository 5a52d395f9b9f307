import Futures
import WasmKit

/// How values cross into and out of a guest function, the same on every engine: scalars as
/// parameters; strings, bytes and arrays copied into guest memory and passed as
/// (pointer, length); results as none, one scalar or an array of scalars. Values travel as raw
/// 64-bit slots (i32 and f32 in the low half), which each engine converts to its own calls.
enum GuestABI {
    /// The slots for `arguments` under `parameters`. `copyIn` copies a buffer into guest memory
    /// and returns its address; every address it returned is appended to `allocations`, even when
    /// a later argument fails.
    ///
    /// - Throws: ``GuestFault`` `.badArguments` when the arguments do not fit the parameters,
    ///   `.valueTooLarge` over `maxValueBytes`; what `copyIn` throws.
    static func lower(
        _ arguments: [ShareableValue], to parameters: [ValueType], maxValueBytes: Int, allocations: inout [UInt32],
        copyIn: (_ bytes: [UInt8], _ kind: String) throws -> UInt32
    ) throws -> [UInt64] {
        var lowered: [UInt64] = []
        lowered.reserveCapacity(parameters.count)
        func next() throws -> ValueType {
            guard lowered.count < parameters.count else { throw signatureError(arguments, parameters) }
            return parameters[lowered.count]
        }
        for argument in arguments {
            switch argument {
            case .none, .bool, .int, .double, .queue:
                guard let bits = try number(argument, as: next()) else { throw signatureError(arguments, parameters) }
                lowered.append(bits)
            case .string, .bytes, .array:
                let bytes: [UInt8]
                switch argument {
                case .string(let text): bytes = Array(text.utf8)
                case .bytes(let raw): bytes = raw
                default: bytes = argument.encoded()
                }
                guard bytes.count <= maxValueBytes else {
                    throw GuestFault(
                        kind: .valueTooLarge,
                        message: "an argument of \(bytes.count) bytes exceeds the limit of \(maxValueBytes) bytes")
                }
                guard try next() == .i32, lowered.count + 1 < parameters.count, parameters[lowered.count + 1] == .i32 else {
                    throw signatureError(arguments, parameters)
                }
                let pointer = try copyIn(bytes, argument.kindName)
                allocations.append(pointer)
                lowered.append(UInt64(pointer))
                lowered.append(UInt64(bytes.count))
            }
        }
        guard lowered.count == parameters.count else { throw signatureError(arguments, parameters) }
        return lowered
    }

    /// Lowers `arguments` that are all numbers (no buffer to copy in) straight into `slots`;
    /// returns `false`, writing nothing, when one of them is a string, bytes or an array.
    ///
    /// - Throws: What ``lower(_:to:maxValueBytes:allocations:copyIn:)`` throws for numbers.
    static func lowerNumbers(
        _ arguments: [ShareableValue], to parameters: [ValueType], into slots: UnsafeMutableBufferPointer<UInt64>
    ) throws -> Bool {
        for argument in arguments {
            switch argument {
            case .string, .bytes, .array: return false
            default: continue
            }
        }
        guard arguments.count == parameters.count else { throw signatureError(arguments, parameters) }
        for (index, argument) in arguments.enumerated() {
            guard let bits = try number(argument, as: parameters[index]) else { throw signatureError(arguments, parameters) }
            slots[index] = bits
        }
        return true
    }

    /// The bits of a number argument for a parameter of `type`; `nil` when it does not fit the
    /// type's kind.
    ///
    /// - Throws: ``GuestFault`` `.badArguments` for an integer out of an `i32`'s range.
    @inline(__always)
    static func number(_ argument: ShareableValue, as type: ValueType) throws -> UInt64? {
        switch (argument, type) {
        case (.none, .i32), (.none, .i64), (.none, .f32), (.none, .f64): return 0
        case (.bool(let flag), .i32): return flag ? 1 : 0
        case (.int(let number), .i64): return UInt64(bitPattern: number)
        case (.int(let number), .i32):
            guard let narrow = Int32(exactly: number) else {
                throw GuestFault(kind: .badArguments, message: "\(number) does not fit the function's i32 parameter")
            }
            return UInt64(UInt32(bitPattern: narrow))
        case (.int(let number), .f64): return Double(number).bitPattern
        case (.double(let number), .f64): return number.bitPattern
        case (.double(let number), .f32): return UInt64(Float(number).bitPattern)
        case (.queue(let id), .i32): return UInt32(exactly: id).map(UInt64.init)
        default: return nil
        }
    }

    static func signatureError(_ arguments: [ShareableValue], _ parameters: [ValueType]) -> GuestFault {
        GuestFault(
            kind: .badArguments,
            message: "arguments (\(arguments.map(\.kindName).joined(separator: ", "))) do not fit the parameters "
                + "(\(parameters.map(typeName).joined(separator: ", ")))")
    }

    /// The error for a function whose signature has a reference or vector.
    static func notCrossable(_ function: String, interpreterID: Int) -> GuestError {
        GuestError(
            kind: .badArguments, function: function,
            message: "the function returns a reference or vector, which cannot cross", interpreterID: interpreterID)
    }

    /// The value of results `bits` of types `types`: none, one scalar, or an array of scalars.
    static func lift(_ bits: some Collection<UInt64>, types: [ValueType], function: String, interpreterID: Int) throws -> ShareableValue {
        // The common cases, without building an array.
        if types.isEmpty { return .none }
        if types.count == 1, let raw = bits.first {
            switch types[0] {
            case .i64: return .int(Int64(bitPattern: raw))
            case .i32: return .int(Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: raw))))
            default: break
            }
        }
        var values: [ShareableValue] = []
        values.reserveCapacity(types.count)
        for (raw, type) in zip(bits, types) {
            switch type {
            case .i32: values.append(.int(Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: raw)))))
            case .i64: values.append(.int(Int64(bitPattern: raw)))
            case .f32: values.append(.double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))))
            case .f64: values.append(.double(Double(bitPattern: raw)))
            default: throw notCrossable(function, interpreterID: interpreterID)
            }
        }
        switch values.count {
        case 0: return .none
        case 1: return values[0]
        default: return .array(values)
        }
    }
}
