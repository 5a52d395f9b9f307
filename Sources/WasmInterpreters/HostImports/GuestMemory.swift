import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// A guest's linear memory as host functions see it, whichever engine runs the guest.
protocol LinearMemory {
    /// The memory's size in bytes now.
    var byteCount: Int { get }
    /// Copies `count` bytes at `offset` out; the range is checked by the caller.
    func copyBytes(at offset: Int, count: Int) -> [UInt8]
    /// Copies `bytes` in at `offset`; the range is checked by the caller.
    func store(_ bytes: [UInt8], at offset: Int)
}

extension WasmKit.Memory: LinearMemory {
    func copyBytes(at offset: Int, count: Int) -> [UInt8] {
        withUnsafeBufferPointer(offset: UInt(offset), count: count) { Array($0) }
    }

    func store(_ bytes: [UInt8], at offset: Int) {
        withUnsafeMutableBufferPointer(offset: UInt(offset), count: bytes.count) { $0.copyBytes(from: bytes) }
    }
}

/// The guest instance a host function was called from: its memory, and its allocator.
protocol HostCaller {
    /// The instance's exported memory.
    ///
    /// - Throws: ``GuestFault`` `.invalidPointer` when it exports none.
    func memory() throws -> any LinearMemory
    /// Asks the instance's `cf_alloc` for `count` bytes (see ``GuestMemory/allocate``).
    func allocate(_ count: Int, context: HostContext) throws -> UInt32
    /// Calls the instance's exported function `name` with `arguments` (the caller has entered
    /// the callback, ``GuestMemory/callback(context:_:)``).
    ///
    /// - Throws: ``GuestFault`` `.missingFunction` or `.badArguments`; the function's trap.
    func call(_ name: String, _ arguments: [WasmValue], context: HostContext) throws -> [WasmValue]
}

extension HostCaller {
    /// Checks that `arguments` fit `parameters` of the export `name`.
    static func checkArguments(_ arguments: [WasmValue], _ parameters: [WasmValueType], _ name: String) throws {
        guard arguments.map(\.type) == parameters else {
            throw GuestFault(
                kind: .badArguments,
                message: "arguments (\(arguments.map(\.type.rawValue).joined(separator: ", "))) do not fit \(name)'s parameters "
                    + "(\(parameters.map(\.rawValue).joined(separator: ", ")))")
        }
    }
}

/// Bounds-checked access to a guest's linear memory. Engines check ranges with preconditions
/// (WasmKit) or not at all (raw pointers), which would kill the host or corrupt it; every
/// guest-supplied pointer and length is checked here first.
enum GuestMemory {
    static func noMemory() -> GuestFault {
        GuestFault(kind: .invalidPointer, message: "the guest passed a pointer but exports no memory")
    }

    static func checkRange(_ memory: any LinearMemory, pointer: UInt32, count: Int) throws {
        guard count >= 0, UInt64(pointer) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw GuestFault(
                kind: .invalidPointer,
                message: "the range 0x\(String(pointer, radix: 16))+\(count) lies outside the guest's \(memory.byteCount)-byte memory")
        }
    }

    static func read(_ memory: any LinearMemory, pointer: UInt32, count: UInt32, limit: Int) throws -> [UInt8] {
        guard Int(count) <= limit else {
            throw GuestFault(kind: .valueTooLarge, message: "a value of \(count) bytes exceeds the limit of \(limit) bytes")
        }
        try checkRange(memory, pointer: pointer, count: Int(count))
        if count == 0 { return [] }
        return memory.copyBytes(at: Int(pointer), count: Int(count))
    }

    static func write(_ memory: any LinearMemory, pointer: UInt32, bytes: [UInt8]) throws {
        try checkRange(memory, pointer: pointer, count: bytes.count)
        if bytes.isEmpty { return }
        memory.store(bytes, at: Int(pointer))
    }

    static func write(_ memory: any LinearMemory, pointer: UInt32, littleEndian value: UInt64, size: Int) throws {
        try write(memory, pointer: pointer, bytes: (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) })
    }

    /// Runs a guest callback (`cf_alloc`, `cf_free`) for the host. Re-entry is bounded: a
    /// callback may call host functions, but not one that calls the guest again.
    static func callback<T>(context: HostContext, _ body: () throws -> T) throws -> T {
        guard context.callbackDepth == 0 else {
            throw GuestFault(
                kind: .reentrantCall,
                message: "the guest called back into the host (cf.queue_get) from inside cf_alloc or cf_free; "
                    + "the host does not re-enter a guest callback")
        }
        context.callbackDepth += 1
        defer { context.callbackDepth -= 1 }
        return try body()
    }

    /// Checks a size before asking the guest's allocator for it.
    static func checkAllocation(_ count: Int) throws {
        guard count <= Int(Int32.max) else {
            throw GuestFault(kind: .valueTooLarge, message: "\(count) bytes do not fit in guest memory")
        }
    }

    /// Checks what the guest's allocator returned for `count` bytes.
    static func checkAllocated(_ pointer: UInt32, count: Int, memory: any LinearMemory) throws -> UInt32 {
        guard pointer != 0 || count == 0 else {
            throw GuestFault(kind: .memoryLimit, message: "cf_alloc could not allocate \(count) bytes")
        }
        try checkRange(memory, pointer: pointer, count: count)
        return pointer
    }

    static func noAllocator(_ count: Int) -> GuestFault {
        GuestFault(kind: .badArguments, message: "the module exports no cf_alloc, needed to pass \(count) bytes in")
    }

    /// Asks a WasmKit instance's `cf_alloc` for `count` bytes and checks what it returns. `invoke`
    /// runs the allocator (on the caller's stack when the caller has one free).
    static func allocate(
        _ count: Int, in instance: Instance, memory: Memory, context: HostContext,
        invoke: (Function, [WasmKit.Value]) throws -> [WasmKit.Value] = { try $0.invoke($1) }
    ) throws -> UInt32 {
        guard let allocate = instance.exports[function: "cf_alloc"] else { throw noAllocator(count) }
        try checkAllocation(count)
        let results = try callback(context: context) { try invoke(allocate, [.i32(UInt32(count))]) }
        guard results.count == 1, case .i32(let pointer) = results[0] else {
            throw GuestFault(kind: .badArguments, message: "cf_alloc must return one i32")
        }
        return try checkAllocated(pointer, count: count, memory: memory)
    }
}
