import ArgumentParser
import ConcurrentFutures
import Foundation

/// `futures run`: runs a WASI command as `wasmtime run` does, in an interpreter of this process.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a WASI command (a wasm32-wasi program with main) in a sandboxed interpreter.",
        usage: "futures run [<options>] <module> [--] [<arguments> ...]",
        discussion: """
            The program's standard input, output and error are this command's, and its exit status \
            becomes this command's. It sees only what is granted: its arguments, the environment given \
            with --env (none of this process's), clocks, random bytes, and the directories given with \
            --dir (read-only) or --writable-dir. A trap, or a call stopped by --fuel, --timeout or \
            --memory, is reported on standard error (a line starting "futures run:") with exit status \
            134; an exit status outside 0-255 is reported as 1.

            Options go before the module: everything after it goes to the program, options \
            included. Put -- before the program's arguments when the first of them starts with -: \
            futures run --dir data prog.wasm -- -v input.txt
            """)

    @Argument(help: "A .wasm or .wat file: a WASI command.")
    var module: String

    @Argument(parsing: .captureForPassthrough, help: "Arguments for the program (argv[1...]).")
    var arguments: [String] = []

    @OptionGroup var grants: WASIGrantOptions

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
    }

    func run() async throws {
        var limits = InterpreterLimits(fuel: fuel, timeLimit: timeout.map { Duration.nanoseconds(Int64($0 * 1e9)) })
        if let memory { limits.memoryBytes = memory << 20 }
        var options = WASIOptions(output: .inherit)
        // A `--` between the module and the program's arguments ends this command's options; it is
        // not the program's (to pass the program a `--` first, write it twice).
        options.arguments = arguments.first == "--" ? Array(arguments.dropFirst()) : arguments
        grants.apply(to: &options)
        let (bytes, name) = try ModuleLoading.bytes(module)
        let command: GuestFunction<GuestOutput<Int32>>
        do {
            // On the compiled engine alone, WasmKit need not translate the program to validate it:
            // the build does (most of a large program's start-up).
            command = try GuestModule(
                bytes: bytes, name: name, limits: limits, wasi: options, compiledEngineOnly: engine == .compiled
            ).command()
        } catch {
            // A module whose initial memory is over the limit: the limit is this command's.
            let isMemory = error.code == .tooLarge && error.message.contains("initial memory")
            throw CommandFailure(isMemory ? error.message + " (the memory limit: raise it with --memory MiB)" : error.message)
        }
        build.apply()
        if engine == .compiled {
            // The build is not the program's time: it happens before the time limit's watchdog.
            do {
                try CompiledEngine.prepare(command.module)
            } catch {
                throw CommandFailure(error.message)
            }
        }
        let interpreter = Interpreters.create(limits: limits, engine: engine.engine)
        defer { try? interpreter.close() }
        let status: Int32
        let finished = Locked(false)
        if let timeout { Self.endAtTimeLimit(timeout, unless: finished) }
        defer { finished.withLock { $0 = true } }
        do {
            status = try interpreter.call(command).value
        } catch let error as ModuleError {
            // The engine could not take the module (a build that failed): not the program's fault.
            throw CommandFailure(error.message)
        } catch {
            var report = "futures run: \(describe(error))\n"
            // The guest's stack at the trap, one frame a line, innermost first, as Wasmtime
            // prints it: when it says more than the function called.
            if let error = error as? GuestError, !error.backtrace.isEmpty, error.backtrace != [error.function] {
                report += "backtrace:\n"
                for (index, frame) in error.backtrace.enumerated() { report += "    \(index): \(frame)\n" }
            }
            FileHandle.standardError.write(Data(report.utf8))
            throw ExitCode(134)
        }
        guard (0...255).contains(status) else {
            // An exit status is one byte: 256 must not pass for success.
            FileHandle.standardError.write(Data("futures run: the program exited with status \(status), outside 0-255; reporting 1\n".utf8))
            throw ExitCode(1)
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Ends this process with status 134 when the program is still running a second after its
    /// time limit: a backstop for a program blocked in the host where the limit's interruption
    /// does not reach (an `open` of a FIFO is woken at the limit, see `FIFOUnblocker`), so that
    /// the command ends whatever happens.
    private static func endAtTimeLimit(_ timeout: Double, unless finished: Locked<Bool>) {
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: timeout + 1)
            guard !finished.withLock({ $0 }) else { return }
            let line =
                "futures run: timedOut: the program was still blocked in the host \(timeout + 1) s after its time limit of "
                + "\(timeout) s (raise it with --timeout seconds)\n"
            FileHandle.standardError.write(Data(line.utf8))
            fflush(nil)
            _exit(134)
        }
    }
}
