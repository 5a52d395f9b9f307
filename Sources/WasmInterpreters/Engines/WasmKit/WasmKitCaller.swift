import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// A WasmKit instance calling a host function.
struct WasmKitCaller: HostCaller {
    let instance: Instance?

    func memory() throws -> any LinearMemory {
        guard let memory = instance?.exports[memory: "memory"] else { throw GuestMemory.noMemory() }
        return memory
    }

    func allocate(_ count: Int, context: HostContext) throws -> UInt32 {
        guard let instance, let memory = instance.exports[memory: "memory"] else { throw GuestMemory.noMemory() }
        return try GuestMemory.allocate(count, in: instance, memory: memory, context: context)
    }

    func call(_ name: String, _ arguments: [WasmValue], context: HostContext) throws -> [WasmValue] {
        guard let function = instance?.exports[function: name] else {
            throw GuestFault(kind: .missingFunction, message: "the guest exports no function named '\(name)'")
        }
        let parameters = try function.type.parameters.map(WasmValueType.init(crossing:))
        try Self.checkArguments(arguments, parameters, name)
        return try function.invoke(arguments.map(WasmKit.Value.init)).map(WasmValue.init)
    }
}

extension WasmValueType {
    /// The type of a WasmKit value type that is a number.
    ///
    /// - Throws: ``GuestFault`` `.badArguments` for a reference or vector.
    init(crossing type: ValueType) throws {
        switch type {
        case .i32: self = .i32
        case .i64: self = .i64
        case .f32: self = .f32
        case .f64: self = .f64
        default: throw GuestFault(kind: .badArguments, message: "a reference or vector cannot cross")
        }
    }

    /// The WasmKit value type.
    var wasmKit: ValueType {
        switch self {
        case .i32: .i32
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        }
    }
}

extension WasmKit.Value {
    /// The WasmKit value of `value`, bits kept.
    init(_ value: WasmValue) {
        switch value {
        case .i32(let bits): self = .i32(bits)
        case .i64(let bits): self = .i64(bits)
        case .f32(let bits): self = .f32(bits)
        case .f64(let bits): self = .f64(bits)
        }
    }
}

extension WasmValue {
    /// The value of a WasmKit number, bits kept.
    ///
    /// - Throws: ``GuestFault`` `.badArguments` for a reference or vector.
    init(_ value: WasmKit.Value) throws {
        switch value {
        case .i32(let bits): self = .i32(bits)
        case .i64(let bits): self = .i64(bits)
        case .f32(let bits): self = .f32(bits)
        case .f64(let bits): self = .f64(bits)
        default: throw GuestFault(kind: .badArguments, message: "a reference or vector cannot cross")
        }
    }
}
