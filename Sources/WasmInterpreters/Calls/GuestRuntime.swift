import Futures
import WASI

/// What an ``Interpreter`` holds behind its run lock: the loaded modules, the call protocol, and
/// the engines that run them. Used only by the thread holding the run lock.
///
/// This class owns the call protocol: the namespace of loaded modules, lookups by name, the
/// initializer run again after a reset, WASI streams per call, and
/// ``limited(_:fuel:timeLimit:function:_:)``, which gives each call its fuel and time limit and
/// turns failures into ``GuestError``. A call's limits cover all guest code it runs (a first
/// instantiation with its start function and a reactor's `_initialize`, `cf_alloc` for the
/// arguments, the function, `cf_free`); a trap fails the call and makes the runtime replace every
/// instance before the next one.
///
/// The engines (``EngineInstances``) hold the instances: ``WasmKitInstances`` and
/// ``CompiledInstances``. An interpreter made with ``GuestEngine/auto`` may use both, one per
/// module: each module's instance runs where ``CompiledEngine`` placed it when it was made.
final class GuestRuntime: @unchecked Sendable {
    let interpreterID: Int
    let limits: InterpreterLimits
    /// The engine the interpreter was made with.
    let engine: GuestEngine
    /// What host functions see during a call.
    let context: HostContext
    /// Loaded modules, in load order (latest last, for name lookups).
    private(set) var modules: [GuestModule] = []
    /// Whether the instances must be replaced before the next call (after a trap).
    var isPoisoned = false
    /// A call that prepares fresh instances (a pool's initializer): run again after a reset.
    var initializer: GuestInvocation?
    private var initializerPending = false

    private var wasmKitEngine: WasmKitInstances?
    private var compiledEngine: CompiledInstances?
    /// Under ``GuestEngine/auto``: the engine of each module's instance, chosen when it was made.
    private var placements: [Int: (module: GuestModule, engine: any EngineInstances)] = [:]
    /// Whether, under ``GuestEngine/auto``, a module running on WasmKit moves to its compiled
    /// form between two calls once that is ready (a pool worker's interpreter: its instances are
    /// replaced, as after a trap, and the initializer runs again).
    var movesToCompiledWhenReady = false
    /// ``CompiledEngine/readyGeneration`` when this runtime last looked.
    private var seenGeneration = 0

    /// The WASI hosts of the WASI modules, by module id; closed with the instances.
    private var wasiHosts: [Int: WASIHost] = [:]
    /// The host used last, so that a run of calls to one module skips the lookup.
    private var lastWASIHost: (moduleID: Int, host: WASIHost)?
    /// The resident programs (``GuestModule/residentCommand()``) running for this interpreter,
    /// by module id. They outlive resets: each has its own runtime.
    private var residents: [Int: ResidentProgram] = [:]

    init(interpreterID: Int, limits: InterpreterLimits, engine: GuestEngine) {
        self.interpreterID = interpreterID
        self.limits = limits
        self.engine = engine
        context = HostContext(
            interpreterID: interpreterID, account: ResourceAccount(limit: limits.memoryBytes, action: limits.onMemoryLimit))
        context.maxValueBytes = limits.maxValueBytes
    }

    deinit {
        for program in residents.values { program.close() }
        for host in wasiHosts.values { host.close() }
    }

    // MARK: Engines

    private var wasmKit: WasmKitInstances {
        if let wasmKitEngine { return wasmKitEngine }
        let made = WasmKitInstances(runtime: self)
        wasmKitEngine = made
        return made
    }

    private var compiled: CompiledInstances {
        if let compiledEngine { return compiledEngine }
        let made = CompiledInstances(runtime: self)
        compiledEngine = made
        return made
    }

    /// The engine that runs `module` in this interpreter.
    private func engine(for module: GuestModule) -> any EngineInstances {
        switch engine {
        case .wasmKit: return wasmKit
        case .compiled: return compiled
        case .auto:
            if let placed = placements[module.id] { return placed.engine }
            // Modules linked to each other's instances run on one engine: WasmKit, which links
            // every kind of import.
            let linked = !module.linker.instanceNames.isEmpty || registered.values.contains { $0.id == module.id }
            let placed: any EngineInstances = !linked && CompiledEngine.autoPlacement(of: module) ? compiled : wasmKit
            placements[module.id] = (module, placed)
            return placed
        }
    }

    /// The engine `module`'s instance runs on now, if it has one.
    func placement(of module: GuestModule) -> GuestEngine? {
        switch engine {
        case .wasmKit, .compiled: return isInstantiated(module) ? engine : nil
        case .auto:
            guard let placed = placements[module.id], placed.engine.isInstantiated(module) else { return nil }
            return placed.engine === compiledEngine ? .compiled : .wasmKit
        }
    }

    private func isInstantiated(_ module: GuestModule) -> Bool {
        engine(for: module).isInstantiated(module)
    }

    /// Under ``GuestEngine/auto``, for a pool worker: replaces the instances once a module placed
    /// on WasmKit has its compiled form ready (checked only when one became ready somewhere).
    private func moveToCompiledWhenReady() {
        let generation = CompiledEngine.readyGeneration
        guard generation != seenGeneration else { return }
        seenGeneration = generation
        let waiting = placements.values.contains { placed in
            placed.engine === wasmKitEngine && CompiledLibrary.isLoaded(placed.module)
        }
        if waiting { isPoisoned = true }
    }

    /// The fuel the last call left, while no call runs (for tests and reports).
    var remainingFuel: UInt64? { lastEngine?.remainingFuel }
    private var lastEngine: (any EngineInstances)?

    /// Gives the guest code that runs next, even code suspended in a host call now, the budget
    /// `budget` (a resident program between two exchanges).
    func refuel(_ budget: UInt64?) { lastEngine?.refuel(budget) }

    /// What the watchdog stops to end a call of `module`'s code.
    func interruptTarget(for module: GuestModule) -> any Interruptible { engine(for: module).interruptTarget }

    // MARK: Linked instances

    /// The modules whose instances other modules import from, by the name they are registered
    /// under (``Interpreter/register(_:as:)``).
    private(set) var registered: [String: GuestModule] = [:]
    /// How deep ``instantiateProvider(_:)`` is (a chain of registered modules importing from
    /// each other).
    private var providerDepth = 0

    /// Loads `module` and makes its exports importable as `name` by modules instantiated later.
    func register(_ module: GuestModule, as name: String) throws {
        registered[name] = module
        try exec(module)
    }

    /// The module registered as `name`, which `importer` imports from.
    ///
    /// - Throws: ``ModuleError`` `.missingImports` when none is.
    func registeredProvider(_ name: String, for importer: GuestModule) throws -> GuestModule {
        guard let provider = registered[name] else {
            let names = importer.imports.filter { $0.module == name }.map { "\($0.module).\($0.name)" }
            throw ModuleError(
                .missingImports,
                "\(importer.name) imports \(names.joined(separator: ", ")) from an instance, but interpreter \(interpreterID) has none "
                    + "registered as '\(name)' (Interpreter.register(_:as:))", missingImports: names)
        }
        return provider
    }

    /// Instantiates a registered module that a module being instantiated imports from.
    func instantiateProvider(_ provider: GuestModule) throws {
        guard providerDepth < 16 else {
            throw ModuleError(.invalid, "registered modules import from each other more than 16 deep (\(provider.name))")
        }
        providerDepth += 1
        defer { providerDepth -= 1 }
        try instantiate(provider, on: engine(for: provider))
    }

    // MARK: WASI

    /// The standard streams and `argv`/`environ` of `module`'s calls in this interpreter.
    ///
    /// - Throws: ``ModuleError`` when the module's options cannot be applied.
    func wasiState(for module: GuestModule) throws -> WASICallState {
        try wasiHost(for: module).state
    }

    /// The WASI host of `module` in this interpreter, made at its first use.
    func wasiHost(for module: GuestModule) throws -> WASIHost {
        if let last = lastWASIHost, last.moduleID == module.id { return last.host }
        let host: WASIHost
        if let existing = wasiHosts[module.id] {
            host = existing
        } else {
            host = try WASIHost(options: module.wasi, moduleName: module.name, maxOutputBytes: limits.maxValueBytes)
            wasiHosts[module.id] = host
        }
        lastWASIHost = (module.id, host)
        return host
    }

    // MARK: The call protocol

    /// Loads `module` unless it is loaded (instantiating it, which runs its start function under
    /// the interpreter's fuel and time limits).
    func exec(_ module: GuestModule) throws {
        renewIfPoisoned()
        let engine = engine(for: module)
        if engine.isInstantiated(module) { return }
        try engine.prepare(module)
        _ = try limited(engine, fuel: nil, timeLimit: nil, function: "\(module.name) (instantiation)") {
            try instantiate(module, on: engine)
            return .none
        }
    }

    /// Makes `module`'s instance on `engine`, runs a reactor's `_initialize`, and records the
    /// module as loaded. The caller has set the call's limits.
    private func instantiate(_ module: GuestModule, on engine: any EngineInstances) throws {
        do {
            try engine.instantiate(module)
            // A reactor prepares itself once per instance (its C constructors, its heap).
            if module.wasiKind == .reactor, module.export(named: "_initialize") != nil {
                _ = try engine.invoke(module, "_initialize", [])
            }
        } catch {
            isPoisoned = true
            throw error
        }
        if !modules.contains(where: { $0.id == module.id }) { modules.append(module) }
    }

    /// Calls the exported function `name`, searching the modules loaded latest first.
    func call(_ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration?) throws -> ShareableValue {
        renewIfPoisoned()
        for module in modules.reversed() where module.export(named: name) != nil {
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
            timeLimit: invocation.timeLimit, wasi: invocation.wasi)
    }

    /// Calls `name` exported by `module`, loading the module first if needed.
    func call(
        module: GuestModule, _ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration?,
        wasi: WASICallOptions? = nil
    ) throws -> ShareableValue {
        if let wasi, wasi.resident { return try residentCall(module: module, fuel: fuel, timeLimit: timeLimit, wasi: wasi) }
        if movesToCompiledWhenReady, engine == .auto, !placements.isEmpty { moveToCompiledWhenReady() }
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
        let engine = engine(for: module)
        let instantiated = engine.isInstantiated(module)
        if !instantiated { try engine.prepare(module) }
        guard module.wasiKind != nil || wasi?.capture == true else {
            return try limited(engine, fuel: fuel, timeLimit: timeLimit, function: name) {
                if !instantiated { try instantiate(module, on: engine) }
                return try engine.invoke(module, name, arguments)
            }
        }
        // A WASI call: its arguments, environment and input in, its output out.
        var state: WASICallState?
        if module.wasiKind != nil { state = try wasiState(for: module) }
        state?.begin(wasi)
        let value: ShareableValue
        do {
            value = try limited(engine, fuel: fuel, timeLimit: timeLimit, function: name) {
                if !instantiated { try instantiate(module, on: engine) }
                guard name == "_start", module.wasiKind == .command else { return try engine.invoke(module, name, arguments) }
                // A command runs once per instance: its next run gets a fresh one. Exiting is its result.
                isPoisoned = true
                do {
                    _ = try engine.invoke(module, name, arguments)
                    return .int(0)
                } catch let exit as WASIExitCode {
                    return .int(Int64(Int32(bitPattern: exit.code)))
                }
            }
        } catch {
            if let output = state?.end() { GuestOutputRouting.deliver(output, module: module, function: name, failed: true) }
            throw error
        }
        let output: (stdout: [UInt8], stderr: [UInt8]) = state?.end() ?? ([], [])
        if wasi?.capture == true { return .array([value, .bytes(output.stdout), .bytes(output.stderr)]) }
        GuestOutputRouting.deliver(output, module: module, function: name, failed: false)
        return value
    }

    /// Calls `name` exported by `module` with WebAssembly numbers, bits kept, loading the module
    /// first if needed, under the call's fuel and time limits.
    func call(module: GuestModule, _ name: String, values: [WasmValue], fuel: UInt64?, timeLimit: Duration?) throws -> [WasmValue] {
        renewIfPoisoned()
        let engine = engine(for: module)
        let instantiated = engine.isInstantiated(module)
        if !instantiated { try engine.prepare(module) }
        var results: [WasmValue] = []
        _ = try limited(engine, fuel: fuel, timeLimit: timeLimit, function: name) {
            if !instantiated { try instantiate(module, on: engine) }
            results = try engine.invoke(module, name, values: values)
            return .none
        }
        return results
    }

    /// The value of the global `name` that `module` exports, loading the module first if needed.
    func global(_ name: String, of module: GuestModule) throws -> WasmValue {
        try exec(module)
        return try engine(for: module).global(module, name)
    }

    /// The memory `name` that `module` exports, loading the module first if needed.
    func memory(_ name: String, of module: GuestModule) throws -> any LinearMemory {
        try exec(module)
        return try engine(for: module).memory(module, name)
    }

    /// One exchange with `module`'s resident program, started (again) when it has none running
    /// with these arguments and environment: `[number, stdout, stderr]`.
    private func residentCall(module: GuestModule, fuel: UInt64?, timeLimit: Duration?, wasi: WASICallOptions) throws -> ShareableValue {
        guard module.wasiKind == .command else {
            throw GuestError(
                kind: .missingFunction, function: "_start", message: "\(module.name) is not a WASI command: it has no _start to run",
                interpreterID: interpreterID)
        }
        if let running = residents[module.id],
            running.hasEnded || running.arguments != wasi.arguments || running.environment != wasi.environment
        {
            running.close()
            residents[module.id] = nil
        }
        let program: ResidentProgram
        if let running = residents[module.id] {
            program = running
        } else {
            program = ResidentProgram(
                module: module, arguments: wasi.arguments, environment: wasi.environment, interpreterID: interpreterID, limits: limits,
                engine: engine)
            residents[module.id] = program
        }
        let reply = try program.exchange(stdin: wasi.stdin, fuel: fuel ?? limits.fuel, timeLimit: timeLimit ?? limits.timeLimit)
        return .array([.int(Int64(reply.number)), .bytes(reply.stdout), .bytes(reply.stderr)])
    }

    /// Runs `body` on `engine` under a call's fuel budget and time limit (the interpreter's unless
    /// given): sets the fuel, arms the watchdog and caps host waits at the deadline. Errors come
    /// out as ``GuestError``, `.timedOut` when the watchdog stopped the call.
    ///
    /// Not generic on purpose: it is on every call's path, and a generic version was left
    /// unspecialized, looking up type metadata on every call.
    private func limited(
        _ engine: any EngineInstances, fuel: UInt64?, timeLimit: Duration?, function: String, _ body: () throws -> ShareableValue
    ) throws -> ShareableValue {
        engine.setFuel(fuel ?? limits.fuel)
        lastEngine = engine
        let limit = timeLimit ?? limits.timeLimit
        let deadline = limit.flatMap { Deadline.after($0) }
        let ticket = try deadline.map { deadline throws(ExecutorError) in
            try CallWatchdog.shared.arm(engine.interruptTarget, deadline: deadline)
        }
        // A call without a limit of its own keeps the deadline it runs under (a nested call's
        // caller's, or the exchange's of a resident program).
        let outer = context.callDeadline
        context.callDeadline = deadline ?? outer
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
            if error is GuestError || error is ExecutorError || error is ModuleError { throw error }
            throw classify(error, engine: engine, function: function)
        }
    }

    /// An error from guest code as the error the caller gets: ``GuestFault``s and `proc_exit`
    /// become ``GuestError``s, the engine's own traps too.
    private func classify(_ error: any Error, engine: any EngineInstances, function: String) -> any Error {
        if let fault = error as? GuestFault {
            return GuestError(kind: fault.kind, function: function, message: fault.message, interpreterID: interpreterID)
        }
        if let exit = error as? WASIExitCode {
            let status = Int32(bitPattern: exit.code)
            return GuestError(
                kind: .exited, function: function, message: "the guest called proc_exit(\(status))", interpreterID: interpreterID,
                exitStatus: status)
        }
        return engine.classify(error, function: function)
    }

    /// Replaces the instances after a trap, so that no call sees a half-updated guest state. The
    /// modules stay loaded: each is instantiated again, fresh, when next used (under
    /// ``GuestEngine/auto``, on the engine placed then).
    private func renewIfPoisoned() {
        guard isPoisoned else { return }
        isPoisoned = false
        initializerPending = initializer != nil
        wasmKitEngine?.discardInstances()
        compiledEngine?.discardInstances()
        placements = [:]
        // Descriptors the guests opened go with their instances; the next call opens afresh.
        for host in wasiHosts.values { host.close() }
        wasiHosts = [:]
        lastWASIHost = nil
        context.account.reset()
    }
}
