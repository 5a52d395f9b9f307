import ArgumentParser
import ConcurrentFutures
import GuestBuilder

/// `--wasi command|reactor`.
enum WASIChoice: String, ExpressibleByArgument, CaseIterable {
    case command, reactor

    var target: GuestBuilder.WASITarget { self == .command ? .command : .reactor }
}

/// `futures build-guest`: compiles Embedded Swift or C sources into a guest module.
struct BuildGuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-guest",
        abstract: "Compile Embedded Swift (or C) sources into a WebAssembly guest module.",
        discussion: """
            Swift sources are compiled as one Embedded Swift module for wasm32 and linked with the \
            guest runtime (allocator, cf_alloc/cf_free, and the helpers of the guest ABI). Export \
            functions with @_expose(wasm, "name") @_cdecl("name"). See docs/guests.md.

            With --wasi command|reactor, C (or Embedded Swift) is built for WASI preview 1 with the \
            machine's wasi-libc (apt-get install wasi-libc clang-14 lld-14 libclang-rt-14-dev-wasm32): \
            printf, malloc, qsort and the rest of libc work; cf.h still gives the guest ABI (string \
            results, queues). Export reactor functions with __attribute__((export_name("f"))).

            C builds (WASI or not) take the usual compiler options: -I DIR and -D NAME[=VALUE] \
            (repeatable), -O LEVEL (0, 1, 2, 3, s or z; 2 unless given), -L DIR and -l NAME \
            (repeatable: libNAME.a, linked after the sources), and several sources: .c files, and \
            wasm32 objects (.o) and archives (.a) to link with them. --stack-size sets the wasm \
            stack (wasm-ld -z stack-size). For example:
              futures build-guest --wasi command -I inc -D N=4 -O3 a.c b.c -lm -o p.wasm

            With --compile, the module (or, given .wasm or .wat files instead of sources, each of \
            them) is also compiled for the compiled engine into its cache (CONCURRENT_FUTURES_CACHE, \
            see docs/engines.md), so that a deployed program needs no compiler.
            """)

    @Argument(
        help: "The source files: all .swift, or .c with .o and .a to link with them; or, with --compile, .wasm or .wat modules.")
    var sources: [String]

    @Option(name: .shortAndLong, help: "The module to write (required when building from sources).")
    var output: String?

    @Flag(help: "Also compile the module for the compiled engine (wasm2c and clang) into the engine's cache.")
    var compile = false

    @Option(
        help: ArgumentHelp(
            "The guest's stack size in bytes, a multiple of 16 (wasm-ld -z stack-size; default 65536, 1048576 for --wasi); placed first, so an overflow traps.",
            valueName: "bytes"))
    var stackSize: Int?

    @Option(
        name: .customShort("I", allowingJoined: true),
        help: ArgumentHelp("A directory to search for C headers (repeatable).", valueName: "dir"))
    var includeDirectories: [String] = []

    @Option(
        name: .customShort("D", allowingJoined: true),
        help: ArgumentHelp("A C macro to define (repeatable).", valueName: "name[=value]"))
    var defines: [String] = []

    @Option(
        name: .customShort("O", allowingJoined: true),
        help: ArgumentHelp("The C optimization level: 0, 1, 2, 3, s or z (default 2).", valueName: "level"))
    var optimization: String?

    @Option(
        name: .customShort("L", allowingJoined: true),
        help: ArgumentHelp("A directory to search for the -l libraries (repeatable).", valueName: "dir"))
    var libraryDirectories: [String] = []

    @Option(
        name: .customShort("l", allowingJoined: true),
        help: ArgumentHelp("A library to link, libNAME.a from a -L directory (repeatable).", valueName: "name"))
    var libraries: [String] = []

    @Flag(help: "Do not link the guest runtime (for guests that only use numbers).")
    var noRuntime = false

    @Flag(help: "Strip function names (smaller modules, anonymous traps).")
    var stripNames = false

    @Option(
        help: ArgumentHelp(
            "Build for WASI preview 1 with wasi-libc: a command (main, run with `futures run`) or a reactor (exported functions).",
            valueName: "command|reactor"))
    var wasi: WASIChoice?

    @OptionGroup var build: BuildOptions

    func validate() throws {
        if let optimization, !GuestBuilder.Options.optimizationLevels.contains(optimization) {
            throw ValidationError("-O takes 0, 1, 2, 3, s or z, not '\(optimization)'")
        }
    }

    func run() async throws {
        build.apply()
        if compile, !sources.isEmpty, sources.allSatisfy({ $0.hasSuffix(".wasm") || $0.hasSuffix(".wat") }) {
            for source in sources { try Self.compileForEngine(source) }
            return
        }
        guard let output else { throw CommandFailure("give the module to write with --output") }
        var options = GuestBuilder.Options()
        options.stackSize = stackSize
        options.includeRuntime = !noRuntime
        options.keepNames = !stripNames
        options.wasi = wasi?.target
        options.includeDirectories = includeDirectories
        options.defines = defines
        options.optimization = optimization
        options.libraryDirectories = libraryDirectories
        options.libraries = libraries
        do {
            try await GuestBuilder().build(sources: sources, output: output, options: options)
        } catch {
            throw CommandFailure(error.description)
        }
        if compile { try Self.compileForEngine(output) }
    }

    /// Compiles the module at `path` into the compiled engine's cache and prints where.
    static func compileForEngine(_ path: String) throws {
        let module = try ModuleLoading.module(path)
        do {
            print(try CompiledEngine.build(module))
        } catch {
            throw CommandFailure(error.message)
        }
    }
}

/// A failure reported to the user as one line on standard error, with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
