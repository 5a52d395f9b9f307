public import Futures
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Creating and finding interpreters and queues: Python's `concurrent.interpreters` module.
public enum Interpreters {
    /// Creates a new, idle, isolated interpreter.
    ///
    /// - Parameters:
    ///   - limits: The fuel, memory and value-size limits of its calls.
    ///   - engine: The engine that runs its guests (``GuestEngine/wasmKit`` unless given). With
    ///     ``GuestEngine/compiled``, a module that cannot be compiled or found in the cache fails
    ///     to load with ``ModuleError`` `.engineUnavailable`.
    public static func create(limits: InterpreterLimits = .default, engine: GuestEngine = .wasmKit) -> Interpreter {
        registry.create(limits: limits, engine: engine)
    }

    /// Every interpreter that exists (not closed), the main one included, in id order.
    public static func list() -> [Interpreter] { registry.all }

    /// The main interpreter (id 0). ``ThreadPoolExecutor`` runs guest calls here, one at a time.
    public static var main: Interpreter { registry.main }

    /// The interpreter whose code is running on this thread: the one a call is in, the worker's
    /// own in an `InterpreterPoolExecutor` worker, otherwise the main interpreter.
    public static var current: Interpreter {
        if let pointer = pthread_getspecific(currentKey) {
            return Unmanaged<Interpreter>.fromOpaque(pointer).takeUnretainedValue()
        }
        return main
    }

    /// Creates a queue: Python's `create_queue`.
    ///
    /// - Parameters:
    ///   - maxSize: The most items it holds; 0 or less means unbounded.
    ///   - unboundItems: What happens to an item when the interpreter that put it is closed.
    public static func createQueue(maxSize: Int = 0, unboundItems: UnboundItems = .keep) -> InterpreterQueue {
        InterpreterQueue(storage: QueueRegistry.shared.create(maxSize: maxSize, unbound: unboundItems))
    }

    /// Whether `object` can cross to an interpreter without being encoded. See ``Futures/isShareable(_:)``.
    public static func isShareable(_ object: Any) -> Bool { Futures.isShareable(object) }

    static let registry = InterpreterRegistry()

    /// Runs `invocation` in the main interpreter, waiting for it when it is busy.
    @usableFromInline
    static func runInMain(_ invocation: GuestInvocation) throws -> ShareableValue {
        try main.run(invocation, wait: true)
    }

    /// The id of the current interpreter, without creating the main one.
    static var currentID: Int {
        guard let pointer = pthread_getspecific(currentKey) else { return 0 }
        return Unmanaged<Interpreter>.fromOpaque(pointer).takeUnretainedValue().id
    }

    /// Whether `interpreter` is current on this thread.
    static func isCurrent(_ interpreter: Interpreter) -> Bool {
        pthread_getspecific(currentKey) == Unmanaged.passUnretained(interpreter).toOpaque()
    }

    /// Makes `interpreter` current on this thread; returns the previous one.
    static func swapCurrent(_ interpreter: Interpreter?) -> Interpreter? {
        let previous = pthread_getspecific(currentKey).map { Unmanaged<Interpreter>.fromOpaque($0).takeUnretainedValue() }
        pthread_setspecific(currentKey, interpreter.map { Unmanaged.passUnretained($0).toOpaque() })
        return previous
    }

    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}

/// Every live interpreter, by id. Interpreters are held weakly: one that nobody references is
/// destroyed (the main interpreter is held for the life of the process).
final class InterpreterRegistry: Sendable {
    private struct Entry {
        weak var interpreter: Interpreter?
    }

    private struct State {
        var interpreters: [Int: Entry] = [:]
        var nextID = 1
        var main: Interpreter?
    }

    private let state = Locked(State())

    func create(limits: InterpreterLimits, engine: GuestEngine) -> Interpreter {
        state.withLock { state in
            let interpreter = Interpreter(id: state.nextID, limits: limits, engine: engine)
            state.interpreters[state.nextID] = Entry(interpreter: interpreter)
            state.nextID += 1
            return interpreter
        }
    }

    var main: Interpreter {
        state.withLock { state in
            if let main = state.main { return main }
            let main = Interpreter(id: 0, limits: .default, engine: .wasmKit)
            state.main = main
            state.interpreters[0] = Entry(interpreter: main)
            return main
        }
    }

    var all: [Interpreter] {
        _ = main
        return state.withLock { $0.interpreters.values.compactMap(\.interpreter).sorted { $0.id < $1.id } }
    }

    func forget(_ id: Int) {
        _ = state.withLock { $0.interpreters.removeValue(forKey: id) }
    }
}
