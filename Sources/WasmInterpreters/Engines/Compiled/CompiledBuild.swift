import CFuturesShims
import Futures
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// One build of a module's compiled form into the cache: the budget's caps, the metering,
/// `wasm2c`, the glue, `clang`; each tool a bounded child (see ``CompiledEngine/BuildBudget``),
/// every file in a build directory of the cache that is removed at the end, whatever happens.
enum CompiledBuild {
    /// Changes whenever the build's own edits of the generated code change (it is part of cache
    /// keys): the volatile fuel counter, the table traps, guard pages instead of bounds checks.
    static let version = "build-3"

    /// How every compiled guest is built. No warnings, but one error: a function whose native
    /// frame is over 64 KiB (the runtime's stack reserve counts on it; see `cf-rt.c`). Floating
    /// point keeps WebAssembly's semantics: no contraction, and no folding that assumes quiet
    /// NaNs (`x - 0`, `x * 1` and `x / 1` must still quiet a signaling NaN), which
    /// `-ffp-exception-behavior=maytrap` keeps clang from doing.
    /// Loads and stores go unchecked into guard pages unless ``usesGuardPages`` is false; then
    /// `CF_BOUNDS_CHECKS` builds explicit checks (a separate cache entry: the flags are in its key).
    static let compilerFlags =
        [
            "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-ffp-exception-behavior=maytrap", "-fno-strict-aliasing", "-DNDEBUG",
            "-Wno-everything", "-Wframe-larger-than=\(maxFrameBytes)", "-Werror=frame-larger-than",
        ] + (usesGuardPages ? [] : ["-DCF_BOUNDS_CHECKS=1"])

    /// Whether compiled guests find their out-of-bounds accesses by faulting in guard pages, which
    /// the host's fault handler turns into traps. Not in a process whose fault signals belong to a
    /// sanitizer (ThreadSanitizer, AddressSanitizer and MemorySanitizer take SIGSEGV over: under
    /// ThreadSanitizer the first guard-page fault ended the process), nor with
    /// `CONCURRENT_FUTURES_BOUNDS_CHECKS=1` in the environment (for running under other tools that
    /// do, such as Valgrind): there every load and store checks its address explicitly, as fast as
    /// before guard pages and with the same traps.
    static let usesGuardPages: Bool = {
        if let setting = getenv("CONCURRENT_FUTURES_BOUNDS_CHECKS"), String(cString: setting) == "1" { return false }
        let sanitizers: [String] = ["__tsan_init", "__asan_init", "__msan_init"]
        return !sanitizers.contains { dlsym(nil, $0) != nil }
    }()

    /// The largest native stack frame a compiled guest function may have.
    static let maxFrameBytes = 64 << 10

    /// Checks `module` against the budget's caps, before any tool runs.
    ///
    /// - Throws: ``ModuleError`` `.tooLarge` naming the cap.
    static func checkCaps(_ module: GuestModule, budget: CompiledEngine.BuildBudget) throws(ModuleError) {
        let sizes = module.sizes
        let (functions, types, globals, dataBytes) = (sizes.functions, sizes.types, sizes.globals, sizes.dataBytes)
        let caps: [(String, Int, Int, String)] = [
            ("functions", functions, budget.maxFunctions, "maxFunctions"), ("types", types, budget.maxTypes, "maxTypes"),
            ("globals", globals, budget.maxGlobals, "maxGlobals"), ("bytes of data", dataBytes, budget.maxDataBytes, "maxDataBytes"),
        ]
        for (what, count, cap, field) in caps where count > cap {
            throw ModuleError(
                .tooLarge,
                "\(module.name) has \(count) \(what), over the compiled engine's cap of \(cap) "
                    + "(CompiledEngine.BuildBudget.\(field)); WasmKit runs it")
        }
    }

    /// Builds `module` into the cache as entry `name`, within `budget` (whose wall time ends at
    /// `deadline`); tools run at `niceness`.
    ///
    /// - Throws: ``ModuleError``: `.buildFailed` when a tool fails, crashes or runs out of the
    ///   budget; `.unsupportedFeature` for what the engine cannot translate; `.engineUnavailable`
    ///   when the cache cannot be written.
    static func build(
        _ module: GuestModule, tools: Toolchain, cache: CompiledCache, as name: String, budget: CompiledEngine.BuildBudget,
        deadline: Deadline, niceness: Int32
    ) throws(ModuleError) {
        if let entry = module.imports.first(where: { $0.kind != "function" && !isHostModule($0.module) }) {
            throw ModuleError(
                .unsupportedFeature,
                "\(module.name) cannot be compiled: it imports \(entry) from another instance, and the compiled engine links "
                    + "only functions; WasmKit runs it")
        }
        if let entry = linkedImports(of: module).first(where: { $0.type.results.count > 1 }) {
            throw ModuleError(
                .unsupportedFeature,
                "\(module.name) cannot be compiled: its import \(entry.module).\(entry.name) returns several values, which the "
                    + "compiled engine does not link; WasmKit runs it")
        }
        let metered: FuelMetering.Output
        do {
            metered = try FuelMetering.instrument(module.wasmBytes)
        } catch {
            throw ModuleError(error.isUnsupportedFeature ? .unsupportedFeature : .invalid, "\(module.name) cannot be compiled: \(error)")
        }
        let directory = try cache.makeBuildDirectory()
        defer { directory.close() }
        try directory.write(metered.bytes, to: "m.wasm")
        try directory.write(PackageResources.wasm_rt_h, to: "wasm-rt.h")
        try directory.write(PackageResources.cf_rt_c, to: "cf-rt.c")
        let context = Context(module: module, directory: directory, budget: budget, deadline: deadline, niceness: niceness)
        try context.run(tools.wasm2c, ["-n", "m", "m.wasm", "-o", "m.c"], log: "wasm2c.log", what: "wasm2c")
        // The fuel counter must be read and written on every charge, as the watchdog writes it
        // from another thread: without `volatile`, the optimizer may keep it in a register or
        // compute a pure loop's exit (running out of fuel at once).
        let header = String(decoding: try directory.read("m.h"), as: UTF8.self)
        guard let edited = CompiledGlue.makeFuelVolatile(header, fuelExport: metered.fuelExport) else {
            throw ModuleError(.buildFailed, "wasm2c's translation of \(module.name) lacks the fuel counter")
        }
        unlinkat(directory.descriptor, "m.h", 0)
        try directory.write(Array(edited.utf8), to: "m.h")
        try directory.renameTableTraps(in: "m.c")
        let glue: String
        do {
            glue = try CompiledGlue.source(
                for: module, metering: metered, header: edited, wasiImports: wasiImports(of: module), linkedImports: linkedImports(of: module))
        } catch {
            throw ModuleError(.buildFailed, "\(module.name): \(error)")
        }
        try directory.write(Array(glue.utf8), to: "glue.c")
        var sources = ["m.c"]
        if directory.size(of: "m.c") ?? 0 >= CompiledSplit.threshold, let parts = CompiledSplit.split(try directory.read("m.c")) {
            // A large module: its parts compile on every core, then link with the rest.
            for (index, part) in parts.enumerated() { try directory.write(part, to: "m\(index).c") }
            unlinkat(directory.descriptor, "m.c", 0)
            // Part 0 last: most of it is data, which compiles fast.
            let script = CompiledSplit.script(
                compiling: parts.indices.dropFirst().map { "m\($0)" } + ["m0"], compiler: tools.compiler,
                flags: compilerFlags.filter { $0 != "-shared" } + ["-I", "."], lanes: sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            try directory.write(Array(script.utf8), to: "compile.sh")
            try context.run("/bin/sh", ["compile.sh"], log: "cc-parts.log", what: "the compiler")
            sources = parts.indices.map { "m\($0).o" }
        }
        try context.run(
            tools.compiler, compilerFlags + ["-I", ".", "-o", "m.so"] + sources + ["glue.c", "cf-rt.c", "-lm"], log: "cc.log",
            what: "the compiler")
        try cache.store("m.so", from: directory, as: name)
    }

    /// The WASI functions `module` imports, in the order the glue numbers them.
    static func wasiImports(of module: GuestModule) -> [CompiledGlue.ImportedFunction] {
        module.wasiImports.sorted().compactMap { name in
            WASIHost.signatures[name].map { CompiledGlue.ImportedFunction(module: WASIHost.moduleName, name: name, type: $0) }
        }
    }

    /// The functions `module` imports from its ``Linker`` (host functions, linked instances), in
    /// import order: the order the glue numbers them from `CF_IMPORT_BASE`.
    static func linkedImports(of module: GuestModule) -> [CompiledGlue.ImportedFunction] {
        guard !module.linker.isEmpty else { return [] }
        var seen = Set<String>()
        return module.parsed.imports.compactMap { entry -> CompiledGlue.ImportedFunction? in
            guard !isHostModule(entry.module), case .function(let index) = entry.descriptor, let type = module.parsed.functionType(at: index),
                seen.insert("\(entry.module)\u{0}\(entry.name)").inserted
            else { return nil }
            return CompiledGlue.ImportedFunction(module: entry.module, name: entry.name, type: type)
        }
    }

    /// Whether imports from `name` are the package's own (`cf`, WASI), which the runtime and the
    /// glue provide.
    private static func isHostModule(_ name: String) -> Bool {
        name == HostImports.moduleName || name == WASIHost.moduleName
    }

    /// What the tools of one build share.
    private struct Context {
        let module: GuestModule
        let directory: BuildDirectory
        let budget: CompiledEngine.BuildBudget
        let deadline: Deadline
        let niceness: Int32

        /// Runs `tool` with `arguments` in the build directory, its output in `log`.
        func run(_ tool: String, _ arguments: [String], log: String, what: String) throws(ModuleError) {
            let output = try directory.createLog(log)
            let argv = ([tool] + arguments).map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            // Temporary files go to the build directory (the tool's working directory).
            var environment = ProcessEnvironment.entries.filter { !$0.hasPrefix("TMPDIR=") } + ["TMPDIR=."]
            environment = environment.filter { !$0.hasPrefix("TMP=") && !$0.hasPrefix("TEMP=") }
            let envp = environment.map { strdup($0) } + [nil]
            defer { for pointer in envp { free(pointer) } }
            var pid: pid_t = 0
            let cpuSeconds = max(1, Int(budget.cpuTime.components.seconds))
            let spawned = cf_spawn_tool(
                tool, argv, envp, directory.descriptor, output, cpuSeconds, Int64(budget.memoryBytes), niceness, &pid)
            close(output)
            guard spawned == 0 else {
                throw ModuleError(.engineUnavailable, "cannot start \(tool): \(String(cString: strerror(spawned)))")
            }
            directory.setRunningGroup(pid)
            defer { directory.setRunningGroup(0) }
            let remaining = deadline.remaining
            let milliseconds = Int32(clamping: max(0, remaining.components.seconds) * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
            var status: Int32 = 0
            let waited = cf_wait_tool(pid, milliseconds, &status)
            // Whatever the tool left running in its group goes with it.
            cf_kill_group(pid)
            if waited < 0 {
                throw ModuleError(
                    .engineUnavailable, "cannot wait for \(tool): \(String(cString: strerror(-waited))); WasmKit runs the module")
            }
            if waited == 0 {
                _ = cf_wait_tool(pid, -1, &status)
                var error = ModuleError(
                    .buildFailed,
                    "building \(module.name) ran out of its budget: \(what) was still running when the build's "
                        + "\(describe(budget.wallTime)) of wall time ran out (CompiledEngine.BuildBudget.wallTime, "
                        + "futures --build-timeout); WasmKit runs the module")
                error.isTransient = true  // a busy machine is slower
                throw error
            }
            var value: Int32 = 0
            let kind = cf_decode_status(status, &value)
            if kind == 1 && value == 0 { return }
            let text = head(log)
            if kind == 2 {
                let name = signalName(value) ?? "signal \(value)"
                if value == SIGXCPU {
                    throw ModuleError(
                        .buildFailed,
                        "building \(module.name) ran out of its budget: \(what) used its \(describe(budget.cpuTime)) of CPU time "
                            + "(CompiledEngine.BuildBudget.cpuTime); WasmKit runs the module")
                }
                if value == SIGXFSZ {
                    throw ModuleError(
                        .buildFailed,
                        "building \(module.name) ran out of its budget: \(what) wrote a file over \(budget.memoryBytes >> 20) MiB "
                            + "(CompiledEngine.BuildBudget.memoryBytes); WasmKit runs the module")
                }
                throw ModuleError(
                    .buildFailed,
                    "\(what) was killed by \(name) while building \(module.name)"
                        + (text.isEmpty ? "" : ": \(text)") + memoryHint(text, signal: value))
            }
            // clang's own diagnostic, not the flag's name (a crash report repeats the command line).
            if text.contains("stack frame size") && text.contains("exceeds limit") {
                throw ModuleError(
                    .unsupportedFeature,
                    "\(module.name) has a function that needs more than \(maxFrameBytes >> 10) KiB of native stack for one "
                        + "call (too many locals or values in flight); the compiled engine refuses it, WasmKit runs it: "
                        + String(text.prefix(300)))
            }
            throw ModuleError(
                .buildFailed,
                "\(what) could not build \(module.name) (exit status \(value))" + (text.isEmpty ? "" : ": \(text)")
                    + memoryHint(text, signal: nil))
        }

        /// The start of a tool's output.
        private func head(_ log: String) -> String {
            String(decoding: directory.head(log, count: 2000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// A note when the failure looks like the memory budget.
        private func memoryHint(_ text: String, signal: Int32?) -> String {
            let lower = text.lowercased()
            guard lower.contains("memory") || lower.contains("bad_alloc") || lower.contains("allocat") || signal == SIGABRT else {
                return ""
            }
            return " (each tool may map \(budget.memoryBytes >> 20) MiB: CompiledEngine.BuildBudget.memoryBytes)"
        }

        private func describe(_ duration: Duration) -> String {
            let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
            return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(self.drop(while: { set.contains($0) }).reversed().drop(while: { set.contains($0) }).reversed())
    }
}

extension Set where Element == Character {
    fileprivate static var whitespacesAndNewlines: Set<Character> { [" ", "\n", "\t", "\r"] }
}
