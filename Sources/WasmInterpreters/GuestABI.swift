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
            case .none:
                switch try next() {
                case .i32, .i64, .f32, .f64: lowered.append(0)
                default: throw signatureError(arguments, parameters)
                }
            case .bool(let flag):
                guard try next() == .i32 else { throw signatureError(arguments, parameters) }
                lowered.append(flag ? 1 : 0)
            case .int(let number):
                switch try next() {
                case .i64: lowered.append(UInt64(bitPattern: number))
                case .i32:
                    guard let narrow = Int32(exactly: number) else {
                        throw GuestFault(kind: .badArguments, message: "\(number) does not fit the function's i32 parameter")
                    }
                    lowered.append(UInt64(UInt32(bitPattern: narrow)))
                case .f64: lowered.append(Double(number).bitPattern)
                default: throw signatureError(arguments, parameters)
                }
            case .double(let number):
                switch try next() {
                case .f64: lowered.append(number.bitPattern)
                case .f32: lowered.append(UInt64(Float(number).bitPattern))
                default: throw signatureError(arguments, parameters)
                }
            case .queue(let id):
                guard try next() == .i32, let narrow = UInt32(exactly: id) else { throw signatureError(arguments, parameters) }
                lowered.append(UInt64(narrow))
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
