public import Futures
import Synchronization

/// An isolated WebAssembly interpreter: Python's `concurrent.interpreters.Interpreter`.
///
/// Each interpreter has its own store, instances, linear memories and globals; nothing a guest
/// does in one is visible in another. Values cross by copying. An interpreter runs one call at a
/// time, in the calling thread; asking a running interpreter to run something else fails with
/// ``InterpreterError`` `.running` (never a data race). The main interpreter is the exception:
/// ``ThreadPoolExecutor`` queues its guest calls on it, one at a time (the GIL of this world).
///
/// Create interpreters with ``Interpreters/create(limits:)``; close them with ``close()``, or
/// let the last reference go.
public final class Interpreter: Sendable, Hashable, CustomStringConvertible {
    /// The interpreter's id: 0 for the main interpreter, then 1, 2, ...
    public let id: Int
    /// The limits every call in this interpreter runs under.
    public let limits: InterpreterLimits
    /// The engine that runs its guests.
    public let engine: GuestEngine

    /// `true` while a call runs: the run lock that serializes calls. Whoever holds it owns
    /// ``runtime``.
    private let running = Atomic<Bool>(false)
    /// Threads waiting for the run lock (``ThreadPoolExecutor`` calls on the main interpreter).
    private let waiters = Atomic<Int>(0)
    private let gate = ConditionLock()
    private let closed = Atomic<Bool>(false)
    /// The engine, store and instances; read and written only by the holder of the run lock.
    private nonisolated(unsafe) var runtime: GuestRuntime?

    init(id: Int, limits: InterpreterLimits, engine: GuestEngine) {
        self.id = id
        self.limits = limits
        self.engine = engine
    }

    /// An interpreter nobody references any more is destroyed, as Python destroys an interpreter
    /// whose object is collected: it leaves ``Interpreters/list()``, its memory is freed and its
    /// queued items get their unbound policy.
    deinit {
        guard id != 0, !closed.load(ordering: .relaxed) else { return }
        Interpreters.registry.forget(id)
        QueueRegistry.shared.interpreterClosed(id)
    }

    /// Whether the interpreter is running a call now. The main interpreter, like Python's, always
    /// counts as running.
    public var isRunning: Bool { id == 0 || running.load(ordering: .acquiring) }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Destroys the interpreter: its instances and memories are freed.
    ///
    /// - Throws: ``InterpreterError`` `.mainInterpreter` for the main interpreter, `.notFound` when
    ///   it is already closed, `.running` while it runs a call.
    public func close() throws(InterpreterError) {
        if id == 0 { throw InterpreterError(.mainInterpreter, "cannot close the main interpreter") }
        guard acquire(wait: false) else { throw InterpreterError(.running, "interpreter \(id) is running") }
        defer { release() }
        let wasClosed = closed.exchange(true, ordering: .acquiringAndReleasing)
        runtime = nil
        if wasClosed { throw InterpreterError(.notFound, "interpreter \(id) was closed") }
        Interpreters.registry.forget(id)
        QueueRegistry.shared.interpreterClosed(id)
    }

    /// Loads `module` into the interpreter's namespace: the analog of exec'ing a module's source.
    /// Its start function, if any, runs now, in the calling thread.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; ``GuestError`` when
    ///   instantiation traps or exceeds the memory limit.
    public func exec(_ module: GuestModule) throws {
        try withRuntime(wait: false) { runtime in try runtime.exec(module) }
    }

    /// Loads a module from WebAssembly bytes. See ``exec(_:)``.
    ///
    /// - Throws: ``ModuleError`` for bad bytes or missing imports, or what ``exec(_:)`` throws.
    public func exec(wasm bytes: [UInt8]) throws {
        try exec(GuestModule(bytes: bytes))
    }

    /// Loads a module from WebAssembly text. See ``exec(_:)``.
    ///
    /// - Throws: ``ModuleError`` for bad text or missing imports, or what ``exec(_:)`` throws.
    public func exec(wat text: String) throws {
        try exec(GuestModule(wat: text))
    }

    /// The modules loaded so far, in load order.
    public var modules: [GuestModule] {
        (try? withRuntime(wait: true) { $0.modules }) ?? []
    }

    /// Calls the function `name` exported by a loaded module (the latest loaded that exports it)
    /// with `arguments`, in the calling thread, and returns its result.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; ``GuestError`` when the call
    ///   traps, runs out of fuel, passes a bad pointer, or the function does not exist.
    public func call(_ name: String, _ arguments: [ShareableValue] = []) throws -> ShareableValue {
        try withRuntime(wait: false) { try $0.call(name, arguments: arguments, fuel: nil, timeLimit: nil) }
    }

    /// Calls a guest function with typed arguments and result, loading its module if needed.
    ///
    /// - Throws: What ``call(_:_:)`` throws, and ``Futures/ValueCodingError`` when the result is
    ///   not a `Success`.
    public func call<each Argument: Shareable, Success: Shareable>(
        _ function: GuestFunction<Success>, _ arguments: repeat each Argument
    ) throws -> Success {
        let invocation = try function.invocation(repeat each arguments)
        return try Success(shareableValue: run(invocation.invocation, wait: false))
    }

    /// Calls the function `name` that `module` exports with WebAssembly numbers, loading the
    /// module first if needed, and returns its results: every value crosses with its bits (an
    /// `f32` signaling NaN stays one), which ``call(_:_:)``'s ``ShareableValue``s cannot promise.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; ``GuestError`` `.badArguments` when
    ///   `arguments` do not have the function's parameter types, `.missingFunction` when there is
    ///   no such function, or the call's trap; ``ModuleError`` when the module cannot load.
    public func call(_ name: String, in module: GuestModule, values arguments: [WasmValue]) throws -> [WasmValue] {
        try withRuntime(wait: false) { try $0.call(module: module, name, values: arguments, fuel: nil, timeLimit: nil) }
    }

    /// The value of the global `name` that `module` exports, loading the module first if needed.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; ``ModuleError`` `.noSuchExport`
    ///   when the module exports no global `name`, or when it cannot load.
    public func global(_ name: String, of module: GuestModule) throws -> WasmValue {
        try withRuntime(wait: false) { try $0.global(name, of: module) }
    }

    /// Runs `body` with the memory `name` that `module` exports (bounds-checked), loading the
    /// module first if needed. The view is valid only inside `body`.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; ``ModuleError`` `.noSuchExport`
    ///   when the module exports no memory `name` (the compiled engine gives only `memory`), or
    ///   when it cannot load; what `body` throws.
    public func withMemory<T>(named name: String = "memory", of module: GuestModule, _ body: (GuestMemoryView) throws -> T) throws -> T {
        try withRuntime(wait: false) { runtime in try body(GuestMemoryView(memory: try runtime.memory(name, of: module), context: nil)) }
    }

    /// Loads `module` and makes its instance's exports importable, under the module name `name`,
    /// by the modules this interpreter instantiates later whose ``Linker`` allows it
    /// (``Linker/allowInstance(named:)``): one instance linked to another, as the spec test
    /// suite's `register`. After a trap the interpreter replaces every instance: the registered
    /// module's first, then those that import from it.
    ///
    /// - Throws: ``InterpreterError`` when closed or running; what ``exec(_:)`` throws.
    public func register(_ module: GuestModule, as name: String) throws {
        try withRuntime(wait: false) { try $0.register(module, as: name) }
    }

    /// Runs ``call(_:_:)`` on a new thread and returns the future of its result. (Python's
    /// `call_in_thread` returns the thread and drops the result; the future gives both.)
    public func callInThread(_ name: String, _ arguments: [ShareableValue] = []) -> Future<ShareableValue> {
        let future = Future<ShareableValue>()
        _ = try? future.setRunningOrNotifyCancel()
        do {
            try DetachedThread.start(name: "interpreter-\(id)", pool: nil) {
                future.complete(Result { try self.call(name, arguments) })
            }
        } catch {
            future.complete(.failure(error))
        }
        return future
    }

    /// Runs `initializer` now and again whenever a trap makes the interpreter replace its
    /// instances, so that the state it prepares survives resets.
    ///
    /// - Throws: What ``call(_:_:)`` throws.
    package func install(initializer: GuestInvocation) throws -> ShareableValue {
        try withRuntime(wait: false) { runtime in
            let result = try runtime.call(initializer)
            runtime.initializer = initializer
            return result
        }
    }

    /// The fuel the last call left (`nil` when it had no budget), for tests and reports.
    var remainingFuel: UInt64? {
        (try? withRuntime(wait: true) { $0.remainingFuel }) ?? nil
    }

    /// The engine `module`'s instance runs on in this interpreter, if it has one (under
    /// ``GuestEngine/auto``, where it was placed).
    package func placement(of module: GuestModule) -> GuestEngine? {
        (try? withRuntime(wait: true) { $0.placement(of: module) }) ?? nil
    }

    /// Makes the interpreter move a module from WasmKit to its compiled form between two calls
    /// once that is ready, under ``GuestEngine/auto`` (what a pool worker's interpreter does).
    package func movesToCompiledWhenReady() {
        _ = try? withRuntime(wait: true) { $0.movesToCompiledWhenReady = true }
    }

    /// The fuel the last call left (when the engine counted it), for a pool's metrics: read on
    /// the worker's thread between calls.
    package var remainingFuelAfterCall: UInt64? { runtime?.remainingFuel }

    /// The guest memory committed now, in bytes, for a pool's metrics: read on the worker's
    /// thread between calls.
    package var memoryBytesAfterCall: Int { runtime?.context.account.committed ?? 0 }

    /// Runs a guest invocation; `wait` queues behind a running call instead of failing.
    package func run(_ invocation: GuestInvocation, wait: Bool) throws -> ShareableValue {
        try withRuntime(wait: wait) { runtime in try runtime.call(invocation) }
    }

    /// Takes the run lock; with `wait`, waits for it instead of returning `false`.
    ///
    /// A waiter counts itself, then tries the flag; a release clears the flag, then reads the
    /// count. Both pairs are sequentially consistent, so one of them sees the other: either the
    /// waiter takes the flag, or the release sees the waiter and wakes it under `gate` (with
    /// weaker orderings the two reads could both miss, and the waiter would sleep until some
    /// later caller came). The uncontended path is one compare-and-swap.
    private func acquire(wait: Bool) -> Bool {
        if running.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
            return true
        }
        guard wait else { return false }
        waiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        gate.withLock {
            while !running.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
                gate.wait(until: nil)
            }
        }
        waiters.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        return true
    }

    private func withRuntime<T>(wait: Bool, _ body: (GuestRuntime) throws -> T) throws -> T {
        guard acquire(wait: wait) else { throw InterpreterError(.running, "interpreter \(id) is already running") }
        defer { release() }
        if closed.load(ordering: .relaxed) { throw InterpreterError(.notFound, "interpreter \(id) was closed") }
        let runtime = self.runtime ?? GuestRuntime(interpreterID: id, limits: limits, engine: engine)
        self.runtime = runtime
        // A pool worker's interpreter is already current on its thread.
        guard !Interpreters.isCurrent(self) else { return try body(runtime) }
        let previous = Interpreters.swapCurrent(self)
        defer { _ = Interpreters.swapCurrent(previous) }
        return try body(runtime)
    }

    /// Releases the run lock and wakes a waiting caller, if any.
    private func release() {
        running.store(false, ordering: .sequentiallyConsistent)
        if waiters.load(ordering: .sequentiallyConsistent) > 0 { gate.withLock { gate.broadcast() } }
    }

    /// Two handles are equal when they are the same interpreter.
    public static func == (lhs: Interpreter, rhs: Interpreter) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    /// `Interpreter(<id>)`.
    public var description: String { "Interpreter(\(id))" }
}
