import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The compiled engine's builds as a user meets them: bounded in time, ended by Ctrl-C or by the
/// tool's death, their cache private without a home, their files written with fixed modes.
@Suite("Compiled engine builds", .enabled(if: compiledEngineAvailable))
struct CompiledBuildCLITests {
    /// A fake compiler that starts a child of its own (as a compiler starts its linker), records
    /// both process ids, and waits forever, deaf to SIGINT, SIGTERM and SIGHUP (as `wasm2c` and
    /// `clang` were when they inherited a blocked mask).
    static func hangingTool(in directory: String) throws -> (tool: String, pids: String) {
        let tool = "\(directory)/hanging-cc"
        let pids = "\(directory)/pids"
        let script = """
            #!/bin/sh
            trap '' INT TERM HUP
            sleep 1000 &
            echo $! >> '\(pids)'
            echo $$ >> '\(pids)'
            wait
            """
        try script.write(toFile: tool, atomically: false, encoding: .utf8)
        chmod(tool, 0o755)
        return (tool, pids)
    }

    /// The process ids a fake tool recorded.
    static func recordedPIDs(_ path: String) -> [pid_t] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    static func isAlive(_ pid: pid_t) -> Bool {
        // A zombie is dead: it only waits to be reaped by a parent that is gone or busy.
        guard kill(pid, 0) == 0 else { return false }
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.dropFirst().first
        return state != "Z"
    }

    /// The build directories left in a cache.
    static func buildDirectories(_ cache: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []).filter { $0.hasPrefix("build-") }
    }

    /// Starts `futures` with `arguments` and `environment` (added to this process's), its output
    /// discarded: for the tests that signal it.
    static func start(_ arguments: [String], environment: [String: String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: futuresPath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits up to `seconds` for `condition`.
    static func eventually(seconds: Int = 60, _ condition: () -> Bool) -> Bool {
        for _ in 0..<seconds * 10 {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    /// A build past its wall time is stopped at the deadline: its tools killed (a tool that
    /// ignores SIGTERM included), its directory removed, and the error names the budget.
    @Test func aBuildPastItsBudgetIsKilledAndCleanedUp() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (tool, pids) = try Self.hangingTool(in: directory)
        let cache = "\(directory)/cache"
        let run = try await futures(
            ["build-guest", "--compile", "Tasks.wasm", "--build-timeout", "1"],
            environment: ["CONCURRENT_FUTURES_CACHE": cache, "CONCURRENT_FUTURES_CC": tool])
        #expect(run.exitCode == 1)
        #expect(run.error.contains("ran out of its budget"), "\(run.error)")
        #expect(run.error.contains("--build-timeout"), "\(run.error)")
        let recorded = Self.recordedPIDs(pids)
        #expect(recorded.count == 2)
        #expect(recorded.allSatisfy { !Self.isAlive($0) })
        #expect(Self.buildDirectories(cache).isEmpty)
    }

    /// Ctrl-C during a build ends the build's tools and removes its directory, then the tool.
    @Test func ctrlCDuringABuildEndsItsTools() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (tool, pids) = try Self.hangingTool(in: directory)
        let cache = "\(directory)/cache"
        let process = try Self.start(
            ["build-guest", "--compile", "Tasks.wasm"], environment: ["CONCURRENT_FUTURES_CACHE": cache, "CONCURRENT_FUTURES_CC": tool])
        #expect(Self.eventually { Self.recordedPIDs(pids).count == 2 })
        #expect(Self.buildDirectories(cache).count == 1)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGINT)
        // Killed (SIGKILL reaches a busy process's children a moment later).
        #expect(Self.eventually { Self.recordedPIDs(pids).allSatisfy { !Self.isAlive($0) } })
        #expect(Self.buildDirectories(cache).isEmpty)
    }

    /// A process killed outright takes its build's tool with it, and the tool's own children (the
    /// supervisor of the tool's process group dies with the process, killing the group), and the
    /// next build removes the directory it left.
    @Test func aKilledProcessTakesItsToolsAndTheNextBuildCleansUp() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (tool, pids) = try Self.hangingTool(in: directory)
        let cache = "\(directory)/cache"
        let process = try Self.start(
            ["build-guest", "--compile", "Tasks.wasm"], environment: ["CONCURRENT_FUTURES_CACHE": cache, "CONCURRENT_FUTURES_CC": tool])
        #expect(Self.eventually { Self.recordedPIDs(pids).count == 2 })
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(Self.eventually { Self.recordedPIDs(pids).allSatisfy { !Self.isAlive($0) } })
        let left = Self.buildDirectories(cache)
        #expect(left.count == 1)
        // A sweep spares directories changed in the last minute (their owner may not have locked
        // them yet): this one is made to look older.
        for name in left {
            var times = [timespec(tv_sec: time(nil) - 120, tv_nsec: 0), timespec(tv_sec: time(nil) - 120, tv_nsec: 0)]
            utimensat(AT_FDCWD, "\(cache)/\(name)", &times, 0)
        }
        let next = try await futures(["build-guest", "--compile", "Tasks.wasm"], environment: ["CONCURRENT_FUTURES_CACHE": cache])
        #expect(next.exitCode == 0, "\(next.error)")
        #expect(Self.buildDirectories(cache).isEmpty)
    }

    /// A tool that crashes is reported by name and signal, not with an empty message.
    @Test func aCrashingToolIsNamed() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tool = "\(directory)/crashing-wasm2c"
        try "#!/bin/sh\necho 'about to fall over' >&2\nkill -SEGV $$\n".write(toFile: tool, atomically: false, encoding: .utf8)
        chmod(tool, 0o755)
        let run = try await futures(
            ["build-guest", "--compile", "Tasks.wasm"],
            environment: ["CONCURRENT_FUTURES_CACHE": "\(directory)/cache", "CONCURRENT_FUTURES_WASM2C": tool])
        #expect(run.exitCode == 1)
        #expect(run.error.contains("wasm2c was killed by SIGSEGV"), "\(run.error)")
        #expect(run.error.contains("about to fall over"), "\(run.error)")
    }

    /// A compiler that runs out of memory is reported as that, with the budget's hint, even though
    /// its crash report repeats the command line (and so names the frame-size flag).
    @Test func aCompilerOutOfMemoryIsNotAFrameTooLarge() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tool = "\(directory)/starving-clang"
        let report =
            "LLVM ERROR: out of memory\nAllocation failed\nProgram arguments: clang-21 -cc1 -Wframe-larger-than=65536 -Werror=frame-larger-than m.c"
        try "#!/bin/sh\nprintf '\(report)\\n' >&2\nexit 1\n".write(toFile: tool, atomically: false, encoding: .utf8)
        chmod(tool, 0o755)
        let run = try await futures(
            ["build-guest", "--compile", "Tasks.wasm"],
            environment: ["CONCURRENT_FUTURES_CACHE": "\(directory)/cache", "CONCURRENT_FUTURES_CC": tool])
        #expect(run.exitCode == 1)
        #expect(run.error.contains("could not build"), "\(run.error)")
        #expect(run.error.contains("out of memory"), "\(run.error)")
        #expect(run.error.contains("CompiledEngine.BuildBudget.memoryBytes"), "\(run.error)")
        #expect(!run.error.contains("native stack"), "\(run.error)")
    }

    /// A second Ctrl-C in `futures map` stops at once, and still ends the background build's tools
    /// and removes the private cache.
    @Test func aSecondCtrlCInMapStillCleansUp() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (tool, pids) = try Self.hangingTool(in: directory)
        let input = "\(directory)/inputs"
        try String(repeating: "100000000\n", count: 1000).write(toFile: input, atomically: false, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: futuresPath)
        process.arguments = ["map", "Tasks.wasm", "cpu_bound", "--engine", "auto", "--workers", "1", "-i", input]
        // No HOME: the cache is private to the process.
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "CONCURRENT_FUTURES_CC": tool, "TMPDIR": directory,
        ]
        process.standardOutput = FileHandle.nullDevice
        let errors = "\(directory)/errors"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try process.run()
        // The background build's tools run at low priority: on a loaded machine (the suite under
        // ThreadSanitizer) they may wait long for the processor.
        #expect(Self.eventually(seconds: 300) { Self.recordedPIDs(pids).count == 2 })
        let caches = { ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("concurrent-futures-") } }
        #expect(caches().count == 1)
        // Two signals sent at once may arrive as one: Ctrl-C again until the process ends, which
        // only the second one handled does (the calls run for seconds, the build hangs).
        for _ in 0..<600 where process.isRunning {
            kill(process.processIdentifier, SIGINT)
            usleep(100_000)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let text = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(text.contains("interrupted again"), "\(text)")
        #expect(Self.eventually { Self.recordedPIDs(pids).allSatisfy { !Self.isAlive($0) } })
        #expect(caches().isEmpty)
    }

    /// A tool named by a relative path (`CONCURRENT_FUTURES_CC=./cc`) runs: tools start in their
    /// build directory, so the path is made absolute first.
    @Test func aRelativeToolPathWorks() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clang =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { "\($0)/clang" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/clang"
        try "#!/bin/sh\nexec '\(clang)' \"$@\"\n".write(toFile: "\(directory)/cc", atomically: false, encoding: .utf8)
        chmod("\(directory)/cc", 0o755)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: futuresPath)
        process.arguments = ["build-guest", "--compile", "Tasks.wasm"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["CONCURRENT_FUTURES_CC": "./cc", "CONCURRENT_FUTURES_CACHE": "\(directory)/cache"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// Under `umask 000`, the cache and its entries still get their own modes.
    @Test func entriesKeepTheirModesUnderAnyUmask() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = "\(directory)/cache"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "umask 000; exec '\(futuresPath)' build-guest --compile Tasks.wasm"]
        process.environment = ProcessInfo.processInfo.environment.merging(["CONCURRENT_FUTURES_CACHE": cache]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let entry = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        func mode(_ path: String) -> mode_t {
            var status = stat()
            lstat(path, &status)
            return status.st_mode & 0o7777
        }
        #expect(mode(cache) == 0o700)
        #expect(mode(entry) == 0o500)
        #expect(mode(String(entry.dropLast(3)) + ".sha256") == 0o400)
        let lock = try #require(try FileManager.default.contentsOfDirectory(atPath: cache).first { $0.hasSuffix(".lock") })
        #expect(mode("\(cache)/\(lock)") == 0o600)
    }

    /// Without HOME, XDG_CACHE_HOME and CONCURRENT_FUTURES_CACHE (a service, `env -i`), the cache is
    /// a private directory of the process, gone when it exits; process-pool workers share it.
    @Test func withoutAHomeTheCacheIsPrivate() throws {
        func bare(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: futuresPath)
            process.arguments = arguments
            process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
            let output = Pipe()
            let standardInput = Pipe()
            process.standardOutput = output
            process.standardInput = standardInput
            try process.run()
            standardInput.fileHandleForWriting.write(Data(input.utf8))
            try standardInput.fileHandleForWriting.close()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let first = try bare(["build-guest", "--compile", "Tasks.wasm"])
        let second = try bare(["build-guest", "--compile", "Tasks.wasm"])
        #expect(first.status == 0 && second.status == 0)
        for run in [first, second] {
            #expect(run.output.hasPrefix("/tmp/concurrent-futures-\(getuid())-"), "\(run.output)")
            let directory = URL(fileURLWithPath: run.output.trimmingCharacters(in: .whitespacesAndNewlines)).deletingLastPathComponent().path
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) is left")
        }
        #expect(first.output != second.output)
        let mapped = try bare(["map", "Tasks.wasm", "double", "--engine", "compiled", "--executor", "process", "--workers", "2"], input: "21\n4\n")
        #expect(mapped.status == 0)
        #expect(mapped.output == "42\n8\n")
    }

    /// WASI programs run on the compiled engine from the command line, as on WasmKit.
    /// Generated C over the split threshold is compiled in parts, on every core, and the program
    /// runs as it does whole (the threshold lowered so that a small program is split).
    @Test func aLargeModuleIsCompiledInParts() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let compiler = "\(directory)/recording-clang"
        try "#!/bin/sh\necho \"$@\" >> '\(directory)/calls'\nexec clang \"$@\"\n".write(toFile: compiler, atomically: false, encoding: .utf8)
        chmod(compiler, 0o755)
        let input = "3 1 2 apple Apple pear 2.5\n"
        let run = try await futures(
            ["run", "--engine", "compiled", "wordstat.wasm"], input: input,
            environment: [
                "CONCURRENT_FUTURES_CACHE": "\(directory)/cache", "CONCURRENT_FUTURES_CC": compiler, "CONCURRENT_FUTURES_SPLIT_ABOVE": "20000",
            ])
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.output == "tokens: 7\nnumbers: 4 min 1 median 2.25 max 3 mean 2.125\nwords: 2 distinct\n  apple 2\n  pear 1\n")
        let calls = (try? String(contentsOfFile: "\(directory)/calls", encoding: .utf8)) ?? ""
        let parts = calls.split(separator: "\n").filter { $0.contains(" -c m") }
        #expect(parts.count >= 3, "\(calls)")
        #expect(calls.split(separator: "\n").last?.contains("m0.o m1.o m2.o") == true, "\(calls)")
    }

    @Test func wasiProgramsRunCompiled() async throws {
        let input = "3 1 2 apple Apple pear 2.5\n"
        let expected = "tokens: 7\nnumbers: 4 min 1 median 2.25 max 3 mean 2.125\nwords: 2 distinct\n  apple 2\n  pear 1\n"
        for engine in ["compiled", "auto", "wasmkit"] {
            let run = try await futures(["run", "--engine", engine, "wordstat.wasm"], input: input)
            #expect(run.exitCode == 0, "\(engine): \(run.error)")
            #expect(run.output == expected, "\(engine)")
        }
        let usage = try await futures(["run", "--engine", "compiled", "wordstat.wasm", "-n", "x"])
        #expect(usage.exitCode == 2)
        #expect(usage.error == "wordstat: -n needs a count, got 'x'\n")
        for executor in ["interpreter", "process"] {
            let mapped = try await futures(
                ["map", "wordstat-reactor.wasm", "summarize", "--engine", "compiled", "--executor", executor], input: "\"a b a 1\"\n")
            #expect(mapped.exitCode == 0, "\(executor): \(mapped.error)")
            #expect(mapped.output.contains("words: 2 distinct"), "\(executor): \(mapped.output)")
        }
    }
}
