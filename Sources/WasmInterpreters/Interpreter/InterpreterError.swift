public import Futures

/// An interpreter could not do what was asked: Python's `InterpreterError` and
/// `InterpreterNotFoundError`.
public struct InterpreterError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<InterpreterError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.notFound, .running, .mainInterpreter]

    /// What went wrong.
    public let code: Code
    /// Details.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension ErrorCode where Domain == InterpreterError {
    /// The interpreter was closed (Python's `InterpreterNotFoundError`).
    public static let notFound = Self("notFound")
    /// The interpreter is running something already; an interpreter runs one call at a time.
    public static let running = Self("running")
    /// The operation is not allowed on the main interpreter (closing it).
    public static let mainInterpreter = Self("mainInterpreter")
}

/// A guest call failed inside its interpreter: Python's `ExecutionFailed`.
///
/// It carries what failed (``kind``), where (``function``, ``interpreterID``) and the engine's
/// message. The interpreter survives; when its state may be inconsistent (any trap), its
/// instances are replaced by fresh ones before the next call.
public struct GuestError: CodedError, Sendable, Hashable {
    /// The kind of failure: one of the kinds below.
    public typealias Kind = ErrorCode<GuestError>

    /// Every code, for looking one up by name.
    public static let codes: [Kind] = [
        .unreachable, .memoryOutOfBounds, .divideByZero, .integerOverflow, .invalidConversion, .stackExhausted, .outOfFuel, .memoryLimit,
        .indirectCall, .invalidPointer, .malformedValue, .valueTooLarge, .missingFunction, .badArguments, .invalidModule, .reentrantCall,
        .timedOut, .exited, .outputLimit, .hostFunction, .trap,
    ]

    /// What failed.
    public let kind: Kind
    /// The guest function that was called.
    public let function: String
    /// The engine's message (the first line of the trap), or the host's explanation.
    public let message: String
    /// The id of the interpreter the call ran in.
    public let interpreterID: Int
    /// For ``Kind-swift.struct/exited``: the status the guest passed to `proc_exit`.
    public let exitStatus: Int32?
    /// The guest's stack at a trap, innermost first, as function names: the module's `name`
    /// section's, else an export's name (on WasmKit, only in a module that has a `name`
    /// section), else `func[<index>]`. Empty when the error is not a trap or the engine could
    /// not tell.
    ///
    /// The WasmKit engine gives every guest frame (as Wasmtime prints them). The compiled engine
    /// gives the function the trap was raised in, then the guest functions of the native stack
    /// (recorded on the trap path only, named through the compiled object's symbol table), less
    /// those the compiler inlined into their callers; nothing for an access past a guard page of
    /// its linear memory, which its fault handler catches.
    public let backtrace: [String]

    /// Creates an error with no backtrace.
    public init(kind: Kind, function: String, message: String, interpreterID: Int, exitStatus: Int32? = nil) {
        self.init(kind: kind, function: function, message: message, interpreterID: interpreterID, exitStatus: exitStatus, backtrace: [])
    }

    /// Creates an error with the guest's stack at the trap (see ``backtrace``).
    public init(kind: Kind, function: String, message: String, interpreterID: Int, exitStatus: Int32? = nil, backtrace: [String]) {
        self.kind = kind
        self.function = function
        self.message = message
        self.interpreterID = interpreterID
        self.exitStatus = exitStatus
        self.backtrace = backtrace
    }

    /// The kind, under the name every coded error uses.
    public var code: Kind { kind }

    public var description: String {
        "GuestError(\(kind)) in \(function) (interpreter \(interpreterID)): \(message)"
    }
}

extension ErrorCode where Domain == GuestError {
    /// The guest executed `unreachable` (a Swift `fatalError` or precondition in a guest).
    public static let unreachable = Self("unreachable")
    /// The guest read or wrote outside its linear memory.
    public static let memoryOutOfBounds = Self("memoryOutOfBounds")
    /// Integer division or remainder by zero.
    public static let divideByZero = Self("divideByZero")
    /// Integer overflow in division or conversion.
    public static let integerOverflow = Self("integerOverflow")
    /// A float that cannot become an integer (NaN, out of range).
    public static let invalidConversion = Self("invalidConversion")
    /// The guest's call stack was exhausted (runaway recursion).
    public static let stackExhausted = Self("stackExhausted")
    /// The call used up its fuel budget (``InterpreterLimits/fuel``).
    public static let outOfFuel = Self("outOfFuel")
    /// The guest's memory would grow past ``InterpreterLimits/memoryBytes``.
    public static let memoryLimit = Self("memoryLimit")
    /// An indirect call hit a null or mistyped table entry or an index past the table's end, or
    /// a table operation (`table.get`, `table.set`, `table.init`, `table.copy`, `table.fill`)
    /// went out of bounds; the same on both engines.
    public static let indirectCall = Self("indirectCall")
    /// The guest handed the host a pointer or length outside its memory.
    public static let invalidPointer = Self("invalidPointer")
    /// The guest returned or queued bytes that are not a valid encoded value.
    public static let malformedValue = Self("malformedValue")
    /// A value crossing in or out exceeded ``InterpreterLimits/maxValueBytes``.
    public static let valueTooLarge = Self("valueTooLarge")
    /// The function does not exist in the interpreter.
    public static let missingFunction = Self("missingFunction")
    /// The arguments do not fit the function's WebAssembly signature.
    public static let badArguments = Self("badArguments")
    /// The module failed validation when the function was first compiled.
    public static let invalidModule = Self("invalidModule")
    /// The guest called a host function that calls back into the guest (`cf.queue_get`, which
    /// calls `cf_alloc`) while the host was already inside a guest callback (`cf_alloc` or
    /// `cf_free`): re-entry is bounded to one level, so a guest cannot recurse through the host.
    public static let reentrantCall = Self("reentrantCall")
    /// A host function the guest imported (``HostFunction``) failed: it threw an error that is
    /// not a ``HostFunctionFailure`` of another kind, or returned what its signature does not
    /// declare.
    public static let hostFunction = Self("hostFunction")
    /// The call ran past ``InterpreterLimits/timeLimit`` and was stopped. The limit is
    /// enforced from another thread, within about 100 µs of the deadline while the guest runs
    /// WebAssembly code (its start function, `cf_alloc` and `cf_free` included); a guest
    /// waiting on a queue stops waiting at the deadline.
    public static let timedOut = Self("timedOut")
    /// A WASI guest called `proc_exit` during a call to one of its functions (a reactor); the
    /// status is ``GuestError/exitStatus``. The interpreter replaces the guest's instance, so the
    /// next call starts from a fresh one. (For a command's `_start`, exiting is its result.)
    public static let exited = Self("exited")
    /// A WASI guest wrote more than ``InterpreterLimits/maxValueBytes`` to standard output or
    /// standard error in one call.
    public static let outputLimit = Self("outputLimit")
    /// Any other trap.
    public static let trap = Self("trap")
}

/// A module could not be loaded: malformed bytes, failed validation, imports the host does not
/// provide (the analog of NumPy's "does not support loading in subinterpreters"), or a file that
/// cannot be read.
public struct ModuleError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<ModuleError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [
        .malformed, .invalid, .missingImports, .unreadable, .noSuchExport, .unsupportedFeature, .tooLarge, .engineUnavailable, .buildFailed,
        .invalidOptions,
    ]

    /// What went wrong.
    public let code: Code
    /// Details; for missing imports, every missing name.
    public let message: String
    /// For ``Code-swift.struct/missingImports``: the missing imports as `module.name`.
    public let missingImports: [String]
    /// Whether the same attempt may succeed later (a build that ran out of wall time on a busy
    /// machine, or waited too long for another process's build of the module): the compiled
    /// engine does not remember it as the module's verdict. Not part of equality.
    package var isTransient = false

    /// Creates an error.
    public init(_ code: Code, _ message: String, missingImports: [String] = []) {
        self.code = code
        self.message = message
        self.missingImports = missingImports
    }

    /// Whether two errors have the same code, message and missing imports.
    public static func == (lhs: ModuleError, rhs: ModuleError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.missingImports == rhs.missingImports
    }

    /// Hashes what equality compares: the code, the message and the missing imports.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(missingImports)
    }
}

extension ErrorCode where Domain == ModuleError {
    /// The bytes are not a WebAssembly module, or the WAT text does not parse.
    public static let malformed = Self("malformed")
    /// The module parses but fails validation or instantiation.
    public static let invalid = Self("invalid")
    /// The module imports functions or other entities the host does not provide.
    public static let missingImports = Self("missingImports")
    /// The file could not be read.
    public static let unreadable = Self("unreadable")
    /// The module has no export of that name, or not a function.
    public static let noSuchExport = Self("noSuchExport")
    /// The module uses a WebAssembly feature the host refuses to run (exception handling), or
    /// one the compiled engine cannot translate (SIMD, threads, tail calls, 64-bit or multiple
    /// memories, a function needing over 64 KiB of native stack): WasmKit runs those.
    public static let unsupportedFeature = Self("unsupportedFeature")
    /// The module is larger than ``InterpreterLimits/maxModuleBytes``, or declares more initial
    /// memory and tables than ``InterpreterLimits/memoryBytes`` allows, or has more functions,
    /// types, globals or data than the compiled engine's ``CompiledEngine/BuildBudget`` admits.
    public static let tooLarge = Self("tooLarge")
    /// The module cannot run on the chosen ``GuestEngine``: the compiled engine lacks `wasm2c`
    /// or `clang` and finds no cached build of the module, or its cache directory fails a check
    /// or cannot be written.
    public static let engineUnavailable = Self("engineUnavailable")
    /// The compiled engine could not build the module: `wasm2c` or `clang` failed or crashed, or
    /// the build ran out of its ``CompiledEngine/BuildBudget`` (time, CPU or memory). The message
    /// says which, with the tool's first lines of output. The module still runs on WasmKit, and
    /// ``GuestEngine/auto`` falls back to it.
    public static let buildFailed = Self("buildFailed")
    /// The module's ``WASIOptions`` cannot be applied: a preopened directory does not exist or
    /// cannot be opened, or a guest path is not absolute.
    public static let invalidOptions = Self("invalidOptions")
}
