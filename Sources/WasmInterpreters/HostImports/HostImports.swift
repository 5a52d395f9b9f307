import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// The host functions of the guest ABI (module `cf`), the same for every engine: each is a body
/// over raw 64-bit arguments and the calling instance, which an engine adapts to its own calls.
enum HostImports {
    static let moduleName = "cf"

    /// Status codes host functions return to guests.
    enum Status: UInt64 {
        case ok = 0
        case timedOut = 1
        case noSuchQueue = 2
        case badValue = 3
        case notAnInt = 4
    }

    /// A host function: arguments as raw bits (i32 in the low half), one result or 0.
    typealias Body = @Sendable (HostContext, any HostCaller, [UInt64]) throws -> UInt64

    struct Entry: Sendable {
        let name: String
        let type: FunctionType
        let body: Body
    }

    /// Every host function, in the order of the compiled engine's runtime (`cf-rt.c`).
    static let table: [Entry] = [
        Entry(name: "return_value", type: FunctionType(parameters: [.i32, .i32]), body: returnValue),
        Entry(name: "return_string", type: FunctionType(parameters: [.i32, .i32]), body: returnString),
        Entry(name: "return_bytes", type: FunctionType(parameters: [.i32, .i32]), body: returnBytes),
        Entry(name: "log", type: FunctionType(parameters: [.i32, .i32]), body: log),
        Entry(name: "write", type: FunctionType(parameters: [.i32, .i32, .i32], results: [.i32]), body: write),
        Entry(name: "queue_put_int", type: FunctionType(parameters: [.i32, .i64, .i64], results: [.i32]), body: queuePutInt),
        Entry(name: "queue_get_int", type: FunctionType(parameters: [.i32, .i64, .i32], results: [.i32]), body: queueGetInt),
        Entry(name: "queue_put", type: FunctionType(parameters: [.i32, .i32, .i32, .i64], results: [.i32]), body: queuePut),
        Entry(name: "queue_get", type: FunctionType(parameters: [.i32, .i64, .i32], results: [.i32]), body: queueGet),
        Entry(name: "queue_count", type: FunctionType(parameters: [.i32], results: [.i64]), body: queueCount),
        Entry(
            name: "interpreter_id", type: FunctionType(parameters: [], results: [.i64]),
            body: { context, _, _ in
                UInt64(context.interpreterID)
            }),
    ]

    static let signatures: [String: FunctionType] = Dictionary(uniqueKeysWithValues: table.map { ($0.name, $0.type) })

    /// The `cf` functions for a WasmKit `store`, all bound to `context`.
    static func imports(store: Store, context: HostContext) -> Imports {
        var imports = Imports()
        for entry in table {
            let body = entry.body
            let result = entry.type.results.first
            let function = Function(store: store, type: entry.type) { caller, arguments in
                let bits = try body(context, WasmKitCaller(instance: caller.instance), arguments.map(\.rawBits))
                switch result {
                case .i32?: return [.i32(UInt32(truncatingIfNeeded: bits))]
                case .i64?: return [.i64(bits)]
                default: return []
                }
            }
            imports.define(module: moduleName, name: entry.name, function)
        }
        return imports
    }

    private static func readArgument(_ caller: any HostCaller, _ arguments: [UInt64], _ context: HostContext) throws -> [UInt8] {
        try read(caller, pointer: arguments[0], count: arguments[1], context)
    }

    /// Reads `count` bytes the guest passes at `pointer`, paying fuel for them (one unit per 64
    /// bytes, as WasmKit prices `memory.copy`).
    private static func read(_ caller: any HostCaller, pointer: UInt64, count: UInt64, _ context: HostContext) throws -> [UInt8] {
        let bytes = try GuestMemory.read(caller.memory(), pointer: i32(pointer), count: i32(count), limit: context.maxValueBytes)
        try context.account.chargeFuel(UInt64(bytes.count) / 64, for: "passing \(bytes.count) bytes to the host")
        return bytes
    }

    private static func i32(_ bits: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: bits) }

    private static func returnValue(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        let bytes = try readArgument(caller, arguments, context)
        do {
            context.returned = try ShareableValue(decoding: bytes, maximumSize: context.maxValueBytes)
        } catch {
            throw GuestFault(kind: .malformedValue, message: "cf.return_value got bytes that are not an encoded value: \(error)")
        }
        return 0
    }

    private static func returnString(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        let bytes = try readArgument(caller, arguments, context)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw GuestFault(kind: .malformedValue, message: "cf.return_string got bytes that are not UTF-8")
        }
        context.returned = .string(text)
        return 0
    }

    private static func returnBytes(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        context.returned = .bytes(try readArgument(caller, arguments, context))
        return 0
    }

    private static func log(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        let text = String(decoding: try readArgument(caller, arguments, context), as: UTF8.self)
        writeStandardError("[interpreter \(context.interpreterID)] \(text)\n")
        return 0
    }

    private static func write(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        let fd = Int32(bitPattern: i32(arguments[0]))
        guard fd == 1 || fd == 2 else { return UInt64(UInt32.max) }
        let bytes = try read(caller, pointer: arguments[1], count: arguments[2], context)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return UInt64(UInt32(bitPattern: Int32(truncatingIfNeeded: written)))
    }

    private static func queuePutInt(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        guard let queue = QueueRegistry.shared.lookup(Int(i32(arguments[0]))) else { return Status.noSuchQueue.rawValue }
        return try put(.int(Int64(bitPattern: arguments[1])), into: queue, charge: nil, timeout: arguments[2], context)
    }

    /// Puts `value`, waiting until the guest's timeout (milliseconds) or the call's deadline.
    private static func put(
        _ value: ShareableValue, into queue: QueueStorage, charge: QueueCharge?, timeout: UInt64, _ context: HostContext
    ) throws -> UInt64 {
        let wait = context.blockingDeadline(deadline(timeout))
        do {
            try queue.put(value, deadline: wait.deadline, unbound: nil, charge: charge)
            return Status.ok.rawValue
        } catch {
            if wait.capped { throw context.waitTimedOut("waiting to put into queue \(queue.id)") }
            return Status.timedOut.rawValue
        }
    }

    private static func queueGetInt(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        guard let queue = QueueRegistry.shared.lookup(Int(i32(arguments[0]))) else { return Status.noSuchQueue.rawValue }
        let memory = try caller.memory()
        let out = i32(arguments[2])
        try GuestMemory.checkRange(memory, pointer: out, count: 8)
        let wait = context.blockingDeadline(deadline(arguments[1]))
        let value: ShareableValue?
        do {
            value = try queue.take(deadline: wait.deadline) { if case .int = $0 { true } else { false } }?.value
        } catch is QueueEmptyError {
            if wait.capped { throw context.waitTimedOut("waiting on queue \(queue.id)") }
            return Status.timedOut.rawValue
        } catch {
            return Status.badValue.rawValue
        }
        guard case .int(let number)? = value else { return Status.notAnInt.rawValue }
        try GuestMemory.write(memory, pointer: out, littleEndian: UInt64(bitPattern: number), size: 8)
        return Status.ok.rawValue
    }

    private static func queuePut(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        guard let queue = QueueRegistry.shared.lookup(Int(i32(arguments[0]))) else { return Status.noSuchQueue.rawValue }
        let bytes = try read(caller, pointer: arguments[1], count: arguments[2], context)
        guard let value = try? ShareableValue(decoding: bytes, maximumSize: context.maxValueBytes) else {
            return Status.badValue.rawValue
        }
        // A queued value is held by the host: it counts against the putter's memory limit
        // until it leaves the queue.
        guard let charge = context.account.reserveQueued(value.memorySize) else {
            throw GuestFault(
                kind: .memoryLimit,
                message: "putting \(value.memorySize) bytes into queue \(queue.id) would bring the interpreter past its memory "
                    + "limit of \(context.account.limit ?? 0) bytes (values it put that are still queued count)")
        }
        return try put(value, into: queue, charge: charge, timeout: arguments[3], context)
    }

    private static func queueGet(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        guard let queue = QueueRegistry.shared.lookup(Int(i32(arguments[0]))) else { return Status.noSuchQueue.rawValue }
        let memory = try caller.memory()
        let out = i32(arguments[2])
        try GuestMemory.checkRange(memory, pointer: out, count: 8)
        guard context.callbackDepth == 0 else {
            // Checked before taking an item: cf_alloc would be called inside cf_alloc.
            throw GuestFault(
                kind: .reentrantCall,
                message: "cf.queue_get was called from inside cf_alloc or cf_free; it calls cf_alloc itself, "
                    + "and the host does not re-enter a guest callback")
        }
        let wait = context.blockingDeadline(deadline(arguments[1]))
        let item: QueueStorage.Item
        do {
            item = try queue.take(deadline: wait.deadline)
        } catch is QueueEmptyError {
            if wait.capped { throw context.waitTimedOut("waiting on queue \(queue.id)") }
            return Status.timedOut.rawValue
        } catch {
            return Status.badValue.rawValue
        }
        let bytes = item.value.encoded()
        guard bytes.count <= context.maxValueBytes else {
            queue.restore(item)
            throw GuestFault(
                kind: .valueTooLarge, message: "a queued value of \(bytes.count) bytes exceeds the limit of \(context.maxValueBytes) bytes")
        }
        do {
            try context.account.chargeFuel(UInt64(bytes.count) / 64, for: "taking \(bytes.count) bytes from a queue")
        } catch {
            queue.restore(item)
            throw error
        }
        let pointer: UInt32
        do {
            pointer = try caller.allocate(bytes.count, context: context)
        } catch {
            queue.restore(item)
            throw error
        }
        // The allocator may have grown the memory: look it up again.
        let grown = try caller.memory()
        try GuestMemory.write(grown, pointer: pointer, bytes: bytes)
        try GuestMemory.write(grown, pointer: out, littleEndian: UInt64(pointer) | UInt64(UInt32(bytes.count)) << 32, size: 8)
        return Status.ok.rawValue
    }

    private static func queueCount(_ context: HostContext, _ caller: any HostCaller, _ arguments: [UInt64]) throws -> UInt64 {
        guard let queue = QueueRegistry.shared.lookup(Int(i32(arguments[0]))) else { return UInt64(bitPattern: -1) }
        return UInt64(queue.count)
    }

    /// A guest timeout in milliseconds: negative waits forever, 0 does not wait.
    private static func deadline(_ bits: UInt64) -> Deadline? {
        let milliseconds = Int64(bitPattern: bits)
        return milliseconds < 0 ? nil : Deadline.after(.milliseconds(milliseconds))
    }
}

extension WasmKit.Value {
    /// The value's bits, i32 and f32 in the low half.
    var rawBits: UInt64 {
        switch self {
        case .i32(let bits): UInt64(bits)
        case .i64(let bits): bits
        case .f32(let bits): UInt64(bits)
        case .f64(let bits): bits
        default: 0
        }
    }
}

/// Writes to the process's standard error, unbuffered.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
