public import Futures
import Synchronization
import WAT
@_spi(Fuzzing) import WasmKit
import WasmParser

/// A WebAssembly module, parsed and validated once, that interpreters load: the analog of a
/// Python module a function is imported from.
///
/// Creating one parses the bytes, validates every function body, checks that everything the
/// module imports is something the host provides (the `cf` host functions of the guest ABI, and
/// WASI preview 1 for programs built for `wasm32-wasi`, see ``WASIOptions``), and records its
/// exports. Pools share one `GuestModule` between all their workers; each worker
/// instantiates it in its own interpreter, with its own memory and globals.
public final class GuestModule: Sendable {
    /// The module's name (the file name or a name you gave it).
    public let name: String
    /// The module's bytes.
    public let wasmBytes: [UInt8]
    /// A process-unique id.
    public let id: Int
    /// A 64-bit FNV-1a digest of the bytes, in hex (worked out on first use: a module of many
    /// megabytes that nobody asks for it loads without it).
    public var digest: String {
        digestStorage.withLock { digest in
            if let digest { return digest }
            let computed = fnv1a(wasmBytes)
            digest = computed
            return computed
        }
    }
    private let digestStorage = Locked<String?>(nil)
    /// The functions the module exports, with their WebAssembly signatures, sorted by name.
    public let functions: [GuestExport]
    /// Everything the module imports.
    public let imports: [GuestImport]
    /// The module's own and imported memories.
    public let memories: [GuestMemoryInfo]
    /// For a module built for WASI (one that imports `wasi_snapshot_preview1`, or exports `_start`
    /// or `_initialize`): whether it is a command (it exports `_start`) or a reactor; `nil` for
    /// other modules.
    public let wasiKind: WASIKind?
    /// What the module may reach through WASI and where its output goes (used only when
    /// ``wasiKind`` is not `nil`).
    public let wasi: WASIOptions
    /// The host functions and linked instances the module's imports may name besides `cf` and
    /// WASI (see ``Linker``).
    public let linker: Linker

    let parsed: WasmKit.Module
    /// The type of each exported global, by export name (`nil` for a reference or vector).
    let globalTypes: [String: WasmValueType?]
    /// Whether the module has a start function.
    let hasStartFunction: Bool
    /// Whether the module exports a memory named `memory`.
    let exportsMemory: Bool
    /// The names of the WASI preview 1 functions the module imports.
    let wasiImports: Set<String>
    /// How many functions, types, globals and bytes of data it has.
    let sizes: ModuleSizes
    /// Whether WasmKit validated every function body at load. A module loaded for the compiled
    /// engine only leaves that to the engine's build (wasm2c validates the module it translates,
    /// and a cached entry was built from these very bytes); WasmKit refuses to run it.
    let bodiesValidated: Bool
    /// What the compiled engine knows of the module in this process.
    let compiled = Locked(CompiledModuleState())

    /// Parses and validates `bytes`.
    ///
    /// - Parameter limits: What loading may cost: modules over ``InterpreterLimits/maxModuleBytes``
    ///   are refused before parsing, and initial memory and tables over
    ///   ``InterpreterLimits/memoryBytes`` before they are allocated. Give the limits of the
    ///   interpreters that will run the module when they are larger than the defaults.
    /// - Throws: ``ModuleError`` `.malformed` when the bytes are not a module, `.invalid` when it
    ///   fails validation, `.missingImports` (naming every one) when it imports what the host does
    ///   not provide, `.unsupportedFeature` when it uses exception handling, `.tooLarge` when it
    ///   exceeds `limits`, `.invalidOptions` when `wasi` names a preopened directory that is not
    ///   one.
    /// - Parameter wasi: For a WASI module, what its calls may reach and where their output goes
    ///   (``WASIOptions/default`` unless given); other modules ignore it.
    /// - Parameter linker: The host functions (and linked instances) its other imports name. An
    ///   import that none provides, or whose signature differs, fails the load with
    ///   `.missingImports`; a host function with more than one result, with `.invalidOptions`.
    public convenience init(
        bytes: [UInt8], name: String = "module", limits: InterpreterLimits = .default, wasi: WASIOptions = .default,
        linker: Linker = Linker()
    ) throws(ModuleError) {
        try self.init(bytes: bytes, name: name, limits: limits, wasi: wasi, linker: linker, compiledEngineOnly: false)
    }

    /// Parses and checks `bytes` as the public initializer does; with `compiledEngineOnly`, function
    /// bodies are not translated by WasmKit (most of a large module's load time): the module then
    /// runs on ``GuestEngine/compiled`` only, whose build validates it.
    ///
    /// - Throws: ``ModuleError``, as the public initializer.
    package init(
        bytes: [UInt8], name: String, limits: InterpreterLimits, wasi: WASIOptions, linker: Linker = Linker(), compiledEngineOnly: Bool
    ) throws(ModuleError) {
        guard bytes.count <= limits.maxModuleBytes else {
            throw ModuleError(
                .tooLarge, "\(name) is \(bytes.count) bytes, over the module size limit of \(limits.maxModuleBytes) bytes")
        }
        let structure = ModuleStructure(bytes)
        let parsed = try Self.parse(structure.removingBadNameSections(from: bytes) ?? bytes, name: name)
        if let feature = structure.unsupportedFeature {
            throw ModuleError(
                .unsupportedFeature,
                "\(name) uses \(feature), which this host does not run: rebuild the guest without exceptions "
                    + "(for C, -fno-exceptions; Embedded Swift never emits them)")
        }
        if structure.startIsOutOfRange {
            throw ModuleError(.invalid, "\(name) failed validation: its start section names a function it does not have")
        }
        if let start = structure.startType, !start.parameters.isEmpty || !start.results.isEmpty {
            // The validator would refuse it only when the module is instantiated (WasmKit) or never
            // (the compiled engine): refused here, at load, on every engine.
            throw ModuleError(
                .invalid,
                "\(name) failed validation: its start function has type \(signatureText(start)); a start function "
                    + "takes and returns nothing")
        }
        self.name = name
        wasmBytes = bytes
        id = GuestModule.nextID.wrappingAdd(1, ordering: .relaxed).newValue
        self.parsed = parsed
        hasStartFunction = structure.hasStart
        exportsMemory = structure.exportsMemory
        sizes = structure.sizes
        bodiesValidated = !compiledEngineOnly
        if let wide = linker.functions.first(where: { $0.results.count > 1 }) {
            throw ModuleError(.invalidOptions, "the host function \(wide) returns more than one value; host functions return none or one")
        }
        let inspection = try GuestModule.inspect(parsed, name: name, limits: limits, linker: linker, validatingBodies: bodiesValidated)
        functions = inspection.functions
        globalTypes = inspection.globalTypes
        self.linker = linker
        imports = inspection.imports
        memories = inspection.memories
        // A WASI program imports WASI, or exports the entry point of one (a reactor that uses
        // nothing of WASI still needs its `_initialize`).
        let entryPoints = functions.filter { $0.name == "_start" || $0.name == "_initialize" }.map(\.name)
        if imports.contains(where: { $0.module == WASIHost.moduleName }) || !entryPoints.isEmpty {
            wasiKind = entryPoints.contains("_start") ? .command : .reactor
            try Self.validate(wasi, name: name)
        } else {
            wasiKind = nil
        }
        self.wasi = wasi
        wasiImports = Set(imports.filter { $0.module == WASIHost.moduleName }.map(\.name))
    }

    /// A copy of `module` with other WASI options (a new module id: its instances are separate).
    private init(copying module: GuestModule, wasi: WASIOptions) {
        name = module.name
        wasmBytes = module.wasmBytes
        id = GuestModule.nextID.wrappingAdd(1, ordering: .relaxed).newValue
        digestStorage.withLock { $0 = module.digestStorage.withLock { $0 } }
        parsed = module.parsed
        hasStartFunction = module.hasStartFunction
        exportsMemory = module.exportsMemory
        sizes = module.sizes
        bodiesValidated = module.bodiesValidated
        functions = module.functions
        globalTypes = module.globalTypes
        linker = module.linker
        imports = module.imports
        memories = module.memories
        wasiKind = module.wasiKind
        wasiImports = module.wasiImports
        self.wasi = wasi
    }

    /// The same module with other WASI capabilities, output destination or defaults. The result
    /// is a separate module: interpreters instantiate it on its own.
    ///
    /// - Throws: ``ModuleError`` `.invalidOptions` when a preopened directory is not one.
    public func withWASI(_ options: WASIOptions) throws(ModuleError) -> GuestModule {
        if wasiKind != nil { try Self.validate(options, name: name) }
        return GuestModule(copying: self, wasi: options)
    }

    /// The command of a WASI module (its `_start`): each call runs the program once, in a fresh
    /// instance, and returns its exit status with its output. Give arguments, environment and
    /// standard input per call with ``GuestFunction/withArguments(_:)``,
    /// ``GuestFunction/withEnvironment(_:)`` and ``GuestFunction/withStdin(_:)``.
    ///
    /// - Throws: ``ModuleError`` `.noSuchExport` when the module is not a WASI command.
    public func command() throws(ModuleError) -> GuestFunction<GuestOutput<Int32>> {
        guard wasiKind == .command else {
            throw ModuleError(.noSuchExport, "\(name) is not a WASI command: it has no _start to run")
        }
        return GuestFunction<Int32>(module: self, name: "_start").capturingOutput()
    }

    /// The command of a WASI module kept running between calls: each interpreter starts the
    /// program once (its `_start`, with the function's arguments and environment) and keeps it,
    /// and each call is one exchange with it. The call's standard input
    /// (``GuestFunction/withStdin(_:)``) is handed to the program, and the call ends when the
    /// program has read all of it and asks for more: the result is what it wrote meanwhile, and
    /// its value the exchange's number in this run of the program (1 when the program started
    /// for this call). This is how an interpreter with a costly start-up (CPython's
    /// `python.wasm`, reading one script after another) serves calls without starting again.
    ///
    /// State persists between the calls an interpreter serves, as in a CPython
    /// `InterpreterPoolExecutor` worker. The call's fuel and time limits apply to each exchange.
    /// A program that traps, runs out of fuel or time, or exits during an exchange fails that call
    /// (an exit as ``GuestError/Kind-swift.struct/exited``) and is started afresh for the next;
    /// so is one whose arguments or environment change. A resident program has the resource
    /// limits of the interpreter that runs it, apart from the interpreter's other instances; it
    /// ends, at its next read of standard input, when its interpreter is closed.
    ///
    /// - Throws: ``ModuleError`` `.noSuchExport` when the module is not a WASI command.
    public func residentCommand() throws(ModuleError) -> GuestFunction<GuestOutput<Int>> {
        guard wasiKind == .command else {
            throw ModuleError(.noSuchExport, "\(name) is not a WASI command: it has no _start to run")
        }
        return GuestFunction<Int>(
            module: self, name: "_start", fuel: nil, timeLimit: nil, wasi: WASICallOptions(capture: true, resident: true)
        )
        .returning(GuestOutput<Int>.self)
    }

    private static func validate(_ options: WASIOptions, name: String) throws(ModuleError) {
        for preopen in options.preopens {
            var status = stat()
            guard stat(preopen.hostPath, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
                throw ModuleError(.invalidOptions, "\(name): the preopened directory \(preopen.hostPath) does not exist or is not a directory")
            }
            guard preopen.guestPath.hasPrefix("/") || preopen.guestPath == "." else {
                throw ModuleError(.invalidOptions, "\(name): the guest path \(preopen.guestPath) of a preopen must be absolute")
            }
        }
    }

    /// Compiles WebAssembly text (WAT) into module bytes, without loading them.
    ///
    /// - Throws: ``ModuleError`` `.malformed` when the text does not parse.
    public static func compile(wat: String, name: String = "module") throws(ModuleError) -> [UInt8] {
        do {
            return try wat2wasm(wat)
        } catch {
            throw ModuleError(.malformed, "\(name) is not valid WAT: \(error)")
        }
    }

    /// Compiles WebAssembly text (WAT) and loads the result.
    ///
    /// - Throws: ``ModuleError`` `.malformed` when the text does not parse, or what
    ///   ``init(bytes:name:limits:)`` throws.
    public convenience init(
        wat: String, name: String = "module", limits: InterpreterLimits = .default, wasi: WASIOptions = .default,
        linker: Linker = Linker()
    ) throws(ModuleError) {
        try self.init(bytes: GuestModule.compile(wat: wat, name: name), name: name, limits: limits, wasi: wasi, linker: linker)
    }

    /// Reads and loads a `.wasm` (or `.wat`) file.
    ///
    /// - Throws: ``ModuleError`` `.unreadable` when the file cannot be read, `.tooLarge` when it is
    ///   larger than ``InterpreterLimits/maxModuleBytes`` (checked before reading), or what
    ///   ``init(bytes:name:limits:)`` throws.
    public convenience init(
        contentsOf path: String, limits: InterpreterLimits = .default, wasi: WASIOptions = .default, linker: Linker = Linker()
    ) throws(ModuleError) {
        let name = String(path.split(separator: "/").last ?? Substring(path))
        let bytes: [UInt8]
        switch readFile(path, maxBytes: limits.maxModuleBytes) {
        case .success(let contents): bytes = contents
        case .failure(.tooLarge(let size)):
            throw ModuleError(.tooLarge, "\(path) is \(size) bytes, over the module size limit of \(limits.maxModuleBytes) bytes")
        case .failure(.unreadable):
            throw ModuleError(.unreadable, "cannot read \(path)")
        }
        if path.hasSuffix(".wat") {
            try self.init(wat: String(decoding: bytes, as: UTF8.self), name: name, limits: limits, wasi: wasi, linker: linker)
        } else {
            try self.init(bytes: bytes, name: name, limits: limits, wasi: wasi, linker: linker)
        }
    }

    /// A typed handle to the exported function `name`, returning `Success`.
    ///
    /// - Throws: ``ModuleError`` `.noSuchExport` when the module exports no function `name`.
    public func function<Success: Shareable>(_ name: String, returning type: Success.Type = Success.self) throws(ModuleError) -> GuestFunction<
        Success
    > {
        guard functions.contains(where: { $0.name == name }) else {
            let known = functions.map(\.name).joined(separator: ", ")
            throw ModuleError(.noSuchExport, "\(self.name) exports no function '\(name)' (it exports: \(known))")
        }
        return GuestFunction(module: self, name: name)
    }

    /// The exported function `name`, if there is one.
    public func export(named name: String) -> GuestExport? {
        functions.first { $0.name == name }
    }

    private static let nextID = Atomic<Int>(0)
}

/// The two kinds of WASI program.
public enum WASIKind: String, Sendable, Hashable {
    /// A program with `_start` (a C `main`): it runs once per instance and exits with a status.
    case command
    /// A library of exported functions, prepared once per instance by `_initialize`.
    case reactor
}

/// An exported function and its WebAssembly signature.
public struct GuestExport: Sendable, Hashable, CustomStringConvertible {
    /// The export's name.
    public let name: String
    /// Parameter types, as WAT names (`i32`, `i64`, `f32`, `f64`).
    public let parameters: [String]
    /// Success types, as WAT names.
    public let results: [String]

    /// `name(i64, i64) -> i64`.
    public var description: String {
        "\(name)(\(parameters.joined(separator: ", ")))" + (results.isEmpty ? "" : " -> " + results.joined(separator: ", "))
    }
}

/// Something a module imports.
public struct GuestImport: Sendable, Hashable, CustomStringConvertible {
    /// The import's module, such as `cf`.
    public let module: String
    /// The import's name.
    public let name: String
    /// `function`, `memory`, `table`, `global` or `tag`.
    public let kind: String
    /// The function signature, for function imports.
    public let signature: String?
    /// Whether the host provides it.
    public let isProvided: Bool

    /// `cf.log (function (i32, i32))`.
    public var description: String { "\(module).\(name) (\(kind)\(signature.map { " \($0)" } ?? ""))" }
}

/// A memory a module defines or imports.
public struct GuestMemoryInfo: Sendable, Hashable {
    /// Initial size in 64 KiB pages.
    public let minimumPages: UInt64
    /// Maximum size in pages, if declared.
    public let maximumPages: UInt64?
    /// Whether the memory is imported.
    public let isImported: Bool
}

extension GuestModule {
    struct Inspection {
        var functions: [GuestExport] = []
        var globalTypes: [String: WasmValueType?] = [:]
        var imports: [GuestImport] = []
        var memories: [GuestMemoryInfo] = []
    }

    /// Checks imports, validates every function body by instantiating the module once in a
    /// scratch store with eager compilation (start function skipped; with `validatingBodies`
    /// false, compilation is lazy and the bodies are left alone), and lists exports.
    static func inspect(
        _ module: WasmKit.Module, name: String, limits: InterpreterLimits, linker: Linker, validatingBodies: Bool
    ) throws(ModuleError) -> Inspection {
        var inspection = Inspection()
        let imported = classifyImports(of: module, linker: linker)
        inspection.imports = imported.imports
        inspection.memories = imported.memories
        let missing = imported.imports.filter { !$0.isProvided }.map { entry in
            if entry.module == HostImports.moduleName, let expected = HostImports.signatures[entry.name] {
                return "\(entry.module).\(entry.name) (expected \(signatureText(expected)), got \(entry.signature ?? entry.kind))"
            }
            if entry.module == WASIHost.moduleName, let expected = WASIHost.signatures[entry.name] {
                return "\(entry.module).\(entry.name) (expected \(signatureText(expected)), got \(entry.signature ?? entry.kind))"
            }
            if let function = linker.function(module: entry.module, name: entry.name) {
                return "\(entry.module).\(entry.name) (expected \(signatureText(function.wasmKitType)), got \(entry.signature ?? entry.kind))"
            }
            return "\(entry.module).\(entry.name) (\(entry.kind))"
        }
        if !missing.isEmpty {
            let defined = linker.functions.map(\.qualifiedName)
            throw ModuleError(
                .missingImports,
                "\(name) cannot load in an interpreter: it imports what the host does not provide: "
                    + missing.joined(separator: ", ")
                    + (defined.isEmpty ? " (no host functions are defined)" : " (host functions defined: \(defined.joined(separator: ", ")))"),
                missingImports: missing.map { String($0.prefix { $0 != " " }) })
        }

        var scratch = module
        scratch.dropStartFunction()
        let engine = Engine(
            configuration: EngineConfiguration(compilationMode: validatingBodies ? .eager : .lazy, memoryBoundsChecking: .software))
        let store = Store(engine: engine)
        // The scratch instance allocates the module's initial memory and tables: the limit
        // applies before they are allocated, as it does in an interpreter.
        let account = ResourceAccount(limit: limits.memoryBytes, action: .failCall)
        store.resourceLimiter = MemoryLimiter(account: account)
        let instance: Instance
        var imports = HostImports.imports(store: store, context: HostContext(interpreterID: -1, account: account))
        WASIHost.defineStubs(into: &imports, store: store)
        defineLinkedStubs(for: module, linker: linker, into: &imports, store: store)
        do {
            instance = try scratch.instantiate(store: store, imports: imports)
        } catch let fault as GuestFault where fault.kind == .memoryLimit {
            throw ModuleError(.tooLarge, "\(name) declares more initial memory and tables than allowed: \(fault.message)")
        } catch {
            throw ModuleError(.invalid, "\(name) failed validation: \(firstLine(of: error))")
        }
        for (exportName, value) in instance.exports {
            switch value {
            case .function(let function):
                let type = function.type
                inspection.functions.append(
                    GuestExport(name: exportName, parameters: type.parameters.map(typeName), results: type.results.map(typeName)))
            case .memory(let memory):
                inspection.memories.append(
                    GuestMemoryInfo(minimumPages: memory.type.min, maximumPages: memory.type.max, isImported: false))
            case .global(let global):
                inspection.globalTypes[exportName] = .some((try? WasmValue(global.value))?.type)
            default:
                break
            }
        }
        inspection.functions.sort { $0.name < $1.name }
        return inspection
    }
}

func typeName(_ type: ValueType) -> String {
    switch type {
    case .i32: "i32"
    case .i64: "i64"
    case .f32: "f32"
    case .f64: "f64"
    case .v128: "v128"
    case .ref: "ref"
    }
}

func signatureText(_ type: FunctionType) -> String {
    "(\(type.parameters.map(typeName).joined(separator: ", ")))"
        + (type.results.isEmpty ? "" : " -> " + type.results.map(typeName).joined(separator: ", "))
}

func firstLine(of error: any Error) -> String {
    let text = String(describing: error)
    return String(text.split(separator: "\n", maxSplits: 1).first ?? Substring(text))
}

/// FNV-1a, 64 bits, as 16 hex digits.
func fnv1a(_ bytes: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// Why ``readFile(_:maxBytes:)`` returned nothing.
enum ReadFileError: Error {
    case unreadable
    case tooLarge(Int)
}

/// Reads a whole file of at most `maxBytes` bytes; its size is checked before it is read.
func readFile(_ path: String, maxBytes: Int = .max) -> Result<[UInt8], ReadFileError> {
    guard let file = fopen(path, "rb") else { return .failure(.unreadable) }
    defer { fclose(file) }
    var status = stat()
    if fstat(fileno(file), &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) > maxBytes {
        return .failure(.tooLarge(Int(status.st_size)))
    }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
        if bytes.count > maxBytes { return .failure(.tooLarge(bytes.count)) }
        if count < buffer.count { break }
    }
    return ferror(file) == 0 ? .success(bytes) : .failure(.unreadable)
}

#if canImport(Glibc)
import Glibc
#endif

extension GuestModule {
    /// Parses `bytes` with WasmKit.
    ///
    /// - Throws: ``ModuleError`` `.malformed`, in one sentence: bytes that do not start as
    ///   WebAssembly does are named as such, other faults with the parser's message and offset.
    static func parse(_ bytes: [UInt8], name: String) throws(ModuleError) -> WasmKit.Module {
        guard bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) else {
            throw ModuleError(
                .malformed,
                "\(name) is not a WebAssembly module (it does not start with the bytes \\0asm): give a .wasm file, "
                    + "or WebAssembly text as a .wat file")
        }
        do {
            return try parseWasm(bytes: bytes)
        } catch {
            throw ModuleError(.malformed, "\(name) is not a valid WebAssembly module: \(parserErrorText(error))")
        }
    }
}

/// A WasmKit parser error as plain text: its message and the byte offset where it was found.
/// WasmKit makes neither public (they print as `WasmParserError(kind: .message(Message(text:
/// ...)), location: ...)`), so they are read through reflection; any other error prints as itself.
func parserErrorText(_ error: any Error) -> String {
    var text: String?
    var offset: Int?
    func visit(_ value: Any, depth: Int) {
        guard depth < 6 else { return }
        for child in Mirror(reflecting: value).children {
            if child.label == "text", let found = child.value as? String, text == nil { text = found }
            if child.label == "location", let found = child.value as? Int? { offset = found }
            visit(child.value, depth: depth + 1)
        }
    }
    visit(error, depth: 0)
    guard let text else { return String(describing: error) }
    return offset.map { "\(text) (at byte \($0))" } ?? text
}
