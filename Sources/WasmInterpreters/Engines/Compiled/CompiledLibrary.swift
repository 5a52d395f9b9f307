import CFuturesShims
import Futures
import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// One module compiled to native code: its shared object, loaded, and its entry points.
///
/// A library is loaded once per process and module and never unloaded (instances in any
/// interpreter may still point into it). Every instance lives in a "box" the host allocates:
/// the runtime's header (stack limit, host table) followed by the generated instance struct.
final class CompiledLibrary: @unchecked Sendable {
    typealias Instantiate = @convention(c) (UnsafeMutableRawPointer?, UInt) -> Int32
    typealias Release = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias Lookup = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?
    typealias Invoke = @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafeMutablePointer<UInt64>?, UInt) -> Int32

    /// An exported function: its index in the glue's switch and its signature.
    struct Export {
        let index: UInt32
        let parameters: [ValueType]
        let results: [ValueType]
        /// Whether every parameter and result is a number, so that values can cross.
        let isCallable: Bool
    }

    let path: String
    let boxSize: Int
    let exports: [String: Export]
    /// The module's start function, exported by the fuel metering.
    let start: Export?
    let instantiate: Instantiate
    let release: Release
    let memory: Lookup
    let fuel: Lookup
    let invoke: Invoke

    private init(path: String, handle: UnsafeMutableRawPointer, exports: [String: Export], start: Export?) throws(ModuleError) {
        func symbol<T>(_ name: String, as type: T.Type) throws(ModuleError) -> T {
            guard let pointer = dlsym(handle, name) else {
                throw ModuleError(.invalid, "the compiled guest \(path) lacks its entry point \(name)")
            }
            return unsafeBitCast(pointer, to: type)
        }
        self.path = path
        self.exports = exports
        self.start = start
        let size = try symbol("cf_box_size", as: (@convention(c) () -> UInt).self)
        boxSize = Int(size())
        instantiate = try symbol("cf_instantiate", as: Instantiate.self)
        release = try symbol("cf_release", as: Release.self)
        memory = try symbol("cf_memory", as: Lookup.self)
        fuel = try symbol("cf_fuel", as: Lookup.self)
        invoke = try symbol("cf_call", as: Invoke.self)
        let threadState: @convention(c) () -> UnsafeMutableRawPointer? = cf_compiled_thread_state
        try symbol("cf_module_init", as: (@convention(c) ((@convention(c) () -> UnsafeMutableRawPointer?)?) -> Void).self)(threadState)
    }

    /// The libraries loaded in this process, by module id and by cache key.
    private struct Registry {
        var byModule: [Int: CompiledLibrary] = [:]
        var byKey: [String: CompiledLibrary] = [:]
    }

    private static let registry = Locked(Registry())
    /// Builds are serialized in a process; processes coordinate through atomic renames.
    private static let building = Locked(())

    /// The library for `module`, loading (and if needed building) it.
    static func load(_ module: GuestModule) throws(ModuleError) -> CompiledLibrary {
        if let library = registry.withLock({ $0.byModule[module.id] }) { return library }
        let loaded = building.withLock { _ in
            Result { () throws(ModuleError) -> CompiledLibrary in
                if let library = registry.withLock({ $0.byModule[module.id] }) { return library }
                let key = cacheKey(module)
                if let library = registry.withLock({ $0.byKey[key] }) {
                    registry.withLock { $0.byModule[module.id] = library }
                    return library
                }
                let (exports, start) = exportTable(module)
                let path = try locateOrBuild(module, key: key)
                guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                    let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
                    throw ModuleError(.invalid, "cannot load the compiled guest \(path): \(reason)")
                }
                let library = try CompiledLibrary(path: path, handle: handle, exports: exports, start: start)
                registry.withLock {
                    $0.byKey[key] = library
                    $0.byModule[module.id] = library
                }
                return library
            }
        }
        return try loaded.get()
    }

    /// What a cache entry depends on besides the tools: the module, the runtime, the glue and
    /// the flags.
    private static func cacheKey(_ module: GuestModule) -> String {
        var hasher = SHA256()
        hasher.update(module.wasmBytes)
        hasher.update(Array("\0\(CompiledGlue.version)\0\(compilerFlags.joined(separator: " "))\0".utf8))
        hasher.update(PackageResources.wasm_rt_h)
        hasher.update(PackageResources.cf_rt_c)
        return String(hasher.finish().prefix(40))
    }

    /// How every compiled guest is built. No warnings, but one error: a function whose native frame
    /// is over 64 KiB (the runtime's stack reserve counts on it; see `cf-rt.c`).
    static let compilerFlags = [
        "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-strict-aliasing", "-DNDEBUG", "-Wno-everything",
        "-Wframe-larger-than=\(maxFrameBytes)", "-Werror=frame-larger-than",
    ]

    /// The largest native stack frame a compiled guest function may have.
    static let maxFrameBytes = 64 << 10

    /// The exports in the glue's order (sorted by name; the start function last).
    private static func exportTable(_ module: GuestModule) -> ([String: Export], Export?) {
        var exports: [String: Export] = [:]
        for (index, function) in module.functions.enumerated() {
            let parameters = function.parameters.compactMap(valueType)
            let results = function.results.compactMap(valueType)
            let callable = parameters.count == function.parameters.count && results.count == function.results.count
            exports[function.name] = Export(index: UInt32(index), parameters: parameters, results: results, isCallable: callable)
        }
        let start = module.hasStartFunction
            ? Export(index: UInt32(module.functions.count), parameters: [], results: [], isCallable: true) : nil
        return (exports, start)
    }

    private static func valueType(_ name: String) -> ValueType? {
        switch name {
        case "i32": .i32
        case "i64": .i64
        case "f32": .f32
        case "f64": .f64
        default: nil
        }
    }

    /// The cached shared object for `key`, built now if there is none.
    private static func locateOrBuild(_ module: GuestModule, key: String) throws(ModuleError) -> String {
        let directory = CompiledEngine.cacheDirectory
        // The cache holds native code this process will load: another user must not be able to
        // put files there.
        var status = stat()
        if stat(directory, &status) == 0,
            (status.st_uid != getuid() && status.st_uid != 0) || status.st_mode & 0o022 != 0
        {
            throw ModuleError(
                .engineUnavailable,
                "the compiled engine's cache \(directory) is owned or writable by another user; it will not load code from it")
        }
        guard let tools = Toolchain.current else {
            // No compiler: any entry for this module, whatever tools built it.
            if let entries = try? listDirectory(directory), let entry = entries.sorted().first(where: { $0.hasPrefix(key + "-") && $0.hasSuffix(".so") }) {
                return directory + "/" + entry
            }
            throw ModuleError(.engineUnavailable, "\(module.name) cannot run on the compiled engine: \(Toolchain.missingMessage)")
        }
        let path = "\(directory)/\(key)-\(tools.identity).so"
        if access(path, R_OK) == 0 { return path }
        try build(module, tools: tools, directory: directory, path: path)
        return path
    }

    /// Translates and compiles `module` into `path`.
    private static func build(_ module: GuestModule, tools: Toolchain, directory: String, path: String) throws(ModuleError) {
        guard makeDirectories(directory) else {
            throw ModuleError(.engineUnavailable, "cannot create the compiled engine's cache directory \(directory)")
        }
        var template = Array("\(directory)/build-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ModuleError(.engineUnavailable, "cannot create a build directory in \(directory)")
        }
        let work = String(cString: made)
        defer { removeTree(work) }
        let metered: FuelMetering.Output
        do {
            metered = try FuelMetering.instrument(module.wasmBytes)
        } catch {
            throw ModuleError(.invalid, "\(module.name) cannot be compiled: \(error)")
        }
        guard writeFile(work + "/m.wasm", metered.bytes), writeFile(work + "/wasm-rt.h", PackageResources.wasm_rt_h),
            writeFile(work + "/cf-rt.c", PackageResources.cf_rt_c),
            writeFile(work + "/glue.c", Array(CompiledGlue.source(for: module, hasStart: metered.hasStart).utf8))
        else { throw ModuleError(.engineUnavailable, "cannot write the build files in \(work)") }
        let translated = Toolchain.run(tools.wasm2c, ["-n", "m", work + "/m.wasm", "-o", work + "/m.c"], logPath: work + "/wasm2c.log")
        guard translated.status == 0 else {
            throw ModuleError(.invalid, "wasm2c could not translate \(module.name): \(translated.output)")
        }
        // The fuel counter must be read and written on every charge, as the watchdog writes it
        // from another thread: without `volatile`, the optimizer may keep it in a register or
        // compute a pure loop's exit (running out of fuel at once).
        guard case .success(let header) = readFile(work + "/m.h"),
            let edited = CompiledGlue.makeFuelVolatile(String(decoding: header, as: UTF8.self)),
            writeFile(work + "/m.h", Array(edited.utf8))
        else { throw ModuleError(.invalid, "wasm2c's translation of \(module.name) lacks the fuel counter") }
        let temporary = work + "/m.so"
        let compiled = Toolchain.run(
            tools.compiler,
            compilerFlags + ["-I", work, "-o", temporary, work + "/m.c", work + "/glue.c", work + "/cf-rt.c", "-lm"],
            logPath: work + "/cc.log")
        guard compiled.status == 0 else {
            if compiled.output.contains("frame-larger-than") {
                throw ModuleError(
                    .unsupportedFeature,
                    "\(module.name) has a function that needs more than \(maxFrameBytes >> 10) KiB of native stack for one "
                        + "call (too many locals or values in flight); the compiled engine refuses it, WasmKit runs it: "
                        + String(compiled.output.prefix(300)))
            }
            throw ModuleError(.invalid, "the compiler could not compile \(module.name): \(compiled.output)")
        }
        guard rename(temporary, path) == 0 else {
            throw ModuleError(.engineUnavailable, "cannot move the compiled guest into \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) -> Bool {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, 0o755) != 0, errno != EEXIST { return false }
    }
    return true
}

/// Writes `bytes` to a new file at `path`.
func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
    guard let file = fopen(path, "wb") else { return false }
    defer { fclose(file) }
    return bytes.isEmpty || fwrite(bytes, 1, bytes.count, file) == bytes.count
}

/// The names in a directory.
func listDirectory(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else { throw ModuleError(.unreadable, "cannot read \(path)") }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Removes a build directory and the files in it.
func removeTree(_ path: String) {
    for name in (try? listDirectory(path)) ?? [] { unlink(path + "/" + name) }
    rmdir(path)
}
