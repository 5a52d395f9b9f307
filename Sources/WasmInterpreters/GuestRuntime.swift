import Futures

/// What an ``Interpreter`` holds behind its run lock: an engine's instances of the loaded modules,
/// and what every engine does the same way. Used only by the thread holding the run lock.
///
/// This class owns the call protocol: the namespace of loaded modules, lookups by name, the
/// initializer run again after a reset, and ``limited(fuel:timeLimit:function:_:)``, which gives
/// each call its fuel and time limit and turns failures into ``GuestError``. A call's limits cover
/// all guest code it runs (a first instantiation with its start function, `cf_alloc` for the
/// arguments, the function, `cf_free`); a trap fails the call and makes the engine replace its
/// instances before the next one.
///
/// An engine subclass provides the rest: ``WasmKitRuntime`` and ``CompiledRuntime``.
class GuestRuntime: @unchecked Sendable {
    let interpreterID: Int
    let limits: InterpreterLimits
    /// What host functions see during a call.
    let context: HostContext
    /// Loaded modules, in load order (latest last, for name lookups).
    private(set) var modules: [GuestModule] = []
    /// Whether the instances must be replaced before the next call (after a trap).
    var isPoisoned = false
    /// A call that prepares fresh instances (a pool's initializer): run again after a reset.
    var initializer: GuestInvocation?
    private var initializerPending = false

    init(interpreterID: Int, limits: InterpreterLimits) {
        self.interpreterID = interpreterID
        self.limits = limits
        context = HostContext(
            interpreterID: interpreterID, account: ResourceAccount(limit: limits.memoryBytes, action: limits.onMemoryLimit))
        context.maxValueBytes = limits.maxValueBytes
    }

    // MARK: What an engine provides (every engine overrides these; the defaults only fail)

    /// Whether `module` has an instance now.
    func isInstantiated(_ module: GuestModule) -> Bool { false }

    /// Work that must happen before a module's first instance and is not the guest's time
    /// (building native code).
    func prepare(_ module: GuestModule) throws {}

    /// Makes an instance of `module` (running its start function), under the call's limits.
    func instantiate(_ module: GuestModule) throws { throw noEngine(module.name) }

    /// Calls `name` exported by `module` (instantiating it if needed), under the call's limits.
    func invoke(_ module: GuestModule, _ name: String, _ arguments: [ShareableValue]) throws -> ShareableValue {
        throw noEngine(name)
    }

    /// Sets the fuel of the call about to run; `nil` for no limit.
    func setFuel(_ budget: UInt64?) {}

    /// What the watchdog stops when the call runs past its time limit.
    var interruptTarget: any Interruptible { NothingToInterrupt() }

    /// Drops every instance (after a trap); the modules stay loaded.
    func discardInstances() {}

    /// The standard streams and `argv`/`environ` of a WASI module's calls in this interpreter.
    ///
    /// - Throws: ``ModuleError`` when the engine does not run WASI guests or the module's
    ///   options cannot be applied.
    func wasiState(for module: GuestModule) throws -> WASICallState {
        throw ModuleError(
            .unsupportedFeature,
            "\(module.name) is a WASI module, and only the WasmKit engine links wasi_snapshot_preview1")
    }

    private func noEngine(_ function: String) -> GuestError {
        GuestError(kind: .trap, function: function, message: "no engine runs this interpreter", interpreterID: interpreterID)
    }

    /// An engine's error as the error the caller gets; ``GuestFault``s become ``GuestError``s.
    func classify(_ error: any Error, function: String) -> any Error {
        if let fault = error as? GuestFault {
            return GuestError(kind: fault.kind, function: function, message: fault.message, interpreterID: interpreterID)
        }
        return error
    }

    // MARK: The call protocol

    /// Loads `module` unless it is loaded (instantiating it, which runs its start function under
    /// the interpreter's fuel and time limits).
    final func exec(_ module: GuestModule) throws {
        renewIfPoisoned()
        if isInstantiated(module) { return }
        try prepare(module)
        _ = try limited(fuel: nil, timeLimit: nil, function: "\(module.name) (instantiation)") {
            try instantiate(module)
            return .none
        }
    }

    /// Records that `module` has been instantiated (an engine calls this).
    final func didInstantiate(_ module: GuestModule) {
        if !modules.contains(where: { $0.id == module.id }) { modules.append(module) }
    }

    /// Calls the exported function `name`, searching the modules loaded latest first.
    final func call(_ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration?) throws -> ShareableValue {
        renewIfPoisoned()
        for module in modules.reversed() where module.export(named: name) != nil {
            return try call(module: module, name, arguments: arguments, fuel: fuel, timeLimit: timeLimit)
        }
        throw GuestError(
            kind: .missingFunction, function: name,
            message: "no loaded module exports a function named '\(name)'", interpreterID: interpreterID)
    }

    /// Runs `invocation`, loading its module first if needed.
    final func call(_ invocation: GuestInvocation) throws -> ShareableValue {
        try call(
            module: invocation.module, invocation.function, arguments: invocation.arguments, fuel: invocation.fuel,
            timeLimit: invocation.timeLimit, wasi: invocation.wasi)
    }

    /// Calls `name` exported by `module`, loading the module first if needed.
    final func call(
        module: GuestModule, _ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration?,
        wasi: WASICallOptions? = nil
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
        if !isInstantiated(module) { try prepare(module) }
        guard module.wasiKind != nil || wasi?.capture == true else {
            return try limited(fuel: fuel, timeLimit: timeLimit, function: name) { try invoke(module, name, arguments) }
        }
        // A WASI call: its arguments, environment and input in, its output out.
        var state: WASICallState?
        if module.wasiKind != nil { state = try wasiState(for: module) }
        state?.begin(wasi)
        let value: ShareableValue
        do {
            value = try limited(fuel: fuel, timeLimit: timeLimit, function: name) { try invoke(module, name, arguments) }
        } catch {
            if let output = state?.end() { GuestOutputRouting.deliver(output, module: module, function: name, failed: true) }
            throw error
        }
        let output: (stdout: [UInt8], stderr: [UInt8]) = state?.end() ?? ([], [])
        if wasi?.capture == true { return .array([value, .bytes(output.stdout), .bytes(output.stderr)]) }
        GuestOutputRouting.deliver(output, module: module, function: name, failed: false)
        return value
    }

    /// Runs `body` under a call's fuel budget and time limit (the interpreter's unless given):
    /// sets the fuel, arms the watchdog and caps host waits at the deadline. Errors come out as
    /// ``GuestError``, `.timedOut` when the watchdog stopped the call.
    ///
    /// Not generic on purpose: it is on every call's path, and a generic version was left
    /// unspecialized, looking up type metadata on every call.
    private func limited(
        fuel: UInt64?, timeLimit: Duration?, function: String, _ body: () throws -> ShareableValue
    ) throws -> ShareableValue {
        setFuel(fuel ?? limits.fuel)
        let limit = timeLimit ?? limits.timeLimit
        let deadline = limit.flatMap { Deadline.after($0) }
        let ticket = try deadline.map { deadline throws(ExecutorError) in
            try CallWatchdog.shared.arm(interruptTarget, deadline: deadline)
        }
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
            if error is GuestError || error is ExecutorError { throw error }
            throw classify(error, function: function)
        }
    }

    /// Replaces the instances after a trap, so that no call sees a half-updated guest state. The
    /// modules stay loaded: each is instantiated again, fresh, when next used.
    private func renewIfPoisoned() {
        guard isPoisoned else { return }
        isPoisoned = false
        initializerPending = initializer != nil
        discardInstances()
        context.account.reset()
    }
}

/// The watchdog's target when there is nothing to stop.
private final class NothingToInterrupt: Interruptible {
    func interrupt() {}
}

/// Makes the runtime of `engine` for an interpreter.
func makeRuntime(engine: GuestEngine, interpreterID: Int, limits: InterpreterLimits) -> GuestRuntime {
    switch engine {
    case .wasmKit: WasmKitRuntime(interpreterID: interpreterID, limits: limits)
    case .compiled: CompiledRuntime(interpreterID: interpreterID, limits: limits)
    }
}
