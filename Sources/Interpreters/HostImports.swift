@_spi(Fuzzing) import WasmKit
import Futures

#if canImport(Glibc)
import Glibc
#endif

/// The per-interpreter state that host functions use during a call.
///
/// Host functions capture this object, never the store or an instance: the store owns the host
/// functions, so capturing it would make a reference cycle that keeps every store alive.
final class HostContext: @unchecked Sendable {
    let interpreterID: Int
    var maxValueBytes: Int = InterpreterLimits.default.maxValueBytes
    /// A value the guest returned through `cf.return_*` during the current call.
    var returned: Futures.Value?

    init(interpreterID: Int) { self.interpreterID = interpreterID }
}

/// A failure the host detects in a guest's request (a bad pointer, a malformed value...). Thrown
/// from a host function, it aborts the guest call and becomes an ``ExecutionFailed``.
struct GuestFault: Error, CustomStringConvertible {
    let kind: ExecutionFailed.Kind
    let message: String
    var description: String { message }
}

/// A memory and table cap for a store. Refusing growth by throwing aborts the call with a clear
/// error instead of handing the guest a `-1` it may not check.
final class MemoryLimiter: ResourceLimiter {
    let maxMemoryBytes: Int?
    let failCall: Bool
    static let maxTableElements = 1 << 20

    init(maxMemoryBytes: Int?, action: MemoryLimitAction = .failCall) {
        self.maxMemoryBytes = maxMemoryBytes
        failCall = action == .failCall
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        if let maxMemoryBytes, desired > maxMemoryBytes {
            guard failCall else { return false }
            throw GuestFault(
                kind: .memoryLimit,
                message: "memory would grow to \(desired) bytes, past the interpreter's limit of \(maxMemoryBytes) bytes")
        }
        return true
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        desired <= Self.maxTableElements
    }
}

/// Bounds-checked access to a guest's linear memory. WasmKit checks ranges with preconditions,
/// which would kill the host; every guest-supplied pointer and length is checked here first.
enum GuestMemory {
    static func memory(of caller: borrowing Caller) throws -> Memory {
        guard let memory = caller.instance?.exports[memory: "memory"] else {
            throw GuestFault(kind: .invalidPointer, message: "the guest passed a pointer but exports no memory")
        }
        return memory
    }

    static func checkRange(_ memory: Memory, pointer: UInt32, count: Int) throws {
        guard count >= 0, UInt64(pointer) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw GuestFault(
                kind: .invalidPointer,
                message: "the range 0x\(String(pointer, radix: 16))+\(count) lies outside the guest's \(memory.byteCount)-byte memory")
        }
    }

    static func read(_ memory: Memory, pointer: UInt32, count: UInt32, limit: Int) throws -> [UInt8] {
        guard Int(count) <= limit else {
            throw GuestFault(kind: .valueTooLarge, message: "a value of \(count) bytes exceeds the limit of \(limit) bytes")
        }
        try checkRange(memory, pointer: pointer, count: Int(count))
        if count == 0 { return [] }
        return memory.withUnsafeBufferPointer(offset: UInt(pointer), count: Int(count)) { Array($0) }
    }

    static func write(_ memory: Memory, pointer: UInt32, bytes: [UInt8]) throws {
        try checkRange(memory, pointer: pointer, count: bytes.count)
        if bytes.isEmpty { return }
        memory.withUnsafeMutableBufferPointer(offset: UInt(pointer), count: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    static func write(_ memory: Memory, pointer: UInt32, littleEndian value: UInt64, size: Int) throws {
        try write(memory, pointer: pointer, bytes: (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) })
    }

    /// Asks the guest's `cf_alloc` for `count` bytes and checks what it returns. `invoke` runs
    /// the allocator (on the caller's stack when the caller has one free).
    static func allocate(
        _ count: Int, in instance: Instance, memory: Memory,
        invoke: (Function, [WasmKit.Value]) throws -> [WasmKit.Value] = { try $0.invoke($1) }
    ) throws -> UInt32 {
        guard let allocate = instance.exports[function: "cf_alloc"] else {
            throw GuestFault(kind: .badArguments, message: "the module exports no cf_alloc, needed to pass \(count) bytes in")
        }
        guard count <= Int(Int32.max) else {
            throw GuestFault(kind: .valueTooLarge, message: "\(count) bytes do not fit in guest memory")
        }
        let results = try invoke(allocate, [.i32(UInt32(count))])
        guard results.count == 1, case .i32(let pointer) = results[0] else {
            throw GuestFault(kind: .badArguments, message: "cf_alloc must return one i32")
        }
        guard pointer != 0 || count == 0 else {
            throw GuestFault(kind: .memoryLimit, message: "cf_alloc could not allocate \(count) bytes")
        }
        try checkRange(memory, pointer: pointer, count: count)
        return pointer
    }
}

/// The host functions of the guest ABI (module `cf`), defined per store.
enum HostImports {
    static let moduleName = "cf"

    /// Status codes host functions return to guests.
    enum Status: UInt32 {
        case ok = 0
        case timedOut = 1
        case noSuchQueue = 2
        case badValue = 3
        case notAnInt = 4
    }

    static let signatures: [String: FunctionType] = [
        "return_value": FunctionType(parameters: [.i32, .i32]),
        "return_string": FunctionType(parameters: [.i32, .i32]),
        "return_bytes": FunctionType(parameters: [.i32, .i32]),
        "log": FunctionType(parameters: [.i32, .i32]),
        "write": FunctionType(parameters: [.i32, .i32, .i32], results: [.i32]),
        "queue_put_int": FunctionType(parameters: [.i32, .i64, .i64], results: [.i32]),
        "queue_get_int": FunctionType(parameters: [.i32, .i64, .i32], results: [.i32]),
        "queue_put": FunctionType(parameters: [.i32, .i32, .i32, .i64], results: [.i32]),
        "queue_get": FunctionType(parameters: [.i32, .i64, .i32], results: [.i32]),
        "queue_count": FunctionType(parameters: [.i32], results: [.i64]),
        "interpreter_id": FunctionType(parameters: [], results: [.i64]),
    ]

    /// The `cf` functions for `store`, all bound to `context`.
    static func imports(store: Store, context: HostContext) -> Imports {
        var imports = Imports()
        func define(_ name: String, _ body: @escaping (borrowing Caller, [WasmKit.Value]) throws -> [WasmKit.Value]) {
            imports.define(module: moduleName, name: name, Function(store: store, type: signatures[name]!, body: body))
        }
        define("return_value") { caller, arguments in
            let bytes = try readArgument(caller, arguments, context)
            do {
                context.returned = try Futures.Value(decoding: bytes)
            } catch {
                throw GuestFault(kind: .malformedValue, message: "cf.return_value got bytes that are not an encoded value: \(error)")
            }
            return []
        }
        define("return_string") { caller, arguments in
            let bytes = try readArgument(caller, arguments, context)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw GuestFault(kind: .malformedValue, message: "cf.return_string got bytes that are not UTF-8")
            }
            context.returned = .string(text)
            return []
        }
        define("return_bytes") { caller, arguments in
            context.returned = .bytes(try readArgument(caller, arguments, context))
            return []
        }
        define("log") { caller, arguments in
            let text = String(decoding: try readArgument(caller, arguments, context), as: UTF8.self)
            writeStandardError("[interpreter \(context.interpreterID)] \(text)\n")
            return []
        }
        define("write") { caller, arguments in
            let fd = Int32(bitPattern: arguments[0].i32)
            guard fd == 1 || fd == 2 else { return [.i32(UInt32(bitPattern: -1))] }
            let memory = try GuestMemory.memory(of: caller)
            let bytes = try GuestMemory.read(memory, pointer: arguments[1].i32, count: arguments[2].i32, limit: context.maxValueBytes)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            return [.i32(UInt32(bitPattern: Int32(truncatingIfNeeded: written)))]
        }
        define("queue_put_int") { _, arguments in
            guard let queue = QueueRegistry.shared.lookup(Int(arguments[0].i32)) else { return status(.noSuchQueue) }
            do {
                try queue.put(.int(Int64(bitPattern: arguments[1].i64)), deadline: deadline(arguments[2]), unbound: nil)
                return status(.ok)
            } catch {
                return status(.timedOut)
            }
        }
        define("queue_get_int") { caller, arguments in
            guard let queue = QueueRegistry.shared.lookup(Int(arguments[0].i32)) else { return status(.noSuchQueue) }
            let memory = try GuestMemory.memory(of: caller)
            try GuestMemory.checkRange(memory, pointer: arguments[2].i32, count: 8)
            let value: Futures.Value?
            do {
                value = try queue.take(deadline: deadline(arguments[1])) { if case .int = $0 { true } else { false } }?.value
            } catch is QueueEmpty {
                return status(.timedOut)
            } catch {
                return status(.badValue)
            }
            guard case .int(let number)? = value else { return status(.notAnInt) }
            try GuestMemory.write(memory, pointer: arguments[2].i32, littleEndian: UInt64(bitPattern: number), size: 8)
            return status(.ok)
        }
        define("queue_put") { caller, arguments in
            guard let queue = QueueRegistry.shared.lookup(Int(arguments[0].i32)) else { return status(.noSuchQueue) }
            let memory = try GuestMemory.memory(of: caller)
            let bytes = try GuestMemory.read(memory, pointer: arguments[1].i32, count: arguments[2].i32, limit: context.maxValueBytes)
            guard let value = try? Futures.Value(decoding: bytes) else { return status(.badValue) }
            do {
                try queue.put(value, deadline: deadline(arguments[3]), unbound: nil)
                return status(.ok)
            } catch {
                return status(.timedOut)
            }
        }
        define("queue_get") { caller, arguments in
            guard let queue = QueueRegistry.shared.lookup(Int(arguments[0].i32)) else { return status(.noSuchQueue) }
            guard let instance = caller.instance else { return status(.badValue) }
            let memory = try GuestMemory.memory(of: caller)
            try GuestMemory.checkRange(memory, pointer: arguments[2].i32, count: 8)
            let item: QueueStorage.Item
            do {
                item = try queue.take(deadline: deadline(arguments[1]))
            } catch is QueueEmpty {
                return status(.timedOut)
            } catch {
                return status(.badValue)
            }
            let bytes = item.value.encoded()
            guard bytes.count <= context.maxValueBytes else {
                queue.restore(item)
                throw GuestFault(kind: .valueTooLarge, message: "a queued value of \(bytes.count) bytes exceeds the limit of \(context.maxValueBytes) bytes")
            }
            let pointer: UInt32
            do {
                pointer = try GuestMemory.allocate(bytes.count, in: instance, memory: memory)
            } catch {
                queue.restore(item)
                throw error
            }
            try GuestMemory.write(memory, pointer: pointer, bytes: bytes)
            try GuestMemory.write(
                memory, pointer: arguments[2].i32,
                littleEndian: UInt64(pointer) | UInt64(UInt32(bytes.count)) << 32, size: 8)
            return status(.ok)
        }
        define("queue_count") { _, arguments in
            guard let queue = QueueRegistry.shared.lookup(Int(arguments[0].i32)) else { return [.i64(UInt64(bitPattern: -1))] }
            return [.i64(UInt64(queue.count))]
        }
        define("interpreter_id") { _, _ in [.i64(UInt64(context.interpreterID))] }
        return imports
    }

    private static func readArgument(_ caller: borrowing Caller, _ arguments: [WasmKit.Value], _ context: HostContext) throws -> [UInt8] {
        let memory = try GuestMemory.memory(of: caller)
        return try GuestMemory.read(memory, pointer: arguments[0].i32, count: arguments[1].i32, limit: context.maxValueBytes)
    }

    private static func status(_ status: Status) -> [WasmKit.Value] { [.i32(status.rawValue)] }

    /// A guest timeout in milliseconds: negative waits forever, 0 does not wait.
    private static func deadline(_ value: WasmKit.Value) -> Deadline? {
        let milliseconds = Int64(bitPattern: value.i64)
        return milliseconds < 0 ? nil : Deadline.after(.milliseconds(milliseconds))
    }
}

/// Writes to the process's standard error, unbuffered.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
