import ArgumentParser
import ConcurrentFutures
import Foundation

/// `futures run`: runs a WASI command as `wasmtime run` does, in an interpreter of this process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a WASI command (a wasm32-wasi program with main) in a sandboxed interpreter.",
        discussion: """
            The program's standard input, output and error are this command's, and its exit status \
            becomes this command's. It sees only what is granted: its arguments, the environment given \
            with --env (none of this process's), clocks, random bytes, and the directories given with \
            --dir (read-only) or --writable-dir. A trap, or a call stopped by --fuel, --timeout or \
            --memory, is reported on standard error (a line starting "futures run:") with exit status \
            134; an exit status outside 0-255 is reported as 1.
            """)

    @Argument(help: "A .wasm or .wat file: a WASI command.")
    var module: String

    @Argument(parsing: .captureForPassthrough, help: "Arguments for the program (argv[1...]).")
    var arguments: [String] = []

    @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable in the program's environment.", valueName: "NAME=VALUE"))
    var environment: [String] = []

    @Option(
        name: .customLong("dir"),
        help: ArgumentHelp("Let the program read a directory, seen at GUEST (default: the same path).", valueName: "HOST[:GUEST]"))
    var directories: [String] = []

    @Option(name: .customLong("writable-dir"), help: ArgumentHelp("Let the program read and change a directory.", valueName: "HOST[:GUEST]"))
    var writableDirectories: [String] = []

    @Option(help: "A fuel budget (about one unit per WebAssembly instruction).")
    var fuel: UInt64?

    @Option(help: "A time limit, in seconds.")
    var timeout: Double?

    @Option(help: "The most linear memory, in MiB (default 256).")
    var memory: Int?

    @Option(
        help:
            "The guest engine: wasmkit (default), compiled (wasm2c and clang; built once, then cached), or auto (compiled when cached, wasmkit otherwise)."
    )
    var engine: EngineChoice = .wasmkit

    @OptionGroup var build: BuildOptions

    mutating func validate() throws {
        if let timeout, !(timeout > 0) || timeout > 1e9 { throw ValidationError("--timeout must be a positive number of seconds") }
        if let memory, memory < 1 { throw ValidationError("--memory must be at least 1 MiB") }
        for entry in environment where !entry.contains("=") {
            throw ValidationError("--env takes NAME=VALUE, got '\(entry)'")
        }
    }

    func run() async throws {
        var limits = InterpreterLimits(fuel: fuel, timeLimit: timeout.map { Duration.nanoseconds(Int64($0 * 1e9)) })
        if let memory { limits.memoryBytes = memory << 20 }
        var options = WASIOptions(output: .inherit)
        options.arguments = arguments
        for entry in environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            options.environment[String(parts[0])] = String(parts[1])
        }
        options.preopens = directories.map { Self.preopen($0, writable: false) } + writableDirectories.map { Self.preopen($0, writable: true) }
        let (bytes, name) = try ModuleLoading.bytes(module)
        let command: GuestFunction<GuestOutput<Int32>>
        do {
            // On the compiled engine alone, WasmKit need not translate the program to validate it:
            // the build does (most of a large program's start-up).
            command = try GuestModule(
                bytes: bytes, name: name, limits: limits, wasi: options, compiledEngineOnly: engine == .compiled
            ).command()
        } catch {
            throw CommandFailure(error.message)
        }
        build.apply()
        let interpreter = Interpreters.create(limits: limits, engine: engine.engine)
        defer { try? interpreter.close() }
        let status: Int32
        do {
            status = try interpreter.call(command).value
        } catch let error as ModuleError {
            // The engine could not take the module (a build that failed): not the program's fault.
            throw CommandFailure(error.message)
        } catch {
            FileHandle.standardError.write(Data("futures run: \(describe(error))\n".utf8))
            throw ExitCode(134)
        }
        guard (0...255).contains(status) else {
            // An exit status is one byte: 256 must not pass for success.
            FileHandle.standardError.write(Data("futures run: the program exited with status \(status), outside 0-255; reporting 1\n".utf8))
            throw ExitCode(1)
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// `HOST[:GUEST]` as a preopen; the guest path defaults to the host path.
    private static func preopen(_ text: String, writable: Bool) -> WASIOptions.Preopen {
        let parts = text.split(separator: ":", maxSplits: 1)
        let host = String(parts.first ?? "")
        let guest = parts.count > 1 ? String(parts[1]) : host
        return WASIOptions.Preopen(hostPath: host, guestPath: guest.hasPrefix("/") || guest == "." ? guest : "/" + guest, isWritable: writable)
    }
}
