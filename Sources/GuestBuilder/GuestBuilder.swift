import Foundation
public import Futures
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Compiles guest source files (Embedded Swift or C) into a WebAssembly module that interpreters
/// can load, with the toolchain's own `swiftc`, `clang` and `wasm-ld`: `futures build-guest`.
///
/// Swift sources are compiled together as one Embedded Swift module for `wasm32-unknown-none-wasm`;
/// C sources with `clang --target=wasm32 -ffreestanding`. Unless ``Options/includeRuntime`` is
/// off, the guest is linked with this project's small runtime (`Sources/GuestBuilder/Runtime`): an allocator,
/// `memcpy` and friends, the exported `cf_alloc`/`cf_free`, and the Swift and C helpers for the
/// guest ABI (returning strings and values, queues, logging).
public struct GuestBuilder: Sendable {
    /// How to build.
    public struct Options: Sendable {
        /// The guest's shadow stack, in bytes (a multiple of 16); `nil`: ``defaultStackSize`` for
        /// a freestanding guest, ``defaultWASIStackSize`` for a WASI program. The stack is placed
        /// first in linear memory (`--stack-first`), so a program that overflows it traps
        /// (`memoryOutOfBounds`) instead of overwriting its static data.
        public var stackSize: Int?
        /// Link the guest runtime (needed for strings, bytes, queues and `print`).
        public var includeRuntime = true
        /// Keep the `name` section, so traps name guest functions.
        public var keepNames = true
        /// Build for WASI preview 1 with the machine's wasi-libc (`nil`: the freestanding guest ABI).
        public var wasi: WASITarget?
        /// Directories searched for C headers (`clang -I`), in order, before the runtime's `cf.h`.
        public var includeDirectories: [String] = []
        /// C macros, each `NAME` or `NAME=VALUE` (`clang -D`).
        public var defines: [String] = []
        /// The C optimization level, one of ``optimizationLevels`` (`clang -O`); `nil`: `2`.
        public var optimization: String?
        /// Directories searched for the ``libraries`` (`-L`), in order.
        public var libraryDirectories: [String] = []
        /// Libraries to link, each a name `NAME` found as `libNAME.a` (`-l`), after the sources.
        public var libraries: [String] = []

        /// A freestanding guest's stack: 64 KiB, wasm-ld's default.
        public static let defaultStackSize = 64 << 10
        /// A WASI program's stack: 1 MiB, Rust's default for wasm32-wasi. Measured on the program
        /// corpus (docs/guests.md): `lz4 -d` needs more than 64 KiB (it overflowed wasm-ld's
        /// default into its data, silently) and at most 128 KiB; zlib's `minigzip` fits in 32 KiB,
        /// `xxhsum` in 16 KiB.
        public static let defaultWASIStackSize = 1 << 20

        /// The stack size the build uses.
        var resolvedStackSize: Int { stackSize ?? (wasi == nil ? Self.defaultStackSize : Self.defaultWASIStackSize) }

        /// The values ``optimization`` may take.
        public static let optimizationLevels = ["0", "1", "2", "3", "s", "z"]

        /// The defaults: the kind's stack, the runtime linked, names kept, no WASI, C at `-O2`.
        public init() {}
    }

    /// The two kinds of WASI program `build` makes.
    public enum WASITarget: String, Sendable, CaseIterable {
        /// A program with `main`, run by `_start` (`futures run`, ``GuestModule/command()``).
        case command
        /// A library of exported functions, prepared by `_initialize` (`futures map`, pools).
        case reactor
    }

    /// The one command that installs what WASI builds need on Debian or Ubuntu.
    public static let wasiInstallCommand = "apt-get install wasi-libc clang-14 lld-14 libclang-rt-14-dev-wasm32"

    /// The C compiler for WASI guests: `$WASI_CLANG`, else `clang-14` on `PATH` (Debian's, which
    /// finds Debian's wasi-libc and its wasm32 builtins by itself); `nil` when none is usable.
    public static func wasiCompiler() -> String? {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let given = environment["WASI_CLANG"] { candidates.append(given) }
        for directory in (environment["PATH"] ?? "/usr/bin").split(separator: ":") { candidates.append("\(directory)/clang-14") }
        let sysroot = ["/usr/lib/wasm32-wasi/libc.a", "/usr/lib/wasm32-wasi/crt1-reactor.o"]
        guard sysroot.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) || environment["WASI_CLANG"] != nil else {
            return nil
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The directory holding `swiftc`, `clang` and `wasm-ld`.
    public let toolchainBin: String

    /// Uses the toolchain in `toolchainBin`, or finds one: `$SWIFT_TOOLCHAIN_BIN`, then the
    /// directory of the `swiftc` on `PATH`, then `/opt/swift/usr/bin`.
    ///
    /// - Throws: ``GuestBuildError`` `.toolchainNotFound` when no toolchain has the three tools.
    public init(toolchainBin: String? = nil) throws(GuestBuildError) {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let toolchainBin { candidates.append(toolchainBin) }
        if let fromEnvironment = environment["SWIFT_TOOLCHAIN_BIN"] { candidates.append(fromEnvironment) }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let swiftc = "\(directory)/swiftc"
            if FileManager.default.isExecutableFile(atPath: swiftc) {
                let resolved = URL(fileURLWithPath: swiftc).resolvingSymlinksInPath().deletingLastPathComponent().path
                candidates.append(resolved)
            }
        }
        candidates.append("/opt/swift/usr/bin")
        guard
            let found = candidates.first(where: { directory in
                ["swiftc", "clang", "wasm-ld"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }
            })
        else {
            throw GuestBuildError(.toolchainNotFound, "no Swift toolchain with swiftc, clang and wasm-ld was found (set SWIFT_TOOLCHAIN_BIN)")
        }
        self.toolchainBin = found
    }

    /// Compiles `sources` (all `.swift`, or C: `.c` files, and wasm objects `.o` and archives `.a`
    /// to link with them) into the module `output`.
    ///
    /// - Throws: ``GuestBuildError`` `.badInput` for missing or mixed sources or bad options,
    ///   `.compileFailed` or `.linkFailed` with the tool's output.
    public func build(sources: [String], output: String, options: Options = Options()) async throws(GuestBuildError) {
        guard !sources.isEmpty else { throw GuestBuildError(.badInput, "no source files given") }
        for source in sources where !FileManager.default.isReadableFile(atPath: source) {
            throw GuestBuildError(.badInput, "cannot read \(source)")
        }
        let isSwift = sources.allSatisfy { $0.hasSuffix(".swift") }
        let isC = sources.allSatisfy { source in [".c", ".o", ".a"].contains { source.hasSuffix($0) } }
        guard isSwift || isC else {
            throw GuestBuildError(
                .badInput, "sources must be all .swift, or .c (with .o and .a) files: \(sources.joined(separator: " "))")
        }
        guard options.resolvedStackSize > 0, options.resolvedStackSize % 16 == 0 else {
            throw GuestBuildError(.badInput, "the stack size must be a positive multiple of 16, got \(options.resolvedStackSize)")
        }
        try Self.validateCOptions(options, isSwift: isSwift)
        var wasiCompiler: String?
        if options.wasi != nil {
            guard let found = Self.wasiCompiler() else {
                throw GuestBuildError(
                    .toolchainNotFound, "building a WASI guest needs wasi-libc and clang 14: \(Self.wasiInstallCommand)")
            }
            wasiCompiler = found
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("futures-guest-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            try Data(PackageResources.rt_c).write(to: scratch.appendingPathComponent("rt.c"))
            try Data(PackageResources.cf_h).write(to: scratch.appendingPathComponent("cf.h"))
            // Written under its historical name: the file name is part of the guests' private symbols.
            try Data(PackageResources.EmbeddedGuestRuntime_swift).write(to: scratch.appendingPathComponent("GuestRuntime.swift"))
            try Data(PackageResources.wasi_shim_c).write(to: scratch.appendingPathComponent("wasi-shim.c"))
        } catch {
            throw GuestBuildError(.badInput, "cannot write to the temporary directory: \(error)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let path = { (name: String) in scratch.appendingPathComponent(name).path }
        var objects: [String] = []
        let cFlags = ["--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-I", scratch.path]
        if let wasiCompiler, let target = options.wasi {
            try await buildWASI(
                sources: sources, isSwift: isSwift, output: output, options: options, target: target, compiler: wasiCompiler,
                scratch: scratch.path)
            return
        }
        if isSwift {
            var inputs = sources
            if options.includeRuntime { inputs.append(path("GuestRuntime.swift")) }
            try await tool(
                "swiftc", .compileFailed,
                [
                    "-target", "wasm32-unknown-none-wasm", "-enable-experimental-feature", "Embedded",
                    "-enable-experimental-feature", "Extern", "-wmo", "-parse-as-library", "-O",
                    "-Xfrontend", "-disable-stack-protector", "-module-name", moduleName(for: sources[0]),
                ] + inputs + ["-c", "-o", path("guest.o")])
            objects.append(path("guest.o"))
        } else {
            objects += try await compileC(sources, compiler: "clang", flags: cFlags, options: options, scratch: scratch.path)
        }
        if options.includeRuntime {
            try await tool("clang", .compileFailed, cFlags + ["-c", path("rt.c"), "-o", path("rt.o")])
            objects.append(path("rt.o"))
        }
        // Linked under the first source's name, so that the module's own name (in its name section)
        // and therefore its bytes do not depend on where the output goes.
        let linked = path(moduleName(for: sources[0]) + ".wasm")
        let unicodeTables = "\(toolchainBin)/../lib/swift/embedded/wasm32-unknown-none-wasm/libswiftUnicodeDataTables.a"
        if isSwift, FileManager.default.fileExists(atPath: unicodeTables) { objects.append(unicodeTables) }
        try await tool(
            "wasm-ld", .linkFailed,
            ["--no-entry", "--gc-sections", "--stack-first", "-z", "stack-size=\(options.resolvedStackSize)"]
                + (options.keepNames ? [] : ["--strip-all"]) + Self.linkInputs(objects, options) + ["-o", linked])
        if FileManager.default.isExecutableFile(atPath: "\(toolchainBin)/llvm-objcopy") {
            try await tool(
                "llvm-objcopy", .linkFailed,
                ["--remove-section=producers", "--remove-section=target_features", linked])
        }
        do {
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.copyItem(atPath: linked, toPath: output)
        } catch {
            throw GuestBuildError(.badInput, "cannot write \(output): \(error.localizedDescription)")
        }
    }

    /// Builds a WASI command or reactor: C with the WASI compiler and wasi-libc; Embedded Swift
    /// with `swiftc`, then linked by the WASI compiler with wasi-libc's start files and libc.
    private func buildWASI(
        sources: [String], isSwift: Bool, output: String, options: Options, target: WASITarget, compiler: String,
        scratch: String
    ) async throws(GuestBuildError) {
        let path = { (name: String) in "\(scratch)/\(name)" }
        let cFlags = ["--target=wasm32-wasi", "-O2", "-I", scratch]
        var objects: [String] = []
        if isSwift {
            try await tool(
                "swiftc", .compileFailed,
                [
                    "-target", "wasm32-unknown-none-wasm", "-enable-experimental-feature", "Embedded",
                    "-enable-experimental-feature", "Extern", "-wmo", "-parse-as-library", "-O",
                    "-Xfrontend", "-disable-stack-protector", "-module-name", moduleName(for: sources[0]),
                ] + sources + (options.includeRuntime ? [path("GuestRuntime.swift")] : []) + ["-c", "-o", path("guest.o")])
            objects.append(path("guest.o"))
            try await tool(compiler, .compileFailed, cFlags + ["-c", path("wasi-shim.c"), "-o", path("wasi-shim.o")])
            objects.append(path("wasi-shim.o"))
            let unicodeTables = "\(toolchainBin)/../lib/swift/embedded/wasm32-unknown-none-wasm/libswiftUnicodeDataTables.a"
            if FileManager.default.fileExists(atPath: unicodeTables) { objects.append(unicodeTables) }
        } else {
            objects += try await compileC(sources, compiler: compiler, flags: cFlags, options: options, scratch: scratch)
        }
        let linked = path(moduleName(for: sources[0]) + ".wasm")
        if isSwift {
            // Swift objects come from the toolchain's compiler: its own linker reads them (and its
            // archives, which Debian's lld 14 cannot), with wasi-libc's start file and libc, as
            // the WASI compiler would link them.
            guard let builtins = Self.wasiBuiltins(compiler: compiler) else {
                throw GuestBuildError(.toolchainNotFound, "the wasm32 builtins of clang were not found: \(Self.wasiInstallCommand)")
            }
            let start =
                target == .reactor ? ["/usr/lib/wasm32-wasi/crt1-reactor.o", "--entry", "_initialize"] : ["/usr/lib/wasm32-wasi/crt1-command.o"]
            try await tool(
                "wasm-ld", .linkFailed,
                ["-m", "wasm32", "-L/usr/lib/wasm32-wasi"] + start + [
                    "--stack-first", "-z", "stack-size=\(options.resolvedStackSize)", "--strip-debug", "--gc-sections",
                ]
                    + (options.keepNames ? [] : ["--strip-all"]) + Self.linkInputs(objects, options) + ["-lc", builtins, "-o", linked])
        } else {
            var linkFlags = ["--target=wasm32-wasi", "-Wl,--stack-first", "-Wl,-z,stack-size=\(options.resolvedStackSize)", "-Wl,--strip-debug"]
            if target == .reactor { linkFlags.append("-mexec-model=reactor") }
            if !options.keepNames { linkFlags.append("-Wl,--strip-all") }
            try await tool(compiler, .linkFailed, linkFlags + Self.linkInputs(objects, options) + ["-o", linked])
        }
        if FileManager.default.isExecutableFile(atPath: "\(toolchainBin)/llvm-objcopy") {
            try await tool(
                "llvm-objcopy", .linkFailed, ["--remove-section=producers", "--remove-section=target_features", linked])
        }
        do {
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.copyItem(atPath: linked, toPath: output)
        } catch {
            throw GuestBuildError(.badInput, "cannot write \(output): \(error.localizedDescription)")
        }
    }

    /// Checks the C options: `-I`, `-D` and `-O` apply to C sources only; the level is a known one.
    private static func validateCOptions(_ options: Options, isSwift: Bool) throws(GuestBuildError) {
        if isSwift, !options.includeDirectories.isEmpty || !options.defines.isEmpty || options.optimization != nil {
            throw GuestBuildError(.badInput, "include directories (-I), macros (-D) and -O apply to C sources, not Swift")
        }
        if let level = options.optimization, !Options.optimizationLevels.contains(level) {
            throw GuestBuildError(
                .badInput, "the optimization level must be one of \(Options.optimizationLevels.joined(separator: ", ")), got '\(level)'")
        }
        for define in options.defines where define.isEmpty || define.hasPrefix("=") {
            throw GuestBuildError(.badInput, "a macro needs a name: -D NAME or -D NAME=VALUE, got '\(define)'")
        }
        for name in options.libraries where name.isEmpty {
            throw GuestBuildError(.badInput, "a library needs a name: -l NAME")
        }
    }

    /// Compiles the `.c` files among `sources` with `compiler` and `flags` (the default `-O2`
    /// replaced by the options' level), the options' macros and include directories before the
    /// runtime's (`scratch`); returns the objects to link, `.o` and `.a` inputs in their place.
    private func compileC(
        _ sources: [String], compiler: String, flags: [String], options: Options, scratch: String
    ) async throws(GuestBuildError) -> [String] {
        let level = options.optimization.map { "-O\($0)" } ?? "-O2"
        let userFlags = options.defines.map { "-D\($0)" } + options.includeDirectories.map { "-I\($0)" }
        // The options' directories are searched before the runtime's (the first -I of `flags`).
        let runtimeInclude = flags.firstIndex(of: "-I") ?? flags.endIndex
        let compileFlags = flags[..<runtimeInclude].map { $0 == "-O2" ? level : $0 } + userFlags + flags[runtimeInclude...]
        var objects: [String] = []
        for (index, source) in sources.enumerated() {
            guard source.hasSuffix(".c") else {
                objects.append(source)
                continue
            }
            let object = "\(scratch)/source\(index).o"
            try await tool(compiler, .compileFailed, compileFlags + ["-c", source, "-o", object])
            objects.append(object)
        }
        return objects
    }

    /// What the linker reads: the library directories, the objects, then the libraries.
    private static func linkInputs(_ objects: [String], _ options: Options) -> [String] {
        options.libraryDirectories.map { "-L\($0)" } + objects + options.libraries.map { "-l\($0)" }
    }

    /// The compiler-rt builtins for wasm32 of the WASI compiler (`libclang_rt.builtins-wasm32.a`).
    static func wasiBuiltins(compiler: String) -> String? {
        let resolved = URL(fileURLWithPath: compiler).resolvingSymlinksInPath().deletingLastPathComponent()
        let clangLib = resolved.deletingLastPathComponent().appendingPathComponent("lib/clang")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: clangLib.path)) ?? []
        for version in versions.sorted().reversed() {
            let candidate = clangLib.appendingPathComponent("\(version)/lib/wasi/libclang_rt.builtins-wasm32.a").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a toolchain program (a name in the toolchain, or an absolute path); a non-zero exit
    /// becomes `code` with its output.
    private func tool(_ name: String, _ code: GuestBuildError.Code, _ arguments: [String]) async throws(GuestBuildError) {
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await run(
                .path(FilePath(name.hasPrefix("/") ? name : "\(toolchainBin)/\(name)")), arguments: Arguments(arguments),
                output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        } catch {
            throw GuestBuildError(code, "\(name) could not run: \(error)")
        }
        guard result.terminationStatus.isSuccess else {
            let output = [result.standardOutput, result.standardError].joined(separator: "\n")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw GuestBuildError(code, "\(name) failed (\(result.terminationStatus)):\n\(output)")
        }
    }

    /// A Swift module name derived from a file's name.
    private func moduleName(for file: String) -> String {
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let cleaned = String(stem.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        guard let first = cleaned.first, first.isLetter || first == "_" else { return "Guest" + cleaned }
        return cleaned
    }
}

/// A guest could not be built.
public struct GuestBuildError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<GuestBuildError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.toolchainNotFound, .badInput, .compileFailed, .linkFailed]

    /// What went wrong.
    public let code: Code
    /// Details, including the tool's output.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension ErrorCode where Domain == GuestBuildError {
    /// No toolchain with `swiftc`, `clang` and `wasm-ld` was found.
    public static let toolchainNotFound = Self("toolchainNotFound")
    /// The sources are missing, unreadable or mixed.
    public static let badInput = Self("badInput")
    /// The compiler rejected a source file.
    public static let compileFailed = Self("compileFailed")
    /// The linker failed (an undefined symbol, for example).
    public static let linkFailed = Self("linkFailed")
}
