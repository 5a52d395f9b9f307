/// An interpreter could not do what was asked: Python's `InterpreterError` and
/// `InterpreterNotFoundError`.
public struct InterpreterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable name for the code.
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The interpreter was closed (Python's `InterpreterNotFoundError`).
        public static let notFound = Code("notFound")
        /// The interpreter is running something already; an interpreter runs one call at a time.
        public static let running = Code("running")
        /// The operation is not allowed on the main interpreter (closing it).
        public static let mainInterpreter = Code("mainInterpreter")

        public var description: String { name }
    }

    /// What went wrong.
    public let code: Code
    /// Details.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "InterpreterError(\(code)): \(message)" }
}

/// A guest call failed inside its interpreter: Python's `GuestError`.
///
/// It carries what failed (``kind``), where (``function``, ``interpreterID``) and the engine's
/// message. The interpreter survives; when its state may be inconsistent (any trap), its
/// instances are replaced by fresh ones before the next call.
public struct GuestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// A stable name for the kind.
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The kind with this ``name`` (as sent between processes); unknown names read as ``trap``.
        package static func named(_ name: String) -> Kind {
            let all: [Kind] = [
                .unreachable, .memoryOutOfBounds, .divideByZero, .integerOverflow, .invalidConversion,
                .stackExhausted, .outOfFuel, .memoryLimit, .indirectCall, .invalidPointer, .malformedValue,
                .valueTooLarge, .missingFunction, .badArguments, .invalidModule, .timedOut, .reentrantCall, .trap,
            ]
            return all.first { $0.name == name } ?? .trap
        }

        /// The guest executed `unreachable` (a Swift `fatalError` or precondition in a guest).
        public static let unreachable = Kind("unreachable")
        /// The guest read or wrote outside its linear memory.
        public static let memoryOutOfBounds = Kind("memoryOutOfBounds")
        /// Integer division or remainder by zero.
        public static let divideByZero = Kind("divideByZero")
        /// Integer overflow in division or conversion.
        public static let integerOverflow = Kind("integerOverflow")
        /// A float that cannot become an integer (NaN, out of range).
        public static let invalidConversion = Kind("invalidConversion")
        /// The guest's call stack was exhausted (runaway recursion).
        public static let stackExhausted = Kind("stackExhausted")
        /// The call used up its fuel budget (``InterpreterLimits/fuel``).
        public static let outOfFuel = Kind("outOfFuel")
        /// The guest's memory would grow past ``InterpreterLimits/memoryBytes``.
        public static let memoryLimit = Kind("memoryLimit")
        /// An indirect call hit a null or mistyped table entry.
        public static let indirectCall = Kind("indirectCall")
        /// The guest handed the host a pointer or length outside its memory.
        public static let invalidPointer = Kind("invalidPointer")
        /// The guest returned or queued bytes that are not a valid encoded value.
        public static let malformedValue = Kind("malformedValue")
        /// A value crossing in or out exceeded ``InterpreterLimits/maxValueBytes``.
        public static let valueTooLarge = Kind("valueTooLarge")
        /// The function does not exist in the interpreter.
        public static let missingFunction = Kind("missingFunction")
        /// The arguments do not fit the function's WebAssembly signature.
        public static let badArguments = Kind("badArguments")
        /// The module failed validation when the function was first compiled.
        public static let invalidModule = Kind("invalidModule")
        /// The guest called a host function that calls back into the guest (`cf.queue_get`, which
        /// calls `cf_alloc`) while the host was already inside a guest callback (`cf_alloc` or
        /// `cf_free`): re-entry is bounded to one level, so a guest cannot recurse through the host.
        public static let reentrantCall = Kind("reentrantCall")
        /// The call ran past ``InterpreterLimits/timeLimit`` and was stopped. The limit is
        /// enforced from another thread, within about 100 µs of the deadline while the guest runs
        /// WebAssembly code (its start function, `cf_alloc` and `cf_free` included); a guest
        /// waiting on a queue stops waiting at the deadline.
        public static let timedOut = Kind("timedOut")
        /// Any other trap.
        public static let trap = Kind("trap")

        public var description: String { name }
    }

    /// What failed.
    public let kind: Kind
    /// The guest function that was called.
    public let function: String
    /// The engine's message (the first line of the trap), or the host's explanation.
    public let message: String
    /// The id of the interpreter the call ran in.
    public let interpreterID: Int

    /// Creates an error.
    public init(kind: Kind, function: String, message: String, interpreterID: Int) {
        self.kind = kind
        self.function = function
        self.message = message
        self.interpreterID = interpreterID
    }

    public var description: String {
        "GuestError(\(kind)) in \(function) (interpreter \(interpreterID)): \(message)"
    }
}

/// A module could not be loaded: malformed bytes, failed validation, imports the host does not
/// provide (the analog of NumPy's "does not support loading in subinterpreters"), or a file that
/// cannot be read.
public struct ModuleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable name for the code.
        public let name: String
        private init(_ name: String) { self.name = name }

        /// The code with this ``name`` (as sent between processes); unknown names read as ``invalid``.
        package static func named(_ name: String) -> Code {
            [Code.malformed, .invalid, .missingImports, .unreadable, .noSuchExport, .unsupportedFeature, .tooLarge]
                .first { $0.name == name } ?? .invalid
        }

        /// The bytes are not a WebAssembly module, or the WAT text does not parse.
        public static let malformed = Code("malformed")
        /// The module parses but fails validation or instantiation.
        public static let invalid = Code("invalid")
        /// The module imports functions or other entities the host does not provide.
        public static let missingImports = Code("missingImports")
        /// The file could not be read.
        public static let unreadable = Code("unreadable")
        /// The module has no export of that name, or not a function.
        public static let noSuchExport = Code("noSuchExport")
        /// The module uses a WebAssembly feature the host refuses to run (exception handling).
        public static let unsupportedFeature = Code("unsupportedFeature")
        /// The module is larger than ``InterpreterLimits/maxModuleBytes``, or declares more initial
        /// memory and tables than ``InterpreterLimits/memoryBytes`` allows.
        public static let tooLarge = Code("tooLarge")

        public var description: String { name }
    }

    /// What went wrong.
    public let code: Code
    /// Details; for missing imports, every missing name.
    public let message: String
    /// For ``Code-swift.struct/missingImports``: the missing imports as `module.name`.
    public let missingImports: [String]

    /// Creates an error.
    public init(_ code: Code, _ message: String, missingImports: [String] = []) {
        self.code = code
        self.message = message
        self.missingImports = missingImports
    }

    public var description: String { "ModuleError(\(code)): \(message)" }
}
