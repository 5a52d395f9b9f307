import Futures
import WASI
@_spi(Fuzzing) import WasmKit

/// WasmKit's side of one interpreter (``GuestEngine/wasmKit``): an engine, a store, and an
/// instance of each module loaded so far.
final class WasmKitInstances: EngineInstances {
    /// One instantiated module and the exports calls need.
    struct Loaded {
        let module: GuestModule
        let instance: Instance
        let memory: Memory?
        var functions: [String: Function]
    }

    /// The runtime that owns this engine (it outlives it).
    private unowned let runtime: GuestRuntime
    private let context: HostContext
    private let limits: InterpreterLimits
    private let engine: Engine
    private var store: Store
    private var imports: Imports
    private var stack: ExecutionStack
    /// Loaded modules by id.
    private var loaded: [Int: Loaded] = [:]
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

    init(runtime: GuestRuntime) {
        self.runtime = runtime
        context = runtime.context
        limits = runtime.limits
        engine = Engine(
            configuration: EngineConfiguration(
                stackSize: limits.stackBytes, memoryBoundsChecking: .software, fuelMetering: true))
        store = Store(engine: engine)
        imports = Imports()
        stack = ExecutionStack(engine: engine)
        prepareStore()
    }

    /// Gives the current store its limiter and host functions.
    private func prepareStore() {
        context.account.store = store
        store.resourceLimiter = MemoryLimiter(account: context.account)
        imports = HostImports.imports(store: store, context: context)
    }

    func isInstantiated(_ module: GuestModule) -> Bool { loaded[module.id] != nil }

    func setFuel(_ budget: UInt64?) { store.fuel = budget.map { Fuel(remaining: $0) } }

    var remainingFuel: UInt64? { store.fuel?.remaining }

    var interruptTarget: any Interruptible { store }

    func discardInstances() {
        lastCall = nil
        loaded = [:]
        store = Store(engine: engine)
        prepareStore()
    }

    /// Instantiates `module` (running its start function); the caller has set the call's limits.
    func instantiate(_ module: GuestModule) throws {
        guard module.bodiesValidated else {
            throw ModuleError(.unsupportedFeature, "\(module.name) was loaded for the compiled engine only; load it again to run it on WasmKit")
        }
        context.account.activeModule = module.id
        context.account.meter = .store
        let instance: Instance
        do {
            if module.wasiKind != nil || !module.linker.isEmpty {
                var linked = imports
                if module.wasiKind != nil {
                    try runtime.wasiHost(for: module).link(into: &linked, store: store, needed: module.wasiImports, context: context)
                }
                try link(module, into: &linked)
                instance = try module.parsed.instantiate(store: store, imports: linked)
            } else {
                instance = try module.parsed.instantiate(store: store, imports: imports)
            }
        } catch {
            runtime.isPoisoned = true
            throw error
        }
        loaded[module.id] = Loaded(module: module, instance: instance, memory: instance.exports[memory: "memory"], functions: [:])
    }

    /// Defines what `module` imports from its linker: host functions, and the exports of the
    /// instances registered under the names it links (made first when they have none).
    private func link(_ module: GuestModule, into imports: inout Imports) throws {
        for entry in module.imports {
            if let function = module.linker.function(module: entry.module, name: entry.name) {
                imports.define(module: entry.module, name: entry.name, function.wasmKit(store: store, context: context))
            }
        }
        for name in module.linker.instanceNames where module.imports.contains(where: { $0.module == name }) {
            let provider = try runtime.registeredProvider(name, for: module)
            if loaded[provider.id] == nil { try runtime.instantiateProvider(provider) }
            guard let instance = loaded[provider.id]?.instance else {
                throw GuestFault(kind: .trap, message: "\(provider.name), registered as \(name), has no instance")
            }
            imports.define(module: name, instance.exports)
        }
    }

    /// Calls `name`: arguments copied in, the function run, buffers freed, the result lifted.
    func invoke(_ module: GuestModule, _ name: String, _ arguments: [ShareableValue]) throws -> ShareableValue {
        let site = try resolve(module, name)
        context.account.activeModule = site.moduleID
        context.account.meter = .store
        var allocations: [UInt32] = []
        let lowered: [WasmKit.Value]
        do {
            lowered = try lower(arguments, to: site.type.parameters, entry: site.entry, allocations: &allocations)
        } catch {
            // Guest memory may hold buffers allocated for the earlier arguments, or the allocator
            // itself may have trapped: start the next call from fresh instances.
            if !allocations.isEmpty || !(error is GuestFault) { runtime.isPoisoned = true }
            throw error
        }
        context.returned = nil
        let results: [WasmKit.Value]
        do {
            results = try site.function.invoke(lowered, on: &stack)
        } catch {
            runtime.isPoisoned = true
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
                runtime.isPoisoned = true
            }
        }
        if let returned { return returned }
        return try lift(results, function: name)
    }

    func invoke(_ module: GuestModule, _ name: String, values: [WasmValue]) throws -> [WasmValue] {
        let site = try resolve(module, name)
        context.account.activeModule = site.moduleID
        context.account.meter = .store
        let parameters = try site.type.parameters.map(WasmValueType.init(crossing:))
        try WasmKitCaller.checkArguments(values, parameters, name)
        context.returned = nil
        do {
            let results = try site.function.invoke(values.map(WasmKit.Value.init), on: &stack)
            return try results.map(WasmValue.init)
        } catch {
            runtime.isPoisoned = true
            throw error
        }
    }

    func global(_ module: GuestModule, _ name: String) throws -> WasmValue {
        guard let global = loaded[module.id]?.instance.exports[global: name] else {
            throw ModuleError(.noSuchExport, "\(module.name) exports no global named '\(name)'")
        }
        return try WasmValue(global.value)
    }

    func memory(_ module: GuestModule, _ name: String) throws -> any LinearMemory {
        guard let memory = loaded[module.id]?.instance.exports[memory: name] else {
            throw ModuleError(.noSuchExport, "\(module.name) exports no memory named '\(name)'")
        }
        return memory
    }

    /// The call site of `name` in `module`, which is instantiated.
    private func resolve(_ module: GuestModule, _ name: String) throws -> CallSite {
        if let last = lastCall, last.moduleID == module.id, last.name == name { return last }
        guard var entry = loaded[module.id] else {
            throw GuestFault(kind: .trap, message: "\(module.name) has no instance in this interpreter")
        }
        let function: Function
        if let cached = entry.functions[name] {
            function = cached
        } else {
            guard let found = entry.instance.exports[function: name] else {
                throw GuestFault(kind: .missingFunction, message: "\(module.name) exports no function named '\(name)'")
            }
            function = found
            entry.functions[name] = found
            loaded[module.id] = entry
        }
        let site = CallSite(moduleID: module.id, name: name, entry: entry, function: function, type: function.type)
        lastCall = site
        return site
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
            default: throw GuestABI.notCrossable(function, interpreterID: runtime.interpreterID)
            }
        }
        return try GuestABI.lift(results.map(\.rawBits), types: types, function: function, interpreterID: runtime.interpreterID)
    }

    /// Maps a WasmKit trap to ``GuestError``.
    func classify(_ error: any Error, function: String) -> any Error {
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
            } else if reason.hasPrefix("indirect call") || reason.hasPrefix("out of bounds table access") {
                kind = .indirectCall
            } else if error is WasmKitError {
                kind = .invalidModule
            } else {
                kind = .trap
            }
        }
        return GuestError(
            kind: kind, function: function, message: reason, interpreterID: runtime.interpreterID, backtrace: Self.backtrace(of: error))
    }

    /// The guest frames of a WasmKit trap, innermost first. WasmKit keeps them only in the
    /// trap's description, one line per frame after the first: `    0: (0x…) name`, where an
    /// unnamed function is `wasm function[<index>]` (here `func[<index>]`).
    static func backtrace(of error: any Error) -> [String] {
        guard error is WasmKit.Trap else { return [] }
        return String(describing: error).split(separator: "\n").dropFirst().compactMap { line -> String? in
            guard let close = line.firstIndex(of: ")"), line.drop(while: { $0 == " " }).first?.isNumber == true else { return nil }
            let name = line[close...].dropFirst().drop(while: { $0 == " " })
            guard !name.isEmpty, name != "unknown" else { return nil }
            if name.hasPrefix("wasm function[") { return "func[" + name.dropFirst("wasm function[".count) }
            return String(name)
        }
    }
}
