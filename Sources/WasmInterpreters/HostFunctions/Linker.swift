/// What a module may import besides the package's own (`cf` and WASI): host functions, and the
/// exports of other modules' instances, linked in each interpreter by name.
///
/// Give a linker to ``GuestModule/init(bytes:name:limits:wasi:linker:)``: loading checks that
/// every import is provided, with its signature, and names every one that is not. Every
/// interpreter that instantiates the module links the same functions; on the process and MPI
/// pools, whose workers load modules from their bytes, a worker links the host functions its
/// program registered (`ProcessWorker.runIfRequested(jobs:hostFunctions:)`), found by name.
public struct Linker: Sendable {
    /// The host functions, by `module.name`.
    private var table: [String: HostFunction] = [:]
    /// Import module names resolved from instances (``Interpreter/register(_:as:)``).
    public private(set) var instanceNames: Set<String> = []

    /// A linker with `functions` (a later function with the same import name replaces an
    /// earlier one).
    public init(_ functions: [HostFunction] = []) {
        for function in functions { define(function) }
    }

    /// The host functions, sorted by import name.
    public var functions: [HostFunction] { table.values.sorted { $0.qualifiedName < $1.qualifiedName } }

    /// Adds `function`, replacing one with the same import name.
    public mutating func define(_ function: HostFunction) {
        table[function.qualifiedName] = function
    }

    /// Lets modules import from `name` whatever the instance an interpreter registered under that
    /// name exports (functions, memories, globals, tables: the spec test suite's `register`). The
    /// imports are resolved when the importing module is instantiated, from the interpreter's
    /// registrations (``Interpreter/register(_:as:)``); one that is missing then fails with
    /// ``ModuleError`` `.missingImports`. The compiled engine links functions only.
    public mutating func allowInstance(named name: String) {
        instanceNames.insert(name)
    }

    /// The host function imported as `module.name`, if defined.
    public func function(module: String, name: String) -> HostFunction? {
        table["\(module).\(name)"]
    }

    /// Whether the linker defines nothing.
    var isEmpty: Bool { table.isEmpty && instanceNames.isEmpty }
}
