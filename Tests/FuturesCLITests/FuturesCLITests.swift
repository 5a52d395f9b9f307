import Foundation
import Subprocess
import Testing

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// The `futures` tool, built next to the test bundle.
let futuresPath: String = {
    let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return me.deletingLastPathComponent().appendingPathComponent("futures").path
}()

struct Run {
    let status: TerminationStatus
    let output: String
    let error: String

    var exitCode: Int32? {
        if case .exited(let code) = status { return code }
        return nil
    }
    var outputLines: [String] { output.split(separator: "\n").map(String.init) }
    /// Every output line, blank ones included.
    var allOutputLines: [String] {
        var lines = output.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}

/// Standard input read from an unlinked temporary file holding `text`.
///
/// Not `.string(text)`: swift-subprocess writes such input through a pipe from a task of its own,
/// and when the tool exits before reading it (bad usage, `--fail-fast`) that write ends the test
/// process with SIGPIPE, or the cancelled writer trips the library's "was not closed" check.
func standardInput(_ text: String) throws -> FileDescriptorInput {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("futures-input-\(UUID().uuidString)").path
    try text.write(toFile: path, atomically: false, encoding: .utf8)
    defer { unlink(path) }
    let descriptor = try FileDescriptor.open(FilePath(path), .readOnly)
    return .fileDescriptor(descriptor, closeAfterSpawningProcess: true)
}

/// Runs `futures` as a user would: arguments, standard input, and both outputs collected;
/// `environment` adds to the test's own.
func futures(_ arguments: [String], input: String = "", environment: [String: String] = [:]) async throws -> Run {
    let result = try await run(
        .path(FilePath(futuresPath)), arguments: Arguments(arguments),
        environment: .inherit.updating(environment.reduce(into: [:]) { $0[.init(stringLiteral: $1.key)] = $1.value }),
        input: try standardInput(input), output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
    return Run(status: result.terminationStatus, output: result.standardOutput, error: result.standardError)
}

/// Whether the compiled engine's tools are here; in CI (`CONCURRENT_FUTURES_REQUIRE_WABT=1`) its
/// tests run regardless, and fail when they are missing.
let compiledEngineAvailable: Bool = {
    let environment = ProcessInfo.processInfo.environment
    if environment["CONCURRENT_FUTURES_REQUIRE_WABT"] != nil { return true }
    let path = environment["PATH"] ?? "/usr/bin"
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/wasm2c") }
}()

/// A new empty directory.
func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("futures-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The user-facing behaviour of the `futures` tool.
@Suite("futures command")
struct FuturesCLITests {
    @Test func helpListsTheSubcommands() async throws {
        let run = try await futures(["--help"])
        #expect(run.exitCode == 0)
        for command in ["bench", "map", "inspect", "build-guest"] { #expect(run.output.contains(command)) }
    }

    @Test(arguments: [
        ["--bogus"], ["map", "Tasks.wasm"], ["map", "/no/such/module.wasm", "f"], ["inspect", "/no/such.wasm"],
        ["bench", "--runs", "0"], ["bench", "--executor", "fiber"], ["map", "Tasks.wasm", "nope"],
        ["map", "Tasks.wasm", "square", "--input", "/no/such/input"], ["build-guest", "/no/such.swift", "-o", "/tmp/x.wasm"],
    ])
    func badUsageIsAOneLineErrorAndAFailingStatus(arguments: [String]) async throws {
        let run = try await futures(arguments)
        #expect(run.exitCode != 0 && run.exitCode != nil, "a clean exit, not a crash")
        #expect(run.error.hasPrefix("Error:"), "\(run.error)")
        #expect(!run.error.contains("Fatal error") && !run.error.contains("Stack dump"))
        #expect(run.output.isEmpty || run.error.contains("Usage"))
    }

    @Test func mapWritesResultsInInputOrder() async throws {
        let run = try await futures(["map", "Tasks.wasm", "square", "--workers", "3"], input: (1...50).map(String.init).joined(separator: "\n"))
        #expect(run.exitCode == 0)
        #expect(run.outputLines == (1...50).map { String($0 * $0) })
    }

    @Test(arguments: ["interpreter", "thread", "process"])
    func mapRunsOnEveryExecutor(executor: String) async throws {
        let run = try await futures(["map", "Examples.wasm", "greet", "--executor", executor], input: "\"Ada\"\nGrace\n")
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.outputLines == ["\"Hello, Ada!\"", "\"Hello, Grace!\""])
    }

    @Test func failingAndUnparseableInputsAreReportedByLineAndTheMapGoesOn() async throws {
        let run = try await futures(["map", "faults.wasm", "divide", "--spread"], input: "[10, 2]\n[1, 0]\n[oops\n[9, 3]\n")
        #expect(run.exitCode == 1)
        let lines = run.allOutputLines
        #expect(lines.count == 4 && lines[0] == "5" && lines[3] == "3", "\(lines)")
        #expect(lines[1].hasPrefix("{\"line\":2,\"error\":\"divideByZero in divide"))
        #expect(lines[2].hasPrefix("{\"line\":3,\"error\":\"cannot parse the input"))
        let errors = run.error.split(separator: "\n").map(String.init)
        #expect(errors.contains { $0.hasPrefix("line 2: divideByZero in divide") })
        #expect(errors.contains { $0.hasPrefix("line 3: cannot parse the input") })
        #expect(errors.last == "2 of 4 inputs failed")
    }

    /// Output line N is input line N's result, whatever the input holds: blank lines, CRLF,
    /// NUL bytes, surrogate-pair escapes, integers beyond 64 bits.
    @Test(arguments: ["interpreter", "thread", "process"])
    func outputStaysAlignedWithInput(executor: String) async throws {
        let input = "\"Ada\"\r\n\nGr\u{0}ace\n\"\\ud83d\\ude00\"\n123456789012345678901234567890\n18446744073709551615\nLinus\n"
        let run = try await futures(["map", "Examples.wasm", "greet", "--executor", executor], input: input)
        #expect(run.exitCode == 1)
        let lines = run.allOutputLines
        #expect(lines.count == 7, "\(lines)")
        guard lines.count == 7 else { return }
        #expect(lines[0] == "\"Hello, Ada!\"", "CRLF is a line end")
        #expect(lines[1] == "", "a blank line gives a blank line")
        #expect(lines[2].hasPrefix("{\"line\":3,\"error\":") && lines[2].contains("NUL"))
        #expect(lines[3] == "\"Hello, 😀!\"", "a surrogate pair is one character")
        #expect(lines[4].hasPrefix("{\"line\":5,\"error\":") && lines[4].contains("does not fit"))
        #expect(lines[5].hasPrefix("{\"line\":6,\"error\":") && lines[5].contains("does not fit"))
        #expect(lines[6] == "\"Hello, Linus!\"")
        #expect(run.error.contains("3 of 6 inputs failed"))
    }

    /// What a guest writes to its standard output goes to the tool's standard error: it cannot
    /// forge result lines.
    @Test(arguments: ["interpreter", "thread", "process"])
    func guestOutputNeverMixesWithResults(executor: String) async throws {
        let run = try await futures(["map", "Examples.wasm", "print_hello", "--executor", executor, "--spread"], input: "[]\n[]\n")
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.allOutputLines == ["null", "null"])
        #expect(run.error.contains("hello from print in Examples.wasm"))
    }

    /// `mpiexec -n 3 futures map ... --executor mpi` prints what `--executor interpreter` prints,
    /// failures included. Runs where MPICH is installed (CI installs it).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpiexec")))
    func theMPIExecutorMapsAsTheInterpreterPoolDoes() async throws {
        let input = (0..<300).map { "[\($0 * 7), \($0 % 13)]" }.joined(separator: "\n") + "\n"
        let arguments = ["map", "faults.wasm", "divide", "--spread", "--quiet"]
        // Under ThreadSanitizer, UCX's memory hooks crash a sanitized process as MPI starts.
        let sanitizerOptions = ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil ? ["-genv", "UCX_MEM_EVENTS", "no"] : []
        let local = try await futures(arguments, input: input)
        let result = try await run(
            .path("/usr/bin/timeout"),
            arguments: Arguments(["120", "mpiexec"] + sanitizerOptions + ["-n", "3", futuresPath] + arguments + ["--executor", "mpi"]),
            input: try standardInput(input), output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
        let mpi = Run(status: result.terminationStatus, output: result.standardOutput, error: result.standardError)
        #expect(local.exitCode == 1, "inputs dividing by zero fail")
        #expect(mpi.exitCode == local.exitCode, "\(mpi.error)")
        #expect(mpi.allOutputLines == local.allOutputLines)
        #expect(mpi.allOutputLines.count == 300)
    }

    /// `--engine compiled` prints what WasmKit prints, traps included, on the interpreter and
    /// the process pool; the module is built into a fresh cache on the way.
    @Test(.enabled(if: compiledEngineAvailable))
    func theCompiledEngineMapsAsWasmKitDoes() async throws {
        let cache = try temporaryDirectory()
        let input = (0..<200).map { "[\($0 * 7), \($0 % 13)]" }.joined(separator: "\n") + "\n"
        let arguments = ["map", "faults.wasm", "divide", "--spread", "--quiet"]
        let expected = try await futures(arguments, input: input)
        #expect(expected.exitCode == 1, "inputs dividing by zero fail")
        for executor in ["interpreter", "process"] {
            let compiled = try await futures(
                arguments + ["--engine", "compiled", "--executor", executor], input: input,
                environment: ["CONCURRENT_FUTURES_CACHE": cache])
            #expect(compiled.exitCode == expected.exitCode, "\(executor): \(compiled.error)")
            #expect(compiled.allOutputLines == expected.allOutputLines, "\(executor)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasSuffix(".so") }.count == 1)
    }

    /// Without wasm2c and with no cached build, `--engine compiled` fails with one clear line
    /// naming the package to install, and no crash.
    @Test func aMissingCompilerIsAClearError() async throws {
        let cache = try temporaryDirectory()
        let run = try await futures(
            ["map", "Tasks.wasm", "double", "--engine", "compiled"], input: "1\n",
            environment: ["CONCURRENT_FUTURES_CACHE": cache, "CONCURRENT_FUTURES_WASM2C": "/nonexistent/wasm2c"])
        #expect(run.exitCode == 1)
        #expect(run.error.contains("apt-get install wabt"), "\(run.error)")
        #expect(run.output.isEmpty)
    }

    /// Two processes building the same module into one cache at once both succeed, and leave one
    /// entry; a program given that cache then needs no compiler.
    @Test(.enabled(if: compiledEngineAvailable))
    func concurrentBuildsShareOneCacheEntryThatNeedsNoCompiler() async throws {
        let cache = try temporaryDirectory()
        let environment = ["CONCURRENT_FUTURES_CACHE": cache]
        async let first = futures(["build-guest", "--compile", "Tasks.wasm"], environment: environment)
        async let second = futures(["build-guest", "--compile", "Tasks.wasm"], environment: environment)
        let runs = try await [first, second]
        for run in runs { #expect(run.exitCode == 0, "\(run.error)") }
        #expect(runs[0].output == runs[1].output)
        // One entry (its shared object and digest record), the module's build lock, no build directory left.
        let entry = URL(fileURLWithPath: runs[0].outputLines[0]).lastPathComponent
        let key = String(entry.prefix { $0 != "-" })
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: cache).sorted() == [entry, entry.dropLast(3) + ".sha256", key + ".lock"].sorted())
        let deployed = try await futures(
            ["map", "Tasks.wasm", "double", "--engine", "compiled"], input: "21\n",
            environment: ["CONCURRENT_FUTURES_CACHE": cache, "CONCURRENT_FUTURES_WASM2C": "/nonexistent/wasm2c"])
        #expect(deployed.exitCode == 0, "\(deployed.error)")
        #expect(deployed.outputLines == ["42"])
    }

    @Test func theThreadExecutorHonoursTheTimeout() async throws {
        let run = try await futures(["map", "Examples.wasm", "spin", "--spread", "--timeout", "0.05", "--executor", "thread"], input: "[]\n")
        #expect(run.exitCode == 1)
        #expect(run.error.contains("line 1: timedOut"))
    }

    @Test func failFastStopsAtTheFirstFailure() async throws {
        let input = "[1, 0]\n" + (0..<50).map { "[\($0), 1]" }.joined(separator: "\n")
        let run = try await futures(["map", "faults.wasm", "divide", "--spread", "--fail-fast", "--workers", "1"], input: input)
        #expect(run.exitCode == 1)
        #expect(run.outputLines.count < 50)
    }

    @Test func unorderedResultsCarryTheirLineNumbers() async throws {
        let run = try await futures(["map", "Tasks.wasm", "double", "--unordered"], input: "1\n2\n3\n")
        #expect(run.exitCode == 0)
        #expect(Set(run.outputLines) == ["1\t2", "2\t4", "3\t6"])
    }

    @Test func fuelAndTimeoutApplyPerCall() async throws {
        let fuel = try await futures(["map", "Tasks.wasm", "cpu_bound", "--fuel", "100000"], input: "10\n10000000\n")
        #expect(fuel.exitCode == 1)
        #expect(fuel.outputLines.first == "285")
        #expect(fuel.outputLines.last?.hasPrefix("{\"line\":2,\"error\":\"outOfFuel") == true)
        #expect(fuel.error.contains("line 2: outOfFuel"))
        let timeout = try await futures(["map", "Examples.wasm", "spin", "--spread", "--timeout", "0.05"], input: "[]\n")
        #expect(timeout.exitCode == 1)
        #expect(timeout.error.contains("line 1: timedOut"))
    }

    @Test func inspectShowsExportsImportsAndWhetherItLoads() async throws {
        let run = try await futures(["inspect", "Examples.wasm"])
        #expect(run.exitCode == 0)
        #expect(run.output.contains("greet(i32, i32)"))
        #expect(run.output.contains("cf.queue_get_int (function (i32, i64, i32) -> i32)"))
        #expect(run.output.contains("loads in an interpreter: yes"))

        let path = NSTemporaryDirectory() + "futures-cli-\(UUID().uuidString).wat"
        try #"(module (import "env" "missing" (func)) (func (export "f")))"#.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let missing = try await futures(["inspect", path])
        #expect(missing.exitCode == 0)
        #expect(missing.output.contains("env.missing (function ())  <- not provided by the host"))
        #expect(missing.output.contains("loads in an interpreter: no"))
        let mapped = try await futures(["map", path, "f"], input: "1\n")
        #expect(mapped.exitCode != 0)
        #expect(mapped.error.hasPrefix("Error:") && mapped.error.contains("env.missing"))
    }

    @Test func benchPrintsJSONWithTheDocumentedKeys() async throws {
        let svg = NSTemporaryDirectory() + "futures-cli-\(UUID().uuidString).svg"
        defer { try? FileManager.default.removeItem(atPath: svg) }
        let run = try await futures([
            "bench", "--runs", "1", "--iterations", "1000", "--items", "200", "--json", "--svg", svg,
            "--executor", "thread,interpreter,process",
        ])
        #expect(run.exitCode == 0, "\(run.error)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]])
        for key in ["benchmark", "executor", "guest", "workers", "runs", "median_s", "min_s", "max_s"] {
            #expect(rows.allSatisfy { $0[key] != nil }, "every row has \(key)")
        }
        let kinds = Set(rows.map { "\($0["benchmark"]!) \($0["executor"]!) \($0["guest"]!)" })
        for expected in ["cpu thread native", "transfer interpreter wasm", "startup process native", "cpu process wasm"] {
            #expect(kinds.contains(expected))
        }
        #expect(rows.contains { $0["benchmark"] as? String == "memory" && $0["bytes_per_worker"] is Double })
        let chart = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(chart.hasPrefix("<svg") && chart.contains("transfer"))
    }

    /// Ctrl-C cancels the queued inputs, lets the running calls end, reports what was done, and
    /// leaves no worker process behind. As at a terminal, SIGINT goes to the tool's whole process
    /// group, workers included.
    ///
    /// Synchronous on purpose: an async test's continuations wait for a free thread of the
    /// cooperative pool, which sibling tests may hold for minutes in a sanitized build, and the
    /// signal must come while the map runs.
    @Test func interruptingAMapLeavesNoWorkerBehind() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("futures-interrupt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = ["in", "out", "err"].map { directory.appendingPathComponent($0).path }
        // 200 calls of at least 1 s on 2 workers; the time limit ends the running ones soon after
        // Ctrl-C, even in a slow (sanitized) build.
        try Array(repeating: "60000000", count: 200).joined(separator: "\n").write(toFile: files[0], atomically: false, encoding: .utf8)
        let tool = try spawnInOwnProcessGroup(
            [futuresPath, "map", "Tasks.wasm", "cpu_bound", "--executor", "process", "--workers", "2", "--timeout", "1"],
            standardInput: files[0], standardOutput: files[1], standardError: files[2])
        // Workers exist once the map is under way, and by then Ctrl-C is handled.
        let deadline = ContinuousClock.now + .seconds(120)
        while workers(of: tool).count < 2, ContinuousClock.now < deadline { usleep(20_000) }
        #expect(workers(of: tool).count == 2, "the map started its workers")
        kill(-tool, SIGINT)
        var status: Int32 = 0
        while waitpid(tool, &status, 0) < 0, errno == EINTR {}
        let errors = try String(contentsOfFile: files[2], encoding: .utf8)
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 130, "exit status 130, got wait status \(status)")
        #expect(errors.contains("interrupted:"))
        #expect(!errors.contains("SIGINT"), "the running calls ended; no worker died of the signal")
        #expect(errors.split(separator: "\n").count < 100, "the queued inputs were cancelled")
        usleep(200_000)
        #expect(workers(of: tool).isEmpty, "no worker process is left")
    }
}

extension FuturesCLITests {
    /// Results stream: the first result is written (and flushed, into a file or a pipe) while
    /// the input is still open, and reading an input file does not wait for its end.
    @Test func mapStreamsItsInputAndItsResults() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("futures-stream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let fifo = directory.appendingPathComponent("in").path
        let files = ["out", "err"].map { directory.appendingPathComponent($0).path }
        #expect(mkfifo(fifo, 0o600) == 0)
        let tool = try spawnInOwnProcessGroup(
            [futuresPath, "map", "Tasks.wasm", "square", "-i", fifo], standardInput: "/dev/null",
            standardOutput: files[0], standardError: files[1])
        let writer = open(fifo, O_WRONLY)
        #expect(writer >= 0)
        _ = "7\n".withCString { write(writer, $0, 2) }
        let deadline = ContinuousClock.now + .seconds(60)
        var output = ""
        while !output.contains("49"), ContinuousClock.now < deadline {
            usleep(20_000)
            output = (try? String(contentsOfFile: files[0], encoding: .utf8)) ?? ""
        }
        #expect(output == "49\n", "the first result came while the input was still open")
        _ = "8\n".withCString { write(writer, $0, 2) }
        close(writer)
        var status: Int32 = 0
        while waitpid(tool, &status, 0) < 0, errno == EINTR {}
        #expect(try String(contentsOfFile: files[0], encoding: .utf8) == "49\n64\n")
    }

    /// A second Ctrl-C ends the run at once, workers included, even with calls that would run
    /// for minutes.
    @Test func aSecondInterruptStopsAtOnce() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("futures-interrupt2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = ["in", "out", "err"].map { directory.appendingPathComponent($0).path }
        try Array(repeating: "100000000000", count: 20).joined(separator: "\n").write(toFile: files[0], atomically: false, encoding: .utf8)
        let tool = try spawnInOwnProcessGroup(
            [futuresPath, "map", "Tasks.wasm", "cpu_bound", "--executor", "process", "--workers", "2"],
            standardInput: files[0], standardOutput: files[1], standardError: files[2])
        let deadline = ContinuousClock.now + .seconds(120)
        while workers(of: tool).count < 2, ContinuousClock.now < deadline { usleep(20_000) }
        let started = workers(of: tool)
        #expect(started.count == 2, "the map started its workers")
        // The calls are running once both workers have used CPU time.
        while started.contains(where: { cpuTicks(of: $0) < 20 }), ContinuousClock.now < deadline { usleep(20_000) }
        kill(-tool, SIGINT)
        usleep(300_000)
        kill(-tool, SIGINT)
        var status: Int32 = 0
        let stopBy = ContinuousClock.now + .seconds(60)
        var reaped = false
        while ContinuousClock.now < stopBy {
            if waitpid(tool, &status, WNOHANG) == tool {
                reaped = true
                break
            }
            usleep(20_000)
        }
        if !reaped {
            kill(-tool, SIGKILL)
            waitpid(tool, &status, 0)
        }
        #expect(reaped, "the second Ctrl-C ended the run")
        #expect((status >> 8) & 0xff == 130, "exit status 130, got wait status \(status)")
        let errors = try String(contentsOfFile: files[2], encoding: .utf8)
        #expect(errors.contains("interrupted again"))
        usleep(200_000)
        #expect(workers(of: tool).isEmpty, "no worker process is left")
    }
}

/// Starts `arguments` in a process group of its own, its standard streams on the given files.
func spawnInOwnProcessGroup(
    _ arguments: [String], standardInput: String, standardOutput: String, standardError: String
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, standardInput, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, standardOutput, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, standardError, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var interrupt = sigset_t()
    sigemptyset(&interrupt)
    sigaddset(&interrupt, SIGINT)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &interrupt)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
    guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
    return pid
}

/// The user CPU time of process `pid`, in clock ticks (from /proc), or 0.
func cpuTicks(of pid: Int32) -> Int {
    guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
        let text = String(data: stat, encoding: .utf8), let end = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: end)...].split(separator: " ")
    return fields.count > 12 ? Int(fields[11]) ?? 0 : 0
}

/// Processes whose environment says they are workers of `parent`.
func workers(of parent: Int32) -> [Int32] {
    let marker = "CONCURRENT_FUTURES_PARENT_PID=\(parent)"
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return environment.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == marker }
    }
}

/// Whether WASI guests can be built here; in CI (`CONCURRENT_FUTURES_REQUIRE_WASI=1`) the tests
/// build them regardless, and fail when the toolchain is missing.
let wasiToolchainAvailable: Bool = {
    let environment = ProcessInfo.processInfo.environment
    if environment["CONCURRENT_FUTURES_REQUIRE_WASI"] != nil { return true }
    return FileManager.default.fileExists(atPath: "/usr/lib/wasm32-wasi/libc.a")
        && (environment["PATH"] ?? "/usr/bin").split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/clang-14") }
}()

/// The repository's root, from this file's path.
private let repository: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

@Suite("futures run and WASI guests")
struct FuturesWASITests {
    /// `Guests/wasi/wordstat.c` as a command and as a reactor: built with `futures build-guest`
    /// where the WASI toolchain is, else the committed builds.
    private func wordstat(_ directory: String) async throws -> (command: String, reactor: String) {
        guard wasiToolchainAvailable else { return ("wordstat.wasm", "wordstat-reactor.wasm") }
        let source = "\(repository)/Guests/wasi/wordstat.c"
        for (target, name) in [("command", "wordstat.wasm"), ("reactor", "wordstat-reactor.wasm")] {
            let build = try await futures(["build-guest", "--wasi", target, source, "-o", "\(directory)/\(name)"])
            #expect(build.exitCode == 0, "\(build.error)")
        }
        return ("\(directory)/wordstat.wasm", "\(directory)/wordstat-reactor.wasm")
    }

    @Test func runPassesStreamsArgumentsAndExitStatusThrough() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (command, _) = try await wordstat(directory)
        let report = try await futures(["run", command], input: "3 1 2 apple Apple pear 2.5\n")
        #expect(report.exitCode == 0, "\(report.error)")
        #expect(report.output == "tokens: 7\nnumbers: 4 min 1 median 2.25 max 3 mean 2.125\nwords: 2 distinct\n  apple 2\n  pear 1\n")
        let usage = try await futures(["run", command, "-n", "x"])
        #expect(usage.exitCode == 2)
        #expect(usage.error == "wordstat: -n needs a count, got 'x'\n")
        let host = try await futures(["run", command, "/etc/passwd"])
        #expect(host.exitCode == 1)
        #expect(host.error.hasPrefix("wordstat: /etc/passwd: ") && !host.output.contains("root"))

        let data = "\(directory)/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try "x y x 4 5\n".write(toFile: "\(data)/a.txt", atomically: false, encoding: .utf8)
        let mapped = try await futures(["run", "--dir", "\(data):/d", command, "-n", "1", "/d/a.txt"])
        #expect(mapped.exitCode == 0, "\(mapped.error)")
        #expect(mapped.output == "tokens: 5\nnumbers: 2 min 4 median 4.5 max 5 mean 4.5\nwords: 2 distinct\n  x 2\n")
        let escape = try await futures(["run", "--dir", "\(data):/d", command, "/d/../../etc/passwd"])
        #expect(escape.exitCode == 1)
        #expect(!escape.output.contains("root"))
    }

    @Test func runAppliesFuelTimeAndMemoryLimits() async throws {
        let fuel = try await futures(["run", "--fuel", "1000", "wordstat.wasm"])
        #expect(fuel.exitCode == 134)
        #expect(fuel.error.contains("outOfFuel"))
        // wordstat starts with a 1 MiB stack and its data: under 2 MiB, its words grow past it.
        let memory = try await futures(["run", "--memory", "2", "wordstat.wasm"], input: String(repeating: "word ", count: 400_000))
        #expect(memory.exitCode == 134)
        #expect(memory.error.contains("memoryLimit") && memory.error.contains("--memory"), "\(memory.error)")
        let tooSmall = try await futures(["run", "--memory", "1", "wordstat.wasm"])
        #expect(tooSmall.exitCode == 1)
        #expect(tooSmall.error.contains("more initial memory") && tooSmall.error.contains("raise it with --memory"), "\(tooSmall.error)")
        let bad = try await futures(["run", "--env", "NOEQUALS", "wordstat.wasm"])
        #expect(bad.exitCode != 0 && bad.error.hasPrefix("Error:"))
        let reactor = try await futures(["run", "wordstat-reactor.wasm"])
        #expect(reactor.exitCode == 1 && reactor.error.contains("not a WASI command"))
    }

    /// A command run with the host's own streams may write and read them, and nothing more: it
    /// cannot truncate the file behind its standard output. An exit status that does not fit in a
    /// byte is not passed off as another.
    @Test func runKeepsTheHostsStreamsAndExitStatusesHonest() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let truncate = "\(directory)/truncate.wat"
        try """
        (module
          (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $size (param i32 i64) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "after\\n")
          (func (export "_start")
            (drop (call $size (i32.const 1) (i64.const 0)))
            (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 6))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
        """.write(toFile: truncate, atomically: false, encoding: .utf8)
        let output = "\(directory)/out.txt"
        let shell = try await run(
            .path("/bin/sh"), arguments: ["-c", "echo keep > '\(output)' && '\(futuresPath)' run '\(truncate)' >> '\(output)'"],
            output: .string(limit: 1 << 16), error: .string(limit: 1 << 16))
        #expect(shell.terminationStatus.isSuccess, "\(shell.standardError)")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "keep\nafter\n")

        // Redirected streams are not terminals (the type fd_fdstat_get reports decides a program's
        // isatty(), and with it whether SQLite's shell or Python turns interactive): each prints
        // as its file type's number, 0 (unknown) here, where 2 would be a character device.
        let types = "\(directory)/types.wat"
        try """
        (module
          (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $stat (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func $type (param $fd i32) (param $at i32)
            (drop (call $stat (local.get $fd) (i32.const 64)))
            (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.load8_u (i32.const 64)))))
          (func (export "_start")
            (call $type (i32.const 0) (i32.const 16)) (call $type (i32.const 1) (i32.const 17))
            (call $type (i32.const 2) (i32.const 18)) (i32.store8 (i32.const 19) (i32.const 10))
            (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 4))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
        """.write(toFile: types, atomically: false, encoding: .utf8)
        for engine in compiledEngineAvailable ? ["wasmkit", "compiled"] : ["wasmkit"] {
            let redirected = try await futures(["run", "--engine", engine, types], input: "input\n")
            #expect(redirected.exitCode == 0, "\(redirected.error)")
            #expect(redirected.output == "000\n", "\(engine)")
        }

        let exit = "\(directory)/exit.wat"
        try """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 256))))
        """.write(toFile: exit, atomically: false, encoding: .utf8)
        let wide = try await futures(["run", exit])
        #expect(wide.exitCode == 1)
        #expect(wide.error.contains("status 256"))
    }

    /// What a guest prints reaches standard error as it printed it, whole (the library's log
    /// destination, which `futures map` used, bounds lines per call: `GuestOutputLogTests`).
    @Test func guestOutputReachesStandardErrorWhole() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lines = "\(directory)/lines.wat"
        try """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "_initialize"))
          (func (export "lines") (param $n i32) (result i32)
            (memory.fill (i32.const 65536) (i32.const 10) (local.get $n))
            (i32.store (i32.const 0) (i32.const 65536)) (i32.store (i32.const 4) (local.get $n))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (local.get $n)))
        """.write(toFile: lines, atomically: false, encoding: .utf8)
        let run = try await futures(["map", "--quiet", lines, "lines"], input: "5000\n")
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.outputLines == ["5000"])
        #expect(run.error == String(repeating: "\n", count: 5000))
    }

    @Test(arguments: ["interpreter", "thread", "process"])
    func mapRunsAReactorWithItsOutput(executor: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (_, reactor) = try await wordstat(directory)
        let input = "\"b a b 7\"\n\"one\"\n"
        let captured = try await futures(["map", "--quiet", "--output", "--executor", executor, reactor, "summarize"], input: input)
        #expect(captured.exitCode == 0, "\(captured.error)")
        #expect(
            captured.outputLines == [
                #"{"value":"tokens: 4\nnumbers: 1 min 7 median 7 max 7 mean 7\nwords: 2 distinct\n  b 2\n  a 1\n","stdout":"summarized 7 bytes\n","stderr":""}"#,
                #"{"value":"tokens: 1\nnumbers: 0\nwords: 1 distinct\n  one 1\n","stdout":"summarized 3 bytes\n","stderr":""}"#,
            ])
        let logged = try await futures(["map", "--quiet", "--executor", executor, reactor, "summarize"], input: input)
        #expect(logged.exitCode == 0)
        #expect(logged.outputLines.count == 2 && !logged.output.contains("summarized"))
        #expect(logged.error == "summarized 7 bytes\nsummarized 3 bytes\n" || logged.error == "summarized 3 bytes\nsummarized 7 bytes\n")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpiexec")))
    func theMPIExecutorRunsAReactorWithItsOutput() async throws {
        let input = (0..<40).map { "\"w\($0 % 3) \($0)\"" }.joined(separator: "\n") + "\n"
        let arguments = ["map", "--quiet", "--output", "wordstat-reactor.wasm", "summarize"]
        let sanitizerOptions = ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil ? ["-genv", "UCX_MEM_EVENTS", "no"] : []
        let local = try await futures(arguments, input: input)
        let result = try await run(
            .path("/usr/bin/timeout"),
            arguments: Arguments(["120", "mpiexec"] + sanitizerOptions + ["-n", "3", futuresPath] + arguments + ["--executor", "mpi"]),
            input: try standardInput(input), output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
        #expect(local.exitCode == 0)
        #expect(result.terminationStatus.isSuccess, "\(result.standardError)")
        #expect(result.standardOutput == local.output)
        #expect(local.outputLines.count == 40 && local.output.contains("summarized"))
    }

    @Test func inspectSaysWhatAModuleNeedsOfWASI() async throws {
        let command = try await futures(["inspect", "wordstat.wasm"])
        #expect(command.output.contains("a WASI command (wasi_snapshot_preview1)"))
        #expect(command.output.contains("imports functions for: arguments, fileSystem, process, stdio"))
        let probe = try await futures(["inspect", "probe.wasm"])
        #expect(probe.output.contains("a WASI reactor"))
        #expect(probe.output.contains("sockets (never)"))
        let plain = try await futures(["inspect", "Tasks.wasm"])
        #expect(plain.output.contains("wasi:\n  not used"))
    }
}
