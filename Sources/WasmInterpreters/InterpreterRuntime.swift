@_spi(Fuzzing) import WasmKit
import Futures

/// The WebAssembly side of one interpreter: an engine, a store, and an instance of each module
/// loaded so far. It is used only by the thread that holds the interpreter's run lock, which is
/// what makes the unchecked `Sendable` conformance true.
final class InterpreterRuntime: GuestRuntime, @unchecked Sendable {
    /// One instantiated module and the exports calls need.
    struct Loaded {
        let module: GuestModule
        let instance: Instance
        let memory: Memory?
        var functions: [String: Function]
    }

    let interpreterID: Int
    let limits: InterpreterLimits
    private let engine: Engine
    private let context: HostContext
    private var store: Store
    private var imports: Imports
    private var stack: ExecutionStack
    /// Loaded modules by id, and their load order (latest last) for name lookups.
    private var loaded: [Int: Loaded] = [:]
    private var namespace: [GuestModule] = []
    /// Whether the store must be replaced before the next call (after a trap).
    private var isPoisoned = false
    /// A call that prepares fresh instances (a pool's initializer): run again after a reset.
    var initializer: GuestInvocation?
    private var initializerPending = false
    /// The function called last, so that a run of calls to one function skips the lookups.
    private var lastCall: CallSite?

    /// A resolved export, kept as one reference so that repeated calls copy nothing.
    private final class CallSite {
        let moduleID: Int
        let name: String
        let entry: Loaded
        let function: Function
        let type: FunctionType
        /// The module's `cf_free`, looked up once.
        let free: Function?

        init(moduleID: Int, name: String, entry: Loaded, function: Function, type: FunctionType) {
            self.moduleID = moduleID
            self.name = name
            self.entry = entry
            self.function = function
            self.type = type
            free = entry.instance.exports[function: "cf_free"]
        }
    }

    init(interpreterID: Int, limits: InterpreterLimits) {
        self.interpreterID = interpreterID
        self.limits = limits
        engine = Engine(
            configuration: EngineConfiguration(
                stackSize: limits.stackBytes, memoryBoundsChecking: .software, fuelMetering: true))
        context = HostContext(
            interpreterID: interpreterID, account: ResourceAccount(limit: limits.memoryBytes, action: limits.onMemoryLimit))
        context.maxValueBytes = limits.maxValueBytes
        store = Store(engine: engine)
        imports = Imports()
        stack = ExecutionStack(engine: engine)
        prepareStore()
    }

    /// Gives the current store its limiter and host functions.
    private func prepareStore() {
        context.account.reset()
        context.account.store = store
        store.resourceLimiter = MemoryLimiter(account: context.account)
        imports = HostImports.imports(store: store, context: context)
    }

    /// The modules loaded into this interpreter, in load order.
    var modules: [GuestModule] { namespace }

    func exec(_ module: GuestModule) throws { _ = try load(module) }

    /// Loads `module` (instantiating it, which runs its start function under the interpreter's
    /// fuel and time limits) unless it is loaded.
    ///
    /// - Throws: ``GuestError`` when instantiation traps (in the start function, or for
    ///   memory over the limit) or runs past a limit.
    @discardableResult
    func load(_ module: GuestModule) throws -> Loaded {
        renewIfPoisoned()
        if let existing = loaded[module.id] { return existing }
        var entry: Loaded?
        _ = try limited(fuel: nil, timeLimit: nil, function: "\(module.name) (instantiation)") {
            entry = try instantiate(module)
            return .none
        }
        return entry!
    }

    /// Instantiates `module`; the caller has set the call's limits.
    private func instantiate(_ module: GuestModule) throws -> Loaded {
        if let existing = loaded[module.id] { return existing }
        context.account.activeModule = module.id
        let instance: Instance
        do {
            instance = try module.parsed.instantiate(store: store, imports: imports)
        } catch {
            isPoisoned = true
            throw error
        }
        let entry = Loaded(module: module, instance: instance, memory: instance.exports[memory: "memory"], functions: [:])
        loaded[module.id] = entry
        if !namespace.contains(where: { $0.id == module.id }) { namespace.append(module) }
        return entry
    }

    /// Calls the exported function `name`, searching the modules loaded latest first.
    func call(_ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration? = nil) throws -> ShareableValue {
        renewIfPoisoned()
        for module in namespace.reversed() where module.export(named: name) != nil {
            return try call(module: module, name, arguments: arguments, fuel: fuel, timeLimit: timeLimit)
        }
        throw GuestError(
            kind: .missingFunction, function: name,
            message: "no loaded module exports a function named '\(name)'", interpreterID: interpreterID)
    }

    /// Runs `invocation`, loading its module first if needed.
    func call(_ invocation: GuestInvocation) throws -> ShareableValue {
        try call(
            module: invocation.module, invocation.function, arguments: invocation.arguments, fuel: invocation.fuel,
            timeLimit: invocation.timeLimit)
    }

    /// Calls `name` exported by `module`, loading the module first if needed.
    ///
    /// Everything the call runs in the guest counts against its fuel and time limit: the start
    /// function when the module is first instantiated, `cf_alloc` for the arguments, the
    /// function, and `cf_free` after it.
    func call(
        module: GuestModule, _ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration? = nil
    ) throws -> ShareableValue {
        renewIfPoisoned()
        if initializerPending, let initializer {
            initializerPending = false
            do {
                _ = try call(initializer)
            } catch {
                isPoisoned = true
                throw GuestError(
                    kind: (error as? GuestError)?.kind ?? .trap, function: name,
                    message: "the initializer failed when the interpreter was reset after a trap: \(error)",
                    interpreterID: interpreterID)
            }
        }
        return try limited(fuel: fuel, timeLimit: timeLimit, function: name) {
            let site = try resolve(module, name)
            context.account.activeModule = site.moduleID
            var allocations: [UInt32] = []
            let lowered: [WasmKit.Value]
            do {
                lowered = try lower(arguments, to: site.type.parameters, entry: site.entry, allocations: &allocations)
            } catch {
                // Guest memory may hold buffers allocated for the earlier arguments, or the allocator
                // itself may have trapped: start the next call from fresh instances.
                if !allocations.isEmpty || !(error is GuestFault) { isPoisoned = true }
                throw error
            }
            context.returned = nil
            let results: [WasmKit.Value]
            do {
                results = try site.function.invoke(lowered, on: &stack)
            } catch {
                isPoisoned = true
                throw error
            }
            let returned = context.returned
            context.returned = nil
            if !allocations.isEmpty, let free = site.free {
                do {
                    for pointer in allocations {
                        _ = try GuestMemory.callback(context: context) { try free.invoke([.i32(pointer)], on: &stack) }
                    }
                } catch {
                    // The result stands; the guest's heap may not, so the next call starts afresh.
                    isPoisoned = true
                }
            }
            if let returned { return returned }
            return try lift(results, function: name)
        }
    }

    /// The call site of `name` in `module`, instantiating the module when it is not loaded.
    private func resolve(_ module: GuestModule, _ name: String) throws -> CallSite {
        if let last = lastCall, last.moduleID == module.id, last.name == name { return last }
        var entry = try instantiate(module)
        let function: Function
        if let cached = entry.functions[name] {
            function = cached
        } else {
            guard let found = entry.instance.exports[function: name] else {
                throw GuestError(
                    kind: .missingFunction, function: name,
                    message: "\(module.name) exports no function named '\(name)'", interpreterID: interpreterID)
            }
            function = found
            entry.functions[name] = found
            loaded[module.id] = entry
        }
        let site = CallSite(moduleID: module.id, name: name, entry: entry, function: function, type: function.type)
        lastCall = site
        return site
    }

    /// Runs `body` under a call's fuel budget and time limit (the interpreter's unless given):
    /// sets the store's fuel, arms the watchdog and caps host waits at the deadline. Errors come
    /// out as ``GuestError``, `.timedOut` when the watchdog stopped the call.
    ///
    /// Not generic on purpose: it is on every call's path, and a generic version was left
    /// unspecialized, looking up type metadata on every call.
    private func limited(
        fuel: UInt64?, timeLimit: Duration?, function: String, _ body: () throws -> ShareableValue
    ) throws -> ShareableValue {
        store.fuel = (fuel ?? limits.fuel).map { Fuel(remaining: $0) }
        let limit = timeLimit ?? limits.timeLimit
        let deadline = limit.flatMap { Deadline.after($0) }
        let ticket = try deadline.map { deadline throws(ExecutorError) in try CallWatchdog.shared.arm(store, deadline: deadline) }
        let outer = context.callDeadline
        context.callDeadline = deadline
        defer { context.callDeadline = outer }
        do {
            let value = try body()
            if let ticket, CallWatchdog.shared.disarm(ticket) {
                // Stopped in `cf_free`, after the function returned: the result stands.
                isPoisoned = true
            }
            return value
        } catch {
            if let ticket, CallWatchdog.shared.disarm(ticket) {
                isPoisoned = true
                throw GuestError(
                    kind: .timedOut, function: function,
                    message: "the call ran longer than its time limit of \(limit!)", interpreterID: interpreterID)
            }
            throw classify(error, function: function)
        }
    }

    /// Turns arguments into WebAssembly values following the guest ABI (``GuestABI``).
    private func lower(
        _ arguments: [ShareableValue], to parameters: [ValueType], entry: Loaded, allocations: inout [UInt32]
    ) throws -> [WasmKit.Value] {
        let bits = try GuestABI.lower(arguments, to: parameters, maxValueBytes: limits.maxValueBytes, allocations: &allocations) {
            bytes, kind in
            guard let memory = entry.memory else {
                throw GuestFault(kind: .badArguments, message: "the module exports no memory to pass \(kind) arguments in")
            }
            let pointer = try GuestMemory.allocate(bytes.count, in: entry.instance, memory: memory, context: context) {
                function, arguments in try function.invoke(arguments, on: &stack)
            }
            try GuestMemory.write(memory, pointer: pointer, bytes: bytes)
            return pointer
        }
        var lowered: [WasmKit.Value] = []
        lowered.reserveCapacity(bits.count)
        for (raw, type) in zip(bits, parameters) {
            switch type {
            case .i32: lowered.append(.i32(UInt32(truncatingIfNeeded: raw)))
            case .i64: lowered.append(.i64(raw))
            case .f32: lowered.append(.f32(UInt32(truncatingIfNeeded: raw)))
            default: lowered.append(.f64(raw))
            }
        }
        return lowered
    }

    /// Turns WebAssembly results into a value (``GuestABI``).
    private func lift(_ results: [WasmKit.Value], function: String) throws -> ShareableValue {
        // The common cases, without building an array.
        if results.isEmpty { return .none }
        if results.count == 1 {
            switch results[0] {
            case .i64(let bits): return .int(Int64(bitPattern: bits))
            case .i32(let bits): return .int(Int64(Int32(bitPattern: bits)))
            default: break
            }
        }
        var types: [ValueType] = []
        for result in results {
            switch result {
            case .i32: types.append(.i32)
            case .i64: types.append(.i64)
            case .f32: types.append(.f32)
            case .f64: types.append(.f64)
            default: throw GuestABI.notCrossable(function, interpreterID: interpreterID)
            }
        }
        return try GuestABI.lift(results.map(\.rawBits), types: types, function: function, interpreterID: interpreterID)
    }

    /// Replaces the store after a trap, so that no call sees a half-updated guest state. The
    /// modules stay loaded: each is instantiated again, fresh, when next used.
    private func renewIfPoisoned() {
        guard isPoisoned else { return }
        isPoisoned = false
        initializerPending = initializer != nil
        lastCall = nil
        loaded = [:]
        store = Store(engine: engine)
        prepareStore()
    }

    /// Maps an engine or host error to ``GuestError``.
    private func classify(_ error: any Error, function: String) -> any Error {
        if let failed = error as? GuestError { return failed }
        if error is ExecutorError { return error }
        if let fault = error as? GuestFault {
            return GuestError(kind: fault.kind, function: function, message: fault.message, interpreterID: interpreterID)
        }
        let line = firstLine(of: error)
        let reason = line.hasPrefix("Trap: ") ? String(line.dropFirst(6)) : line
        let kind: GuestError.Kind
        switch reason {
        case "unreachable": kind = .unreachable
        case "out of bounds memory access": kind = .memoryOutOfBounds
        case "integer divide by zero": kind = .divideByZero
        case "integer overflow": kind = .integerOverflow
        case "invalid conversion to integer": kind = .invalidConversion
        case "call stack exhausted": kind = .stackExhausted
        case "out of fuel": kind = .outOfFuel
        default:
            if reason.hasPrefix("initial memory size exceeds") {
                kind = .memoryLimit
            } else if reason.hasPrefix("indirect call") {
                kind = .indirectCall
            } else if error is WasmKitError {
                kind = .invalidModule
            } else {
                kind = .trap
            }
        }
        return GuestError(kind: kind, function: function, message: reason, interpreterID: interpreterID)
    }
}
