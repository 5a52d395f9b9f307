import Futures

/// What one engine keeps for one interpreter: its instances of the loaded modules, and how it
/// runs them. ``GuestRuntime`` owns the call protocol (names, limits, resets, WASI streams) and
/// asks an engine only for what differs between engines.
///
/// Used only by the thread holding the interpreter's run lock. An engine reaches the state it
/// shares with the other engine of the interpreter (the host context, the WASI hosts, the
/// poisoned flag) through its ``GuestRuntime``.
protocol EngineInstances: AnyObject {
    /// Whether `module` has an instance now.
    func isInstantiated(_ module: GuestModule) -> Bool

    /// Work that must happen before a module's first instance and is not the guest's time
    /// (building and loading native code). Runs outside the call's limits.
    func prepare(_ module: GuestModule) throws

    /// Makes an instance of `module` and runs its start function, under the call's limits.
    func instantiate(_ module: GuestModule) throws

    /// Calls `name` exported by `module`, which is instantiated, under the call's limits.
    func invoke(_ module: GuestModule, _ name: String, _ arguments: [ShareableValue]) throws -> ShareableValue

    /// Calls `name` exported by `module`, which is instantiated, with WebAssembly numbers in and
    /// out, bits kept, under the call's limits.
    func invoke(_ module: GuestModule, _ name: String, values: [WasmValue]) throws -> [WasmValue]

    /// The value of the global `name` exported by `module`, which is instantiated.
    func global(_ module: GuestModule, _ name: String) throws -> WasmValue

    /// The memory `name` exported by `module`, which is instantiated.
    func memory(_ module: GuestModule, _ name: String) throws -> any LinearMemory

    /// Sets the fuel of the call about to run; `nil` for no limit.
    func setFuel(_ budget: UInt64?)

    /// Sets the fuel of the guest code that runs next, code suspended in a host call included
    /// (a resident program between two exchanges).
    func refuel(_ budget: UInt64?)

    /// The fuel the last call left, while no call runs; `nil` when it had no limit.
    var remainingFuel: UInt64? { get }

    /// What the watchdog stops when a call runs past its time limit.
    var interruptTarget: any Interruptible { get }

    /// Drops every instance (after a trap); the modules stay loaded.
    func discardInstances()

    /// The engine's own errors (traps) as ``GuestError``s; others pass through.
    func classify(_ error: any Error, function: String) -> any Error
}

extension EngineInstances {
    func prepare(_ module: GuestModule) throws {}
    func classify(_ error: any Error, function: String) -> any Error { error }
    func refuel(_ budget: UInt64?) { setFuel(budget) }
}
