import Futures

/// What an ``Interpreter`` asks of its engine: load modules, call their functions under limits.
/// One per interpreter, used only by the thread holding the interpreter's run lock.
///
/// A call's fuel and time limit cover all guest code it runs (a first instantiation with its
/// start function, `cf_alloc` for the arguments, the function, `cf_free`); a trap fails the call
/// and makes the engine replace its instances before the next one, running the
/// ``initializer`` again.
protocol GuestRuntime: AnyObject, Sendable {
    /// The modules loaded so far, in load order.
    var modules: [GuestModule] { get }
    /// A call that prepares fresh instances (a pool's initializer): run again after a reset.
    var initializer: GuestInvocation? { get set }
    /// Loads `module` unless it is loaded (instantiating it, which runs its start function).
    func exec(_ module: GuestModule) throws
    /// Calls the exported function `name`, searching the modules loaded latest first.
    func call(_ name: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration?) throws -> ShareableValue
    /// Runs `invocation`, loading its module first if needed.
    func call(_ invocation: GuestInvocation) throws -> ShareableValue
}

/// Makes the runtime of `engine` for an interpreter.
func makeRuntime(engine: GuestEngine, interpreterID: Int, limits: InterpreterLimits) -> any GuestRuntime {
    switch engine {
    case .wasmKit: InterpreterRuntime(interpreterID: interpreterID, limits: limits)
    case .compiled: CompiledRuntime(interpreterID: interpreterID, limits: limits)
    }
}
