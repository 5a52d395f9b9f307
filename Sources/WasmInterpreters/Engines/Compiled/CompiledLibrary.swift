import CFuturesShims
import Futures
import Synchronization
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
    typealias Release = @convention(c) (UnsafeMutableRawPointer?) -> Int32
    typealias Lookup = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?
    typealias Invoke = @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafeMutablePointer<UInt64>?, UInt) -> Int32
    typealias GlobalLookup = @convention(c) (UnsafeMutableRawPointer?, UInt32) -> UnsafeMutableRawPointer?
    typealias Initialize = @convention(c) ((@convention(c) () -> UnsafeMutableRawPointer?)?) -> Int32

    /// An exported function: its index in the glue's switch and its signature.
    struct Export {
        let index: UInt32
        let parameters: [ValueType]
        let results: [ValueType]
        /// Whether every parameter and result is a number, so that values can cross.
        let isCallable: Bool
    }

    /// The cache entry it was loaded from.
    let path: String
    let boxSize: Int
    let exports: [String: Export]
    /// The module's start function, exported by the fuel metering.
    let start: Export?
    /// The WASI functions the module imports, by the index the glue gives them (from
    /// `CF_WASI_BASE`).
    let wasiImports: [String]
    /// The functions the module imports from its linker, by the index the glue gives them (from
    /// `CF_IMPORT_BASE`).
    let linkedImports: [CompiledGlue.ImportedFunction]
    /// The exported globals: the glue's index and the type, by name.
    let globals: [String: (index: UInt32, type: WasmValueType)]
    let global: GlobalLookup
    let instantiate: Instantiate
    let release: Release
    let memory: Lookup
    let fuel: Lookup
    let invoke: Invoke

    /// Loads the shared object open as `file` (a checked cache entry), from entry `path`, and
    /// keeps `file` open for as long as the process lives.
    ///
    /// The loader knows a library by the name it was opened with, and `/proc/self/fd/N` would name
    /// another file once `N` is closed and reused: loading that one would return this library.
    /// Every loaded library keeps its descriptor, so no two have the same name. (A library that
    /// failed after loading keeps it too: it stays loaded.)
    private init(module: GuestModule, file: Int32, path: String) throws(ModuleError) {
        guard let handle = dlopen("/proc/self/fd/\(file)", RTLD_NOW | RTLD_LOCAL) else {
            close(file)
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw ModuleError(.engineUnavailable, "cannot load the compiled guest \(path): \(reason)")
        }
        func symbol<T>(_ name: String, as type: T.Type) throws(ModuleError) -> T {
            guard let pointer = dlsym(handle, name) else {
                throw ModuleError(.buildFailed, "the compiled guest \(path) lacks its entry point \(name)")
            }
            return unsafeBitCast(pointer, to: type)
        }
        self.path = path
        (exports, start) = Self.exportTable(module)
        wasiImports = CompiledBuild.wasiImports(of: module).map(\.name)
        linkedImports = CompiledBuild.linkedImports(of: module)
        var globals: [String: (index: UInt32, type: WasmValueType)] = [:]
        for (index, name) in module.globalTypes.keys.sorted().enumerated() {
            if let type = module.globalTypes[name] ?? nil { globals[name] = (UInt32(index), type) }
        }
        self.globals = globals
        global = try symbol("cf_global", as: GlobalLookup.self)
        let size = try symbol("cf_box_size", as: (@convention(c) () -> UInt).self)
        boxSize = Int(size())
        instantiate = try symbol("cf_instantiate", as: Instantiate.self)
        release = try symbol("cf_release", as: Release.self)
        memory = try symbol("cf_memory", as: Lookup.self)
        fuel = try symbol("cf_fuel", as: Lookup.self)
        invoke = try symbol("cf_call", as: Invoke.self)
        // Loads and stores out of bounds fault in the guard range; the handler makes them traps.
        if CompiledBuild.usesGuardPages { cf_guest_faults_install() }
        let threadState: @convention(c) () -> UnsafeMutableRawPointer? = cf_compiled_thread_state
        let trap = try symbol("cf_module_init", as: Initialize.self)(threadState)
        guard trap == 0 else {
            throw ModuleError(
                .buildFailed,
                "the compiled guest \(path) could not initialize (trap \(trap)\(trap == 101 ? ": out of host memory" : ""))")
        }
    }

    /// The exports in the glue's order (sorted by name; the start function last).
    private static func exportTable(_ module: GuestModule) -> ([String: Export], Export?) {
        var exports: [String: Export] = [:]
        for (index, function) in module.functions.enumerated() {
            let parameters = function.parameters.compactMap(valueType)
            let results = function.results.compactMap(valueType)
            let callable = parameters.count == function.parameters.count && results.count == function.results.count
            exports[function.name] = Export(index: UInt32(index), parameters: parameters, results: results, isCallable: callable)
        }
        let start =
            module.hasStartFunction
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

    // MARK: The libraries of this process

    /// A build that failed: the module's cache key and the budget it was built under (a failure
    /// is not retried under the same budget).
    private struct FailureKey: Hashable {
        let key: String
        let budget: CompiledEngine.BuildBudget
    }

    /// The libraries loaded in this process, by cache key, and the builds that failed. What is
    /// known of one module (its key, its library, its entry) lives in the module itself
    /// (``GuestModule/compiled``), and goes with it.
    private struct Registry {
        var byKey: [String: CompiledLibrary] = [:]
        /// Builds that failed; one remembered for a while only until its time is up.
        var failures: [FailureKey: (error: ModuleError, until: Deadline?)] = [:]
        /// Keys whose background build (``GuestEngine/auto``) is queued or running.
        var scheduled: Set<String> = []
        var queue: [(module: GuestModule, key: String, load: Bool)] = []
        var builderRunning = false

        /// The failure remembered for `key` under `budget`, if any (one whose time is up is
        /// forgotten).
        mutating func failure(_ key: FailureKey) -> ModuleError? {
            guard let failure = failures[key] else { return nil }
            if let until = failure.until, until.hasPassed {
                failures[key] = nil
                return nil
            }
            return failure.error
        }

        /// Remembers a failure, the one policy for every caller: for good when building again
        /// would fail the same way; for ten minutes when it was transient, or when it came from
        /// the environment (a cache that cannot be written, a tool not installed yet) and the
        /// build ran in the `background`. A caller who asked for the compiled engine and failed
        /// because of the environment tries again at once next time (it may have been fixed); the
        /// background builder would otherwise try again at every new interpreter.
        mutating func remember(_ error: ModuleError, for key: FailureKey, background: Bool) {
            if error.isTransient {
                failures[key] = (error, Deadline.after(.seconds(600)))
            } else if error.isDeterministicBuildFailure {
                failures[key] = (error, nil)
            } else if background {
                failures[key] = (error, Deadline.after(.seconds(600)))
            }
        }
    }

    // `Locked` (a pthread mutex) rather than `Mutex`, whose futex ThreadSanitizer does not see.
    private static let registry = Locked(Registry())
    /// Bumped when a background build has made a library ready.
    static let readyGeneration = Atomic<Int>(0)
    /// One build or load per key at a time in this process; other keys go on in parallel. Every
    /// library is made and registered inside it, so no module's library is initialized twice.
    private static let gate = KeyedGate()

    /// The library of `module`, loading (and if needed building) it.
    ///
    /// - Throws: What ``CompiledEngine/prepare(_:)`` throws.
    static func load(_ module: GuestModule) throws(ModuleError) -> CompiledLibrary {
        if let library = module.compiled.withLock({ $0.library }) { return library }
        let key = cacheKey(module)
        return try gate.with(key) { () throws(ModuleError) -> CompiledLibrary in
            if let known = registered(module, key: key) { return known }
            let failureKey = FailureKey(key: key, budget: CompiledEngine.budget)
            if let failure = registry.withLock({ $0.failure(failureKey) }) { throw failure }
            do throws(ModuleError) {
                let (file, path) = try entry(for: module, key: key, budget: failureKey.budget, niceness: 0)
                return try register(module, key: key, file: file, path: path)
            } catch {
                registry.withLock { $0.remember(error, for: failureKey, background: false) }
                throw error
            }
        }
    }

    /// Builds `module`'s cache entry unless it exists, without loading it; returns its path.
    /// Known once per process and module, failures included (under the same budget).
    @discardableResult
    static func buildEntry(_ module: GuestModule) throws(ModuleError) -> String {
        if let path = module.compiled.withLock({ $0.library?.path ?? $0.entry }) { return path }
        let key = cacheKey(module)
        return try gate.with(key) { () throws(ModuleError) -> String in
            if let path = module.compiled.withLock({ $0.library?.path ?? $0.entry }) { return path }
            let failureKey = FailureKey(key: key, budget: CompiledEngine.budget)
            if let failure = registry.withLock({ $0.failure(failureKey) }) { throw failure }
            do throws(ModuleError) {
                let (file, path) = try entry(for: module, key: key, budget: failureKey.budget, niceness: 0)
                close(file)
                module.compiled.withLock { $0.entry = path }
                return path
            } catch {
                registry.withLock { $0.remember(error, for: failureKey, background: false) }
                throw error
            }
        }
    }

    /// The library already loaded for `key`, recorded in `module` too. Called inside the gate.
    private static func registered(_ module: GuestModule, key: String) -> CompiledLibrary? {
        guard let library = registry.withLock({ $0.byKey[key] }) else { return nil }
        module.compiled.withLock { $0.library = library }
        return library
    }

    /// Loads the entry open as `file` and registers it for `key` and in `module`. Called inside
    /// the gate, after ``registered(_:key:)`` found nothing.
    private static func register(_ module: GuestModule, key: String, file: Int32, path: String) throws(ModuleError)
        -> CompiledLibrary
    {
        let library = try CompiledLibrary(module: module, file: file, path: path)
        registry.withLock { $0.byKey[key] = library }
        module.compiled.withLock {
            $0.library = library
            $0.entry = path
        }
        return library
    }

    /// A checked entry for `module`: found, or built now. Returns its open descriptor and path.
    private static func entry(
        for module: GuestModule, key: String, budget: CompiledEngine.BuildBudget, niceness: Int32
    ) throws(ModuleError) -> (Int32, String) {
        let cache = try CompiledCache.current()
        guard let tools = Toolchain.current else {
            // No compiler: any checked entry for this module, whatever tools built it.
            for name in cache.entries(withPrefix: key + "-") {
                if case .valid(let file) = cache.openEntry(name) { return (file, "\(cache.path)/\(name).so") }
            }
            throw ModuleError(.engineUnavailable, "\(module.name) cannot run on the compiled engine: \(Toolchain.missingMessage)")
        }
        let name = "\(key)-\(tools.identity)"
        let path = "\(cache.path)/\(name).so"
        if case .valid(let file) = cache.openEntry(name) { return (file, path) }
        try CompiledBuild.checkCaps(module, budget: budget)
        let deadline = Deadline.after(budget.wallTime) ?? .now
        // Another process may be building it: wait for it, within this build's budget.
        guard let lock = try cache.lock(key, until: deadline) else {
            var error = ModuleError(
                .buildFailed,
                "\(module.name): another process was still building it when this build's budget ran out "
                    + "(CompiledEngine.BuildBudget.wallTime)")
            error.isTransient = true
            throw error
        }
        defer { close(lock) }
        if case .valid(let file) = cache.openEntry(name) { return (file, path) }
        try CompiledBuild.build(module, tools: tools, cache: cache, as: name, budget: budget, deadline: deadline, niceness: niceness)
        switch cache.openEntry(name) {
        case .valid(let file): return (file, path)
        case .bad(let reason): throw ModuleError(.engineUnavailable, "the entry just built for \(module.name) is bad: \(reason)")
        case .missing: throw ModuleError(.engineUnavailable, "the entry just built for \(module.name) is gone from \(cache.path)")
        }
    }

    /// What a cache entry depends on besides the tools: the module, the runtime, the glue, the
    /// metering (its version and prices), the build's edits of the generated code, and the flags.
    /// Known once per module and process.
    static func cacheKey(_ module: GuestModule) -> String {
        if let key = module.compiled.withLock({ $0.key }) { return key }
        var hasher = SHA256()
        hasher.update(module.wasmBytes)
        hasher.update(Array(runtimeDigest.utf8))
        let key = String(hasher.finish().prefix(40))
        module.compiled.withLock { $0.key = key }
        return key
    }

    /// The digest of what every entry shares: the runtime's sources and the build's settings.
    private static let runtimeDigest: String = {
        var hasher = SHA256()
        let settings = [
            CompiledGlue.version, FuelMetering.version, CompiledBuild.version, CompiledBuild.compilerFlags.joined(separator: " "),
            String(FuelMetering.tableElementStride),
        ].joined(separator: "\0")
        hasher.update(Array(("\0" + settings + "\0").utf8))
        hasher.update(PackageResources.wasm_rt_h)
        hasher.update(PackageResources.cf_rt_c)
        return hasher.finish()
    }()

    // MARK: GuestEngine.auto

    /// Whether `module` runs compiled now under ``GuestEngine/auto`` (see
    /// ``CompiledEngine/autoPlacement(of:)``).
    static func autoPlacement(of module: GuestModule) -> Bool {
        if module.compiled.withLock({ $0.library != nil }) { return true }
        let key = cacheKey(module)
        let failureKey = FailureKey(key: key, budget: CompiledEngine.budget)
        let known = registry.withLock { registry -> Bool? in
            if registry.byKey[key] != nil { return true }
            if registry.scheduled.contains(key) || registry.failure(failureKey) != nil { return false }
            return nil
        }
        if known == true { return registered(module, key: key) != nil }
        if known == false { return false }
        // Not known here yet: the cache may have it (a load takes milliseconds); otherwise build
        // it in the background.
        if (try? loadCached(module, key: key)) != nil { return true }
        scheduleBuild(module, load: true)
        return false
    }

    /// The failure remembered for `module` under the current budget, if any (for tests and
    /// reports).
    static func knownFailure(of module: GuestModule) -> ModuleError? {
        let key = FailureKey(key: cacheKey(module), budget: CompiledEngine.budget)
        return registry.withLock { $0.failure(key) }
    }

    /// Whether `module`'s library is loaded in this process.
    static func isLoaded(_ module: GuestModule) -> Bool {
        if module.compiled.withLock({ $0.library != nil }) { return true }
        let key = cacheKey(module)
        return registry.withLock { $0.byKey[key] != nil }
    }

    /// The library of `module` if its entry is in the cache; never builds.
    private static func loadCached(_ module: GuestModule, key: String) throws(ModuleError) -> CompiledLibrary? {
        try gate.with(key) { () throws(ModuleError) -> CompiledLibrary? in
            if let known = registered(module, key: key) { return known }
            let cache = try CompiledCache.current()
            let names = Toolchain.current.map { ["\(key)-\($0.identity)"] } ?? cache.entries(withPrefix: key + "-")
            for name in names {
                guard case .valid(let file) = cache.openEntry(name) else { continue }
                return try register(module, key: key, file: file, path: "\(cache.path)/\(name).so")
            }
            return nil
        }
    }

    /// Queues a background build of `module` (loading it after, when `load`), unless one is
    /// queued, its result is known (an entry or library, or a failure under this budget), or
    /// there are no tools: one build at a time, its tools at low priority.
    static func scheduleBuild(_ module: GuestModule, load: Bool) {
        guard Toolchain.current != nil else { return }
        if module.compiled.withLock({ $0.library != nil || (!load && $0.entry != nil) }) { return }
        let key = cacheKey(module)
        let failureKey = FailureKey(key: key, budget: CompiledEngine.budget)
        let start = registry.withLock { registry -> Bool in
            guard registry.byKey[key] == nil, registry.failure(failureKey) == nil,
                registry.scheduled.insert(key).inserted
            else { return false }
            registry.queue.append((module, key, load))
            defer { registry.builderRunning = true }
            return !registry.builderRunning
        }
        guard start else { return }
        do {
            try DetachedThread.start(name: "futures-builder", pool: nil) { runBackgroundBuilds() }
        } catch {
            // No thread for the builder: nothing queued will be built; forget it all, so that a
            // later call may try again.
            registry.withLock { registry in
                for queued in registry.queue { registry.scheduled.remove(queued.key) }
                registry.queue.removeAll()
                registry.builderRunning = false
            }
        }
    }

    /// The background builder's loop: builds what is queued, one at a time, then ends.
    private static func runBackgroundBuilds() {
        while let next = registry.withLock({ registry -> (module: GuestModule, key: String, load: Bool)? in
            if registry.queue.isEmpty {
                registry.builderRunning = false
                return nil
            }
            return registry.queue.removeFirst()
        }) {
            let key = next.key
            let failureKey = FailureKey(key: key, budget: CompiledEngine.budget)
            do throws(ModuleError) {
                try gate.with(key) { () throws(ModuleError) in
                    if registered(next.module, key: key) != nil { return }
                    let (file, path) = try entry(for: next.module, key: key, budget: failureKey.budget, niceness: 10)
                    if next.load {
                        _ = try register(next.module, key: key, file: file, path: path)
                    } else {
                        close(file)
                        next.module.compiled.withLock { $0.entry = path }
                    }
                }
                readyGeneration.wrappingAdd(1, ordering: .relaxed)
            } catch {
                registry.withLock { $0.remember(error, for: failureKey, background: true) }
            }
            registry.withLock { _ = $0.scheduled.remove(key) }
        }
    }
}

extension ModuleError {
    /// Whether building again, under the same budget, would fail the same way (a tool's verdict on
    /// the module, a cap, the budget), rather than because of the environment (a cache that
    /// cannot be written, a tool not installed yet).
    var isDeterministicBuildFailure: Bool {
        code == .buildFailed || code == .tooLarge || code == .unsupportedFeature || code == .invalid
    }
}
