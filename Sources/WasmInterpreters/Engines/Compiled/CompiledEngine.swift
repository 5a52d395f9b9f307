import CFuturesShims
import Futures

#if canImport(Glibc)
import Glibc
#endif

/// The compiled engine's build pipeline, cache and budget (``GuestEngine/compiled`` and
/// ``GuestEngine/auto``).
///
/// A module is validated (when its ``GuestModule`` is made), checked against the caps of the
/// ``BuildBudget``, instrumented with a fuel counter that charges as WasmKit does
/// (``FuelMetering``), translated to C by `wasm2c`, and compiled with the runtime written for it
/// (`cf-rt.c`: bounds checks, thread-local trap unwinding, stack limits, no signal handlers) by
/// `clang -O2 -fPIC -shared` into a shared object. The tools run as bounded children: their own
/// process group, CPU, memory and file-size limits, killed at the budget's deadline or when the
/// process ends. The shared object is cached on disk (see ``cacheDirectory``), named by the
/// SHA-256 of the module, the runtime and the flags, plus the identity of the tools, with a digest
/// checked before every load; it is loaded once per process and module.
///
/// A deployed program needs no compiler: build the cache ahead of time with ``prepare(_:)`` (or
/// `futures build-guest --compile MODULE.wasm`), ship the directory and point
/// `CONCURRENT_FUTURES_CACHE` at it. Without `wasm2c` and `clang`, an entry for the module built
/// by any tool versions is used.
public enum CompiledEngine {
    /// What one build may cost, and which modules are built at all.
    ///
    /// Each tool (`wasm2c`, then `clang`) runs with ``cpuTime`` of CPU and ``memoryBytes`` of
    /// address space and file size; the whole build must end within ``wallTime``, or its tools are
    /// killed and the build fails with ``ModuleError`` `.buildFailed`. The caps are checked before
    /// anything runs (``ModuleError`` `.tooLarge`): modules past them can make the tools run for
    /// hours. Every module still runs on WasmKit, and ``GuestEngine/auto`` falls back to it.
    public struct BuildBudget: Sendable, Hashable {
        /// The most wall-clock time a build may take (both tools, and the wait for another
        /// process building the same module).
        public var wallTime: Duration
        /// The most CPU time each tool may use, in whole seconds (the kernel's limit is counted
        /// in seconds: a fraction is dropped, and anything under a second counts as one).
        public var cpuTime: Duration
        /// The most address space each tool may map, and the largest file it may write.
        public var memoryBytes: Int
        /// The most functions (imported and defined) a module may have.
        public var maxFunctions: Int
        /// The most entries of its type section.
        public var maxTypes: Int
        /// The most globals.
        public var maxGlobals: Int
        /// The most bytes of data segments.
        public var maxDataBytes: Int

        /// Creates a budget; every value defaults to ``default``'s.
        public init(
            wallTime: Duration = .seconds(300), cpuTime: Duration = .seconds(300), memoryBytes: Int = 4 << 30,
            maxFunctions: Int = 100_000, maxTypes: Int = 10_000, maxGlobals: Int = 10_000, maxDataBytes: Int = 64 << 20
        ) {
            self.wallTime = wallTime
            self.cpuTime = cpuTime
            self.memoryBytes = memoryBytes
            self.maxFunctions = maxFunctions
            self.maxTypes = maxTypes
            self.maxGlobals = maxGlobals
            self.maxDataBytes = maxDataBytes
        }

        /// 5 minutes of wall and CPU time and 4 GiB per tool; at most 100,000 functions, 10,000
        /// types, 10,000 globals and 64 MiB of data.
        public static let `default` = BuildBudget()
    }

    // `Locked` (a pthread mutex) rather than `Mutex`: ThreadSanitizer sees its ordering.
    private static let currentBudget = Locked(BuildBudget.default)

    /// The budget of the builds started from now on, in this process.
    public static var budget: BuildBudget {
        get { currentBudget.withLock { $0 } }
        set { currentBudget.withLock { $0 = newValue } }
    }

    /// Where compiled guests are cached: `$CONCURRENT_FUTURES_CACHE`, else
    /// `$XDG_CACHE_HOME/concurrent-futures/compiled`, else `~/.cache/concurrent-futures/compiled`,
    /// else a private directory made for this process (and its process-pool workers), removed at
    /// exit. The directory and its ancestors must belong to the user or root and be writable by
    /// no one else (sticky directories such as `/tmp` excepted, above it).
    ///
    /// Reading it opens the directory, making its missing parts (mode 0700) or the private
    /// directory, and checks it; the result is kept for the rest of the process.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when the directory fails those checks or
    ///   cannot be made.
    public static var cacheDirectory: String {
        get throws(ModuleError) { try CompiledCache.current().path }
    }

    /// Builds `module` for the compiled engine unless its cache entry exists, loads it, and
    /// returns the path of its entry.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when `wasm2c` or `clang` is missing and no
    ///   entry exists, or the cache fails its checks; `.buildFailed` when a tool fails or the
    ///   build runs out of its ``budget``; `.tooLarge` past the budget's caps;
    ///   `.unsupportedFeature` for what the engine cannot translate; `.invalid` when the fuel
    ///   metering cannot read a function body of the module.
    @discardableResult
    public static func prepare(_ module: GuestModule) throws(ModuleError) -> String {
        try CompiledLibrary.load(module).path
    }

    /// Builds `module` into the cache unless its entry exists, without loading it (what a process
    /// pool does before its workers load the module), and returns the entry's path.
    ///
    /// - Throws: What ``prepare(_:)`` throws.
    @discardableResult
    public static func build(_ module: GuestModule) throws(ModuleError) -> String {
        try CompiledLibrary.buildEntry(module)
    }

    /// Whether `wasm2c` and `clang` are found (on `PATH`, or as `CONCURRENT_FUTURES_WASM2C` and
    /// `CONCURRENT_FUTURES_CC`), so that modules can be compiled here.
    public static var canCompile: Bool { Toolchain.current != nil }

    /// Makes SIGINT, SIGTERM, SIGHUP and SIGQUIT (where the program has no handler of its own)
    /// and `exit` kill the tools of running builds and remove their temporary directories first.
    /// For programs; the `futures` tool calls it. Without it, the tools die with the process
    /// anyway (they get SIGKILL when it ends), and a later build removes the directories left.
    public static func installBuildCleanup() { cf_builds_install_cleanup() }

    /// What a process pool does before its workers run `module` on `engine`: under
    /// ``GuestEngine/compiled``, builds its cache entry now (once per process and module, within
    /// the ``budget``) and returns the error when that fails, for the calls to fail with; under
    /// ``GuestEngine/auto``, starts building it in the background and returns `nil`.
    package static func prepareForWorkers(_ module: GuestModule, engine: GuestEngine) -> ModuleError? {
        switch engine {
        case .wasmKit: return nil
        case .auto:
            CompiledLibrary.scheduleBuild(module, load: false)
            return nil
        case .compiled:
            do {
                try CompiledLibrary.buildEntry(module)
                return nil
            } catch {
                return error
            }
        }
    }

    /// Variables a worker process needs to share this process's cache (its path, when it is the
    /// private one made for this process).
    package static var environmentForWorkers: [String: String] { CompiledCache.environmentForChildren }

    /// For `futures bench`: what the checks of a warm load cost, each the median of
    /// `repetitions`: opening and checking the cache directory and its ancestors (once per
    /// process), and checking `module`'s entry (its descriptor, its record, the SHA-256 of its
    /// shared object; per module and process). Builds the entry first if needed.
    package static func measureChecks(
        of module: GuestModule, repetitions: Int
    ) throws(ModuleError) -> (directory: Duration, entry: Duration, entryBytes: Int) {
        let path = try build(module)
        let cache = try CompiledCache.current()
        let name = String(path.split(separator: "/").last!.dropLast(3))
        func median(_ body: () throws(ModuleError) -> Void) throws(ModuleError) -> Duration {
            var samples: [Duration] = []
            for _ in 0..<repetitions {
                let start = ContinuousClock.now
                try body()
                samples.append(ContinuousClock.now - start)
            }
            return samples.sorted()[samples.count / 2]
        }
        let directory = try median { () throws(ModuleError) in _ = try CompiledCache.at(cache.path) }
        var bytes = 0
        let entry = try median { () throws(ModuleError) in
            guard case .valid(let file) = cache.openEntry(name) else { throw ModuleError(.engineUnavailable, "\(path) did not check") }
            var status = stat()
            fstat(file, &status)
            bytes = Int(status.st_size)
            close(file)
        }
        return (directory, entry, bytes)
    }

    /// Whether `module`'s compiled form is loaded in this process (for `futures bench`).
    package static func isLoaded(_ module: GuestModule) -> Bool { CompiledLibrary.isLoaded(module) }

    /// Whether an interpreter made with ``GuestEngine/auto`` runs `module` compiled now: when its
    /// shared object is loaded or in the cache. Otherwise starts building it in the background,
    /// once, and answers `false`.
    static func autoPlacement(of module: GuestModule) -> Bool {
        CompiledLibrary.autoPlacement(of: module)
    }

    /// Counts the compiled forms that became ready in the background: a pool worker under
    /// ``GuestEngine/auto`` looks again when it changes.
    static var readyGeneration: Int { CompiledLibrary.readyGeneration.load(ordering: .relaxed) }
}
