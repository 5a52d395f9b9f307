@_spi(Fuzzing) import WasmKit
import Futures
import Synchronization

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
    /// What the interpreter's guests hold of the host's memory.
    let account: ResourceAccount
    /// A value the guest returned through `cf.return_*` during the current call.
    var returned: ShareableValue?
    /// How many guest callbacks (`cf_alloc`, `cf_free`) the host is inside now: while one runs,
    /// host functions that would call the guest again fail instead of recursing.
    var callbackDepth = 0
    /// When the current call must end (its time limit): blocking host functions wait no longer.
    var callDeadline: Deadline?

    init(interpreterID: Int, account: ResourceAccount) {
        self.interpreterID = interpreterID
        self.account = account
    }

    /// The deadline for a host function that blocks: the guest's own, capped by the call's.
    /// `capped` tells whether the call's deadline is the earlier one.
    func blockingDeadline(_ guest: Deadline?) -> (deadline: Deadline?, capped: Bool) {
        guard let callDeadline else { return (guest, false) }
        guard let guest, guest < callDeadline else { return (callDeadline, true) }
        return (guest, false)
    }

    /// The error for a host function that waited until the call's deadline.
    func waitTimedOut(_ what: String) -> GuestFault {
        GuestFault(kind: .timedOut, message: "the call reached its time limit while \(what)")
    }
}

/// A failure the host detects in a guest's request (a bad pointer, a malformed value...). Thrown
/// from a host function, it aborts the guest call and becomes an ``GuestError``.
struct GuestFault: Error, CustomStringConvertible {
    let kind: GuestError.Kind
    let message: String
    var description: String { message }
}

/// What one interpreter's guests make the host hold, counted against
/// ``InterpreterLimits/memoryBytes`` before anything is allocated: linear memories, tables, and
/// the values they put in queues that are still queued.
///
/// Memories and tables are counted by the store's ``MemoryLimiter`` on the thread that runs the
/// interpreter; queued bytes are released by whichever thread takes the value, hence an atomic.
final class ResourceAccount: @unchecked Sendable {
    /// The most bytes; `nil` for no limit.
    let limit: Int?
    let action: MemoryLimitAction
    /// Committed linear memory per module instance (a module has at most one memory, and only its
    /// own code can grow it, so a growth belongs to ``activeModule``).
    private var memories: [Int: Int] = [:]
    private(set) var memoryBytes = 0
    private(set) var tableBytes = 0
    /// What the engine allocates per instance besides memories and tables (a compiled
    /// instance's globals and bookkeeping).
    private(set) var instanceBytes = 0
    /// The module whose code runs now.
    var activeModule = 0
    /// Bytes of values this interpreter's guests put in queues, still queued.
    let queuedBytes = Atomic<Int>(0)
    /// The WasmKit store whose fuel pays while ``meter`` is `.store`. Not retained (the store
    /// owns the limiter, which owns this account) and not weak (a weak reference would slow every
    /// retain of the store on the call path): the engine points it at each store it makes, and
    /// only runs guest code of that store while it is alive.
    unowned(unsafe) var store: Store?
    /// The fuel counter that host functions and growth charge: the engine running guest code
    /// sets it before it runs any.
    var meter: FuelMeter = .none

    /// Where the fuel of the guest code running now is counted.
    enum FuelMeter {
        /// No guest code runs.
        case none
        /// WasmKit's counter, in ``ResourceAccount/store``.
        case store
        /// A compiled instance's counter (signed: negative means exhausted).
        case counter(UnsafeMutablePointer<Int64>)
    }

    /// Bytes a WasmKit table element takes (and what fuel prices every table element at, on both
    /// engines, so that a budget means the same on both).
    static let tableElementBytes = 8
    /// The most elements any one table may have, whatever the limit.
    static let maxTableElements = 1 << 24

    init(limit: Int?, action: MemoryLimitAction) {
        self.limit = limit
        self.action = action
    }

    /// Everything counted now.
    var committed: Int { memoryBytes + tableBytes + instanceBytes + queuedBytes.load(ordering: .relaxed) }

    /// Forgets the memories and tables of a store that was replaced.
    func reset() {
        memories = [:]
        memoryBytes = 0
        tableBytes = 0
        instanceBytes = 0
    }

    /// Counts an instance of `bytes` the engine allocates for a guest (under the limit like
    /// memory, never refused softly: an instance cannot half exist).
    func admitInstance(bytes: Int) throws(GuestFault) {
        guard let limit, committed &+ bytes > limit else {
            instanceBytes += bytes
            return
        }
        throw GuestFault(
            kind: .memoryLimit,
            message: "an instance of \(bytes) bytes would bring the interpreter's memory to \(committed + bytes) bytes, "
                + "past its limit of \(limit) bytes")
    }

    /// Whether `extra` more bytes fit; throws under ``MemoryLimitAction/failCall``.
    func admit(_ extra: Int, what: String) throws(GuestFault) -> Bool {
        guard let limit else { return true }
        let total = committed &+ extra
        guard extra < 0 || (total >= 0 && total <= limit) else {
            if action == .refuseGrowth { return false }
            throw GuestFault(
                kind: .memoryLimit,
                message: "\(what) would bring the interpreter's memory to \(total) bytes, past its limit of \(limit) bytes")
        }
        return true
    }

    /// Charges one unit of fuel per 64 bytes that a growth commits: software-checked memory and
    /// tables are copied whole when they grow, so the work is the new size, not the increment.
    func chargeFuel(forBytes bytes: Int) throws(GuestFault) {
        try chargeFuel(UInt64(max(0, bytes) / 64), for: "growing to \(bytes) bytes")
    }

    /// Charges `units` of fuel to the guest code running now, for `what`.
    ///
    /// - Throws: ``GuestFault`` `.outOfFuel` when the budget cannot pay (the call then fails).
    func chargeFuel(_ units: UInt64, for what: @autoclosure () -> String) throws(GuestFault) {
        guard units > 0 else { return }
        switch meter {
        case .none:
            return
        case .counter(let counter):
            guard counter.pointee >= Int64(clamping: units) else {
                counter.pointee = -1
                throw GuestFault(kind: .outOfFuel, message: "out of fuel: \(what()) costs \(units) units")
            }
            counter.pointee -= Int64(clamping: units)
        case .store:
            guard let store, let fuel = store.fuel else { return }
            guard fuel.remaining >= units else {
                store.fuel = Fuel(remaining: 0)
                throw GuestFault(kind: .outOfFuel, message: "out of fuel: \(what()) costs \(units) units")
            }
            store.fuel = Fuel(remaining: fuel.remaining - units)
        }
    }

    func growMemory(to desired: Int) throws(GuestFault) -> Bool {
        let old = memories[activeModule] ?? 0
        guard try admit(desired - old, what: "growing linear memory to \(desired) bytes") else { return false }
        try chargeFuel(forBytes: desired)
        memories[activeModule] = desired
        memoryBytes += desired - old
        return true
    }

    /// Admits a table of `elements` elements of `elementBytes` bytes each (what the engine
    /// really allocates), and charges its fuel (priced at ``tableElementBytes`` per element on
    /// every engine).
    func growTable(to elements: Int, elementBytes: Int = tableElementBytes) throws(GuestFault) -> Bool {
        guard elements <= Self.maxTableElements else {
            if action == .refuseGrowth { return false }
            throw GuestFault(
                kind: .memoryLimit, message: "a table of \(elements) elements is over the limit of \(Self.maxTableElements)")
        }
        let bytes = elements * elementBytes
        guard try admit(bytes, what: "a table of \(elements) elements") else { return false }
        try chargeFuel(forBytes: elements * Self.tableElementBytes)
        tableBytes += bytes
        return true
    }

    /// Reserves `bytes` for a value put in a queue; `nil` when they do not fit.
    func reserveQueued(_ bytes: Int) -> QueueCharge? {
        if let limit, committed + bytes > limit { return nil }
        queuedBytes.wrappingAdd(bytes, ordering: .relaxed)
        return QueueCharge(account: self, bytes: bytes)
    }
}

/// Bytes a queued value counts against the interpreter that put it, released when it leaves the
/// queue.
struct QueueCharge: Sendable {
    let account: ResourceAccount
    let bytes: Int

    func release() { account.queuedBytes.wrappingSubtract(bytes, ordering: .relaxed) }
}

/// The store's resource limiter: asks the interpreter's ``ResourceAccount``. Refusing growth by
/// throwing aborts the call with a clear error instead of handing the guest a `-1` it may not
/// check.
final class MemoryLimiter: ResourceLimiter {
    let account: ResourceAccount

    init(account: ResourceAccount) { self.account = account }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        try account.growMemory(to: desired)
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        try account.growTable(to: desired)
    }
}

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
}

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
        Entry(name: "interpreter_id", type: FunctionType(parameters: [], results: [.i64]), body: { context, _, _ in
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
            throw GuestFault(kind: .valueTooLarge, message: "a queued value of \(bytes.count) bytes exceeds the limit of \(context.maxValueBytes) bytes")
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
