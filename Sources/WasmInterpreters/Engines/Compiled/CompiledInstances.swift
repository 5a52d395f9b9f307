import Futures
import Synchronization
import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// The compiled engine's side of one interpreter (``GuestEngine/compiled``): an instance of each
/// loaded module's native code, each in its own box of memory with its own linear memory,
/// globals and tables.
///
/// Fuel is the module's injected counter (see ``FuelMetering``); between guest runs the call's
/// remaining fuel is kept here, and the watchdog stops a call by making the running counter
/// negative.
final class CompiledInstances: EngineInstances, Interruptible {
    /// The runtime that owns this engine (it outlives it).
    unowned let runtime: GuestRuntime
    let context: HostContext
    private let limits: InterpreterLimits
    private var instances: [Int: CompiledInstance] = [:]
    /// Instances whose instantiation failed, freed at the next reset (see ``instantiate(_:)``).
    private var failed: [CompiledInstance] = []
    /// The call's remaining fuel while no guest code runs.
    private let fuelCell = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    /// The counter the running guest code charges: ``fuelCell`` or an instance's.
    private let activeFuel: Atomic<UnsafeMutablePointer<Int64>>
    /// The instance whose code runs now, if any (host functions may call back into it).
    private var running: CompiledInstance?
    /// Whether the call about to run has a fuel budget.
    private var hasBudget = false
    /// The native stack a call's guest frames may use.
    let stackBudget: UInt

    init(runtime: GuestRuntime) {
        self.runtime = runtime
        context = runtime.context
        limits = runtime.limits
        fuelCell.initialize(to: .max)
        activeFuel = Atomic(fuelCell)
        stackBudget = UInt(max(limits.stackBytes, 64 << 10))
    }

    deinit {
        instances = [:]
        failed = []
        fuelCell.deallocate()
    }

    /// Makes the running counter negative: the guest traps at its next charge. Runs on the
    /// watchdog thread while the call's ticket is armed; every counter it may find in
    /// ``activeFuel`` stays allocated until the ticket is disarmed (instances live until the next
    /// reset, ``failed`` ones too).
    func interrupt() { activeFuel.load(ordering: .acquiring).pointee = -(1 << 40) }

    func isInstantiated(_ module: GuestModule) -> Bool { instances[module.id] != nil }

    /// Builds (or finds) and loads the module's native code: not the guest's time.
    func prepare(_ module: GuestModule) throws {
        _ = try CompiledLibrary.load(module)
    }

    func setFuel(_ budget: UInt64?) {
        hasBudget = budget != nil
        fuelCell.pointee = budget.map { Int64(clamping: $0) } ?? .max
    }

    /// The call's fuel, written into the running counter too when guest code is suspended in a
    /// host call (it charges that counter when it resumes).
    func refuel(_ budget: UInt64?) {
        setFuel(budget)
        running?.fuel.pointee = fuelCell.pointee
    }

    var remainingFuel: UInt64? { hasBudget ? UInt64(max(0, fuelCell.pointee)) : nil }

    var interruptTarget: any Interruptible { self }

    /// Frees every instance. Called at a reset, before the next call: by then the watchdog has
    /// stopped watching the calls that ran in them (their tickets are disarmed).
    func discardInstances() {
        lastCall = nil
        instances = [:]
        failed = []
    }

    func invoke(_ module: GuestModule, _ name: String, _ arguments: [ShareableValue]) throws -> ShareableValue {
        let site = try resolve(module, name)
        let export = site.export
        // Numbers only (the common case): the slots live on the stack, nothing is allocated.
        let count = max(export.parameters.count, export.results.count, 1)
        let fast = try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { slots -> ShareableValue? in
            guard try GuestABI.lowerNumbers(arguments, to: export.parameters, into: slots) else { return nil }
            return try invoke(site, slots: slots)
        }
        if let fast { return fast }
        return try invokeWithBuffers(site, arguments)
    }

    /// A resolved export, kept so that a run of calls to one function skips the lookups.
    private final class CallSite {
        let moduleID: Int
        let name: String
        let instance: CompiledInstance
        let export: CompiledLibrary.Export

        init(moduleID: Int, name: String, instance: CompiledInstance, export: CompiledLibrary.Export) {
            self.moduleID = moduleID
            self.name = name
            self.instance = instance
            self.export = export
        }
    }

    private var lastCall: CallSite?

    /// The call site of `name` in `module`, which is instantiated.
    private func resolve(_ module: GuestModule, _ name: String) throws -> CallSite {
        if let last = lastCall, last.moduleID == module.id, last.name == name { return last }
        guard let instance = instances[module.id] else {
            throw GuestFault(kind: .trap, message: "\(module.name) has no instance in this interpreter")
        }
        guard let export = instance.library.exports[name] else {
            throw GuestFault(kind: .missingFunction, message: "\(module.name) exports no function named '\(name)'")
        }
        guard export.isCallable else { throw GuestABI.notCrossable(name, interpreterID: runtime.interpreterID) }
        let site = CallSite(moduleID: module.id, name: name, instance: instance, export: export)
        lastCall = site
        return site
    }

    /// Runs the function with its arguments in `slots`, and lifts its result from them.
    private func invoke(_ site: CallSite, slots: UnsafeMutableBufferPointer<UInt64>) throws -> ShareableValue {
        let instance = site.instance
        let index = site.export.index
        context.returned = nil
        do {
            try run(instance) { box in instance.library.invoke(box, index, slots.baseAddress, stackBudget) }
        } catch {
            runtime.isPoisoned = true
            throw error
        }
        if let returned = context.returned {
            context.returned = nil
            return returned
        }
        return try GuestABI.lift(
            UnsafeBufferPointer(rebasing: slots[0..<site.export.results.count]), types: site.export.results, function: site.name,
            interpreterID: runtime.interpreterID)
    }

    /// Copies string, bytes and array arguments into guest memory (`cf_alloc`), calls, and frees
    /// them (`cf_free`).
    private func invokeWithBuffers(_ site: CallSite, _ arguments: [ShareableValue]) throws -> ShareableValue {
        let instance = site.instance
        let export = site.export
        var allocations: [UInt32] = []
        var slots: [UInt64]
        do {
            slots = try GuestABI.lower(arguments, to: export.parameters, maxValueBytes: limits.maxValueBytes, allocations: &allocations) {
                bytes, kind in
                guard let memory = instance.linearMemory else {
                    throw GuestFault(kind: .badArguments, message: "the module exports no memory to pass \(kind) arguments in")
                }
                let pointer = try instance.allocate(bytes.count, context: context)
                try GuestMemory.write(memory, pointer: pointer, bytes: bytes)
                return pointer
            }
        } catch {
            if !allocations.isEmpty || !(error is GuestFault) { runtime.isPoisoned = true }
            throw error
        }
        if slots.count < max(export.results.count, 1) { slots += repeatElement(0, count: max(export.results.count, 1) - slots.count) }
        let result = try slots.withUnsafeMutableBufferPointer { try invoke(site, slots: $0) }
        if let free = instance.library.exports["cf_free"], free.parameters == [.i32] {
            do {
                for pointer in allocations {
                    var slot: [UInt64] = [UInt64(pointer)]
                    try GuestMemory.callback(context: context) {
                        try run(instance) { box in
                            slot.withUnsafeMutableBufferPointer { instance.library.invoke(box, free.index, $0.baseAddress, stackBudget) }
                        }
                    }
                }
            } catch {
                // The result stands; the guest's heap may not, so the next call starts afresh.
                runtime.isPoisoned = true
            }
        }
        return result
    }

    /// The instance of `module`, if it has one.
    func instance(of module: GuestModule) -> CompiledInstance? { instances[module.id] }

    /// Runs `export` of `instance` with `values` (of its parameter types) and returns its results.
    func invoke(_ instance: CompiledInstance, _ export: CompiledLibrary.Export, values: [WasmValue]) throws -> [WasmValue] {
        var slots = values.map(\.bits)
        let count = max(export.parameters.count, export.results.count, 1)
        if slots.count < count { slots += repeatElement(0, count: count - slots.count) }
        try run(instance) { box in slots.withUnsafeMutableBufferPointer { instance.library.invoke(box, export.index, $0.baseAddress, stackBudget) } }
        return try zip(slots, export.results).map { WasmValue(bits: $0, type: try WasmValueType(crossing: $1)) }
    }

    func invoke(_ module: GuestModule, _ name: String, values: [WasmValue]) throws -> [WasmValue] {
        let site = try resolve(module, name)
        try CompiledInstance.checkArguments(values, try site.export.parameters.map(WasmValueType.init(crossing:)), name)
        context.returned = nil
        do {
            return try invoke(site.instance, site.export, values: values)
        } catch {
            runtime.isPoisoned = true
            throw error
        }
    }

    func global(_ module: GuestModule, _ name: String) throws -> WasmValue {
        guard let instance = instances[module.id], let (index, type) = instance.library.globals[name],
            let pointer = instance.library.global(instance.box, index)
        else {
            throw ModuleError(.noSuchExport, "\(module.name) exports no global named '\(name)' of a number type")
        }
        switch type {
        case .i32, .f32: return WasmValue(bits: UInt64(pointer.load(as: UInt32.self)), type: type)
        case .i64, .f64: return WasmValue(bits: pointer.load(as: UInt64.self), type: type)
        }
    }

    func memory(_ module: GuestModule, _ name: String) throws -> any LinearMemory {
        guard name == "memory", let memory = instances[module.id]?.linearMemory else {
            throw ModuleError(.noSuchExport, "\(module.name) exports no memory named '\(name)' (the compiled engine gives the one named memory)")
        }
        return memory
    }

    /// Instantiates `module` and runs its start function; the caller has set the call's limits.
    func instantiate(_ module: GuestModule) throws {
        let library = try CompiledLibrary.load(module)
        // The instances it imports from come first.
        let fromInstances = library.linkedImports.filter { module.linker.function(module: $0.module, name: $0.name) == nil }
        for name in Set(fromInstances.map(\.module)) {
            let provider = try runtime.registeredProvider(name, for: module)
            if instances[provider.id] == nil { try runtime.instantiateProvider(provider) }
        }
        let instance = try CompiledInstance(library: library, module: module, engine: self)
        context.account.activeModule = module.id
        context.account.meter = .counter(fuelCell)
        do {
            try context.account.admitInstance(bytes: library.boxSize)
            let trap = instance.library.instantiate(instance.box, stackBudget)
            if trap != 0 { throw instance.trapError(trap, fuel: fuelCell.pointee) }
            if let start = library.start {
                var slot: [UInt64] = [0]
                try run(instance) { box in slot.withUnsafeMutableBufferPointer { library.invoke(box, start.index, $0.baseAddress, stackBudget) } }
            }
        } catch {
            runtime.isPoisoned = true
            // Kept until the next reset: the watchdog may still be writing the counter it read
            // while the start function ran, and the call's ticket is disarmed only after this.
            failed.append(instance)
            throw error
        }
        instances[module.id] = instance
    }

    /// A trap the runtime placed as a ``GuestError`` whose backtrace names the guest function
    /// that raised it; other errors pass through.
    func classify(_ error: any Error, function: String) -> any Error {
        guard let trap = error as? CompiledTrap else { return error }
        return GuestError(
            kind: trap.fault.kind, function: function, message: trap.fault.message, interpreterID: runtime.interpreterID,
            backtrace: trap.backtrace)
    }

    /// Runs guest code of `instance` (`body` gets its box), with the call's fuel moved into the
    /// instance's counter and back. A nested run (a host function calling back into the guest)
    /// keeps charging the running counter.
    func run(_ instance: CompiledInstance, _ body: (UnsafeMutableRawPointer) -> Int32) throws {
        if let current = running {
            if current === instance {
                let trap = body(instance.box)
                if trap != 0 { throw instance.trapError(trap, fuel: instance.fuel.pointee) }
                return
            }
            // Another instance's code (a linked function): the fuel moves to its counter and back.
            instance.fuel.pointee = current.fuel.pointee
            context.account.meter = .counter(instance.fuel)
            context.account.activeModule = instance.module.id
            activeFuel.store(instance.fuel, ordering: .releasing)
            running = instance
            let trap = body(instance.box)
            running = current
            activeFuel.store(current.fuel, ordering: .releasing)
            current.fuel.pointee = instance.fuel.pointee
            context.account.meter = .counter(current.fuel)
            context.account.activeModule = current.module.id
            if trap != 0 { throw instance.trapError(trap, fuel: current.fuel.pointee) }
            return
        }
        instance.fuel.pointee = fuelCell.pointee
        context.account.meter = .counter(instance.fuel)
        context.account.activeModule = instance.module.id
        activeFuel.store(instance.fuel, ordering: .releasing)
        running = instance
        let trap = body(instance.box)
        running = nil
        activeFuel.store(fuelCell, ordering: .releasing)
        fuelCell.pointee = instance.fuel.pointee
        context.account.meter = .counter(fuelCell)
        if trap != 0 { throw instance.trapError(trap, fuel: fuelCell.pointee) }
    }
}
