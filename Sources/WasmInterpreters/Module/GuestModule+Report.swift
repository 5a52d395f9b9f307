import Futures
@_spi(Fuzzing) import WasmKit

/// What a module contains and whether it can load in an interpreter: `futures inspect`.
public struct ModuleReport: Sendable {
    /// The module's name.
    public let name: String
    /// Its size in bytes.
    public let byteCount: Int
    /// A 64-bit FNV-1a digest of its bytes, in hex.
    public let digest: String
    /// The exported functions and their signatures.
    public let functions: [GuestExport]
    /// Everything it imports, each marked provided or not.
    public let imports: [GuestImport]
    /// The memories it defines or imports.
    public let memories: [GuestMemoryInfo]
    /// Why it cannot load in an interpreter (missing imports, failed validation), or `nil`.
    public let loadError: ModuleError?
    /// For a WASI program: a command or a reactor; `nil` when the module does not use WASI.
    public let wasiKind: WASIKind?
    /// The groups of WASI functions the module imports, by name (`arguments`, `clocks`,
    /// `random`, `stdio`, `process`, `poll`, `fileSystem`, `sockets`), sorted. Which of them
    /// a call may use is the caller's choice (``WASIOptions``); `sockets` are never granted.
    public let wasiNeeds: [String]

    /// Whether an interpreter can load it.
    public var canLoad: Bool { loadError == nil }
}

extension GuestModule {
    /// Describes a module without requiring that it loads: exports with their signatures, imports
    /// (provided or missing), memories and limits, and the reason it cannot load, if any.
    ///
    /// - Throws: ``ModuleError`` `.malformed` when the bytes are not a WebAssembly module.
    public static func report(bytes: [UInt8], name: String = "module") throws(ModuleError) -> ModuleReport {
        let parsed = try GuestModule.parse(bytes, name: name)
        let structure = ModuleStructure(bytes)
        let imported = GuestModule.classifyImports(of: parsed)
        var typeIndices = imported.functionTypeIndices
        let imports = imported.imports
        var memories = imported.memories
        typeIndices += structure.functionTypeIndices
        memories += structure.memories
        var functions: [GuestExport] = []
        for export in parsed.exports {
            guard case .function(let index) = export.descriptor, Int(index) < typeIndices.count,
                let type = parsed.functionType(at: typeIndices[Int(index)])
            else { continue }
            functions.append(GuestExport(name: export.name, parameters: type.parameters.map(typeName), results: type.results.map(typeName)))
        }
        var loadError: ModuleError?
        var wasiKind: WASIKind?
        do {
            wasiKind = try GuestModule(bytes: bytes, name: name).wasiKind
        } catch {
            loadError = error
        }
        let needs = Set(imports.filter { $0.module == WASIHost.moduleName }.map { wasiGroup(of: $0.name) })
        return ModuleReport(
            name: name, byteCount: bytes.count, digest: fnv1a(bytes), functions: functions.sorted { $0.name < $1.name },
            imports: imports, memories: memories, loadError: loadError, wasiKind: wasiKind, wasiNeeds: needs.sorted())
    }

    /// The capability group of a WASI preview 1 function.
    static func wasiGroup(of name: String) -> String {
        if name.hasPrefix("args_") || name.hasPrefix("environ_") { return "arguments" }
        if name.hasPrefix("clock_") { return "clocks" }
        if name == "random_get" { return "random" }
        if name == "proc_exit" || name == "proc_raise" || name == "sched_yield" { return "process" }
        if name == "poll_oneoff" { return "poll" }
        if name.hasPrefix("sock_") { return "sockets" }
        if name.hasPrefix("path_") || name.hasPrefix("fd_prestat") || name == "fd_readdir" { return "fileSystem" }
        return "stdio"
    }
}

extension GuestModule {
    /// What `module` imports, each marked provided by the host or not, with the imported
    /// memories and the type index of each imported function.
    static func classifyImports(
        of module: WasmKit.Module, linker: Linker = Linker()
    ) -> (imports: [GuestImport], memories: [GuestMemoryInfo], functionTypeIndices: [UInt32]) {
        var imports: [GuestImport] = []
        var memories: [GuestMemoryInfo] = []
        var typeIndices: [UInt32] = []
        for entry in module.imports {
            var kind = "function"
            var signature: String?
            var provided = false
            switch entry.descriptor {
            case .function(let typeIndex):
                typeIndices.append(typeIndex)
                let type = module.functionType(at: typeIndex)
                signature = type.map(signatureText)
                provided =
                    (entry.module == HostImports.moduleName && HostImports.signatures[entry.name] == type)
                    || (entry.module == WASIHost.moduleName && WASIHost.signatures[entry.name] == type)
                    || linker.function(module: entry.module, name: entry.name).map { $0.wasmKitType == type } == true
                    || linker.instanceNames.contains(entry.module)
            case .memory(let type):
                kind = "memory"
                provided = linker.instanceNames.contains(entry.module)
                memories.append(GuestMemoryInfo(minimumPages: type.min, maximumPages: type.max, isImported: true))
            case .table: (kind, provided) = ("table", linker.instanceNames.contains(entry.module))
            case .global: (kind, provided) = ("global", linker.instanceNames.contains(entry.module))
            case .tag: kind = "tag"
            }
            imports.append(GuestImport(module: entry.module, name: entry.name, kind: kind, signature: signature, isProvided: provided))
        }
        return (imports, memories, typeIndices)
    }
}
