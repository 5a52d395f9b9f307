@_spi(Fuzzing) import WasmKit
import Futures

/// The WebAssembly side of one interpreter: an engine, a store, and an instance of each module
/// loaded so far. It is used only by the thread that holds the interpreter's run lock, which is
/// what makes the unchecked `Sendable` conformance true.
final class InterpreterRuntime: @unchecked Sendable {
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

        init(moduleID: Int, name: String, entry: Loaded, function: Function, type: FunctionType) {
            self.moduleID = moduleID
            self.name = name
            self.entry = entry
            self.function = function
            self.type = type
        }
    }

    init(interpreterID: Int, limits: InterpreterLimits) {
        self.interpreterID = interpreterID
        self.limits = limits
        engine = Engine(
            configuration: EngineConfiguration(
                stackSize: limits.stackBytes, memoryBoundsChecking: .software, fuelMetering: true))
        context = HostContext(interpreterID: interpreterID)
        context.maxValueBytes = limits.maxValueBytes
        store = Store(engine: engine)
        store.resourceLimiter = MemoryLimiter(maxMemoryBytes: limits.memoryBytes, action: limits.onMemoryLimit)
        imports = HostImports.imports(store: store, context: context)
        stack = ExecutionStack(engine: engine)
    }

    /// The modules loaded into this interpreter, in load order.
    var modules: [GuestModule] { namespace }

    /// Loads `module` (instantiating it, which runs its start function) unless it is loaded.
    ///
    /// - Throws: ``ExecutionFailed`` when instantiation traps (in the start function, or for
    ///   memory over the limit).
    @discardableResult
    func load(_ module: GuestModule, fuel: UInt64?) throws -> Loaded {
        renewIfPoisoned()
        if let existing = loaded[module.id] { return existing }
        store.fuel = (fuel ?? limits.fuel).map { Fuel(remaining: $0) }
        let instance: Instance
        do {
            instance = try module.parsed.instantiate(store: store, imports: imports)
        } catch {
            isPoisoned = true
            throw classify(error, function: "\(module.name) (instantiation)")
        }
        let entry = Loaded(module: module, instance: instance, memory: instance.exports[memory: "memory"], functions: [:])
        loaded[module.id] = entry
        if !namespace.contains(where: { $0.id == module.id }) { namespace.append(module) }
        return entry
    }

    /// Calls the exported function `name`, searching the modules loaded latest first.
    func call(_ name: String, arguments: [Futures.Value], fuel: UInt64?) throws -> Futures.Value {
        renewIfPoisoned()
        for module in namespace.reversed() where module.export(named: name) != nil {
            return try call(module: module, name, arguments: arguments, fuel: fuel)
        }
        throw ExecutionFailed(
            kind: .missingFunction, function: name,
            message: "no loaded module exports a function named '\(name)'", interpreterID: interpreterID)
    }

    /// Calls `name` exported by `module`, loading the module first if needed.
    func call(module: GuestModule, _ name: String, arguments: [Futures.Value], fuel: UInt64?) throws -> Futures.Value {
        renewIfPoisoned()
        if initializerPending, let initializer {
            initializerPending = false
            do {
                _ = try call(
                    module: unsafeDowncast(initializer.module, to: GuestModule.self), initializer.function,
                    arguments: initializer.arguments, fuel: initializer.fuel)
            } catch {
                isPoisoned = true
                throw ExecutionFailed(
                    kind: (error as? ExecutionFailed)?.kind ?? .trap, function: name,
                    message: "the initializer failed when the interpreter was reset after a trap: \(error)",
                    interpreterID: interpreterID)
            }
        }
        let site: CallSite
        if let last = lastCall, last.moduleID == module.id, last.name == name {
            site = last
        } else {
            let function: Function
            var loadedEntry = try load(module, fuel: fuel)
            if let cached = loadedEntry.functions[name] {
                function = cached
            } else {
                guard let found = loadedEntry.instance.exports[function: name] else {
                    throw ExecutionFailed(
                        kind: .missingFunction, function: name,
                        message: "\(module.name) exports no function named '\(name)'", interpreterID: interpreterID)
                }
                function = found
                loadedEntry.functions[name] = found
                loaded[module.id] = loadedEntry
            }
            site = CallSite(moduleID: module.id, name: name, entry: loadedEntry, function: function, type: function.type)
            lastCall = site
        }
        var allocations: [UInt32] = []
        let lowered: [WasmKit.Value]
        do {
            lowered = try lower(arguments, to: site.type.parameters, entry: site.entry, allocations: &allocations)
        } catch {
            // Guest memory may hold buffers allocated for the earlier arguments, or the allocator
            // itself may have trapped: start the next call from fresh instances.
            if !allocations.isEmpty || !(error is GuestFault) { isPoisoned = true }
            throw classify(error, function: name)
        }
        store.fuel = (fuel ?? limits.fuel).map { Fuel(remaining: $0) }
        context.returned = nil
        let ticket = limits.timeLimit.map { CallWatchdog.shared.arm(store, deadline: Deadline.after($0)!) }
        let results: [WasmKit.Value]
        do {
            results = try site.function.invoke(lowered, on: &stack)
        } catch {
            isPoisoned = true
            if let ticket, CallWatchdog.shared.disarm(ticket) {
                throw ExecutionFailed(
                    kind: .timedOut, function: name,
                    message: "the call ran longer than its time limit of \(limits.timeLimit!)", interpreterID: interpreterID)
            }
            throw classify(error, function: name)
        }
        if let ticket { _ = CallWatchdog.shared.disarm(ticket) }
        let returned = context.returned
        context.returned = nil
        if !allocations.isEmpty, let free = site.entry.instance.exports[function: "cf_free"] {
            for pointer in allocations { _ = try? free.invoke([.i32(pointer)], on: &stack) }
        }
        if let returned { return returned }
        return try lift(results, function: name)
    }

    /// Turns arguments into WebAssembly values following the guest ABI: scalars as parameters,
    /// strings, bytes and arrays copied into guest memory and passed as (pointer, length).
    private func lower(
        _ arguments: [Futures.Value], to parameters: [ValueType], entry: Loaded, allocations: inout [UInt32]
    ) throws -> [WasmKit.Value] {
        var lowered: [WasmKit.Value] = []
        lowered.reserveCapacity(parameters.count)
        func next() throws -> ValueType {
            guard lowered.count < parameters.count else { throw signatureError(arguments, parameters) }
            return parameters[lowered.count]
        }
        for argument in arguments {
            switch argument {
            case .none:
                switch try next() {
                case .i32: lowered.append(.i32(0))
                case .i64: lowered.append(.i64(0))
                case .f32: lowered.append(.f32(0))
                case .f64: lowered.append(.f64(0))
                default: throw signatureError(arguments, parameters)
                }
            case .bool(let flag):
                guard try next() == .i32 else { throw signatureError(arguments, parameters) }
                lowered.append(.i32(flag ? 1 : 0))
            case .int(let number):
                switch try next() {
                case .i64: lowered.append(.i64(UInt64(bitPattern: number)))
                case .i32:
                    guard let narrow = Int32(exactly: number) else {
                        throw GuestFault(kind: .badArguments, message: "\(number) does not fit the function's i32 parameter")
                    }
                    lowered.append(.i32(UInt32(bitPattern: narrow)))
                case .f64: lowered.append(.f64(Double(number).bitPattern))
                default: throw signatureError(arguments, parameters)
                }
            case .double(let number):
                switch try next() {
                case .f64: lowered.append(.f64(number.bitPattern))
                case .f32: lowered.append(.f32(Float(number).bitPattern))
                default: throw signatureError(arguments, parameters)
                }
            case .queue(let id):
                guard try next() == .i32, let narrow = UInt32(exactly: id) else { throw signatureError(arguments, parameters) }
                lowered.append(.i32(narrow))
            case .string, .bytes, .array:
                let bytes: [UInt8]
                switch argument {
                case .string(let text): bytes = Array(text.utf8)
                case .bytes(let raw): bytes = raw
                default: bytes = argument.encoded()
                }
                guard bytes.count <= limits.maxValueBytes else {
                    throw GuestFault(
                        kind: .valueTooLarge,
                        message: "an argument of \(bytes.count) bytes exceeds the limit of \(limits.maxValueBytes) bytes")
                }
                guard try next() == .i32, lowered.count + 1 < parameters.count, parameters[lowered.count + 1] == .i32 else {
                    throw signatureError(arguments, parameters)
                }
                guard let memory = entry.memory else {
                    throw GuestFault(kind: .badArguments, message: "the module exports no memory to pass \(argument.kindName) arguments in")
                }
                let pointer = try GuestMemory.allocate(bytes.count, in: entry.instance, memory: memory) { function, arguments in
                    try function.invoke(arguments, on: &stack)
                }
                allocations.append(pointer)
                try GuestMemory.write(memory, pointer: pointer, bytes: bytes)
                lowered.append(.i32(pointer))
                lowered.append(.i32(UInt32(bytes.count)))
            }
        }
        guard lowered.count == parameters.count else { throw signatureError(arguments, parameters) }
        return lowered
    }

    private func signatureError(_ arguments: [Futures.Value], _ parameters: [ValueType]) -> GuestFault {
        GuestFault(
            kind: .badArguments,
            message: "arguments (\(arguments.map(\.kindName).joined(separator: ", "))) do not fit the parameters "
                + "(\(parameters.map(typeName).joined(separator: ", ")))")
    }

    /// Turns WebAssembly results into a value: none, one scalar, or an array of scalars.
    private func lift(_ results: [WasmKit.Value], function: String) throws -> Futures.Value {
        // The common cases, without building an array.
        if results.isEmpty { return .none }
        if results.count == 1 {
            switch results[0] {
            case .i64(let bits): return .int(Int64(bitPattern: bits))
            case .i32(let bits): return .int(Int64(Int32(bitPattern: bits)))
            default: break
            }
        }
        let values = try results.map { result -> Futures.Value in
            switch result {
            case .i32(let bits): return .int(Int64(Int32(bitPattern: bits)))
            case .i64(let bits): return .int(Int64(bitPattern: bits))
            case .f32(let bits): return .double(Double(Float(bitPattern: bits)))
            case .f64(let bits): return .double(Double(bitPattern: bits))
            default:
                throw ExecutionFailed(
                    kind: .badArguments, function: function,
                    message: "the function returns a reference or vector, which cannot cross", interpreterID: interpreterID)
            }
        }
        switch values.count {
        case 0: return .none
        case 1: return values[0]
        default: return .array(values)
        }
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
        store.resourceLimiter = MemoryLimiter(maxMemoryBytes: limits.memoryBytes, action: limits.onMemoryLimit)
        imports = HostImports.imports(store: store, context: context)
    }

    /// Maps an engine or host error to ``ExecutionFailed``.
    private func classify(_ error: any Error, function: String) -> any Error {
        if let failed = error as? ExecutionFailed { return failed }
        if let fault = error as? GuestFault {
            return ExecutionFailed(kind: fault.kind, function: function, message: fault.message, interpreterID: interpreterID)
        }
        let line = firstLine(of: error)
        let reason = line.hasPrefix("Trap: ") ? String(line.dropFirst(6)) : line
        let kind: ExecutionFailed.Kind
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
        return ExecutionFailed(kind: kind, function: function, message: reason, interpreterID: interpreterID)
    }
}
