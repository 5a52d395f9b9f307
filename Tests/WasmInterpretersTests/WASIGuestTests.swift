import BundledGuests
import Foundation
import GuestBuilder
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Whether the tests that build WASI guests run: when wasi-libc and clang 14 are here, and always
/// in CI (`CONCURRENT_FUTURES_REQUIRE_WASI=1`), where a missing toolchain must fail them.
let wasiBuildTestsRun = GuestBuilder.wasiCompiler() != nil || getenv("CONCURRENT_FUTURES_REQUIRE_WASI") != nil

/// A fresh directory under /tmp, removed by the caller.
func temporaryDirectory(_ label: String) -> String {
    let path = "/tmp/futures-test-\(getpid())-\(label)-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(path, 0o700)
    return path
}

/// The number of descriptors of this process open on `directory` or below (other tests running
/// at the same time open descriptors of their own; these are the test's).
func openDescriptorCount(under directory: String) -> Int {
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return descriptors.filter { descriptor in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)"))?.hasPrefix(directory) == true
    }.count
}

@Suite("WASI guests")
struct WASIGuestTests {
    /// Every WASI test runs on both engines (on the compiled one where it can build).
    static let engines: [GuestEngine] = compiledEngineTestsRun ? [.wasmKit, .compiled] : [.wasmKit]

    private func probe(_ options: WASIOptions = WASIOptions(output: .discard), limits: InterpreterLimits = .default) throws -> GuestModule {
        try GuestModule(bytes: BundledGuests.bytes(named: "probe.wasm")!, name: "probe.wasm", limits: limits, wasi: options)
    }

    @Test func modulesSayWhetherTheyAreWASIPrograms() throws {
        #expect(BundledGuests.probe.wasiKind == .reactor)
        #expect(BundledGuests.wordstat.wasiKind == .command)
        #expect(BundledGuests.wordstatReactor.wasiKind == .reactor)
        #expect(BundledGuests.tasks.wasiKind == nil)
        let report = try GuestModule.report(bytes: BundledGuests.bytes(named: "probe.wasm")!, name: "probe.wasm")
        #expect(report.wasiKind == .reactor)
        #expect(report.wasiNeeds == ["arguments", "clocks", "fileSystem", "process", "random", "sockets", "stdio"])
        #expect(throws: ModuleError.self) { try BundledGuests.probe.command() }
    }

    @Test(arguments: WASIGuestTests.engines) func aReactorUsesPrintfAndMallocAndReturnsAString(engine: GuestEngine) throws {
        let greet = try probe().function("greet", returning: String.self).capturingOutput()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let result = try interpreter.call(greet, "Ada")
        #expect(result.value == "hello, Ada!")
        #expect(result.stdoutText == "greeting Ada\n")
        #expect(result.stderr.isEmpty)
        // The reactor's state lives on between calls of one instance.
        let counter = try probe().function("counter", returning: Int.self)
        try interpreter.exec(counter.module)
        #expect(try interpreter.call(counter) == 1)
        #expect(try interpreter.call(counter) == 2)
    }

    @Test(arguments: WASIGuestTests.engines) func outputGoesToTheModulesHandler(engine: GuestEngine) throws {
        let records = Locked<[GuestOutputRecord]>([])
        let module = try probe(WASIOptions(output: .handler { record in records.withLock { $0.append(record) } }))
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try interpreter.call(module.function("greet", returning: String.self), "Bo") == "hello, Bo!")
        let seen = records.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.first.map { String(decoding: $0.stdout, as: UTF8.self) } == "greeting Bo\n")
        #expect(seen.first?.function == "greet")
        #expect(seen.first?.failed == false)
    }

    @Test(arguments: WASIGuestTests.engines) func argumentsAndEnvironmentAreSetPerCall(engine: GuestEngine) throws {
        let module = try probe(WASIOptions(arguments: ["first"], environment: ["MODE": "test"], output: .discard))
        let arguments = try module.function("arguments", returning: Int.self).capturingOutput()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let defaults = try interpreter.call(arguments)
        #expect(defaults.value == 2)
        #expect(defaults.stdoutText == "arg probe.wasm\narg first\nenv MODE=test\n")
        let given = try interpreter.call(arguments.withArguments(["x", "y z"]).withEnvironment(["A": "1", "B": "2"]))
        #expect(given.value == 3)
        #expect(given.stdoutText == "arg probe.wasm\narg x\narg y z\nenv A=1\nenv B=2\n")
        // The host's own environment never reaches a guest.
        #expect(!given.stdoutText.contains("PATH="))
    }

    @Test(arguments: WASIGuestTests.engines) func standardInputIsEmptyUnlessACallGivesIt(engine: GuestEngine) throws {
        let shout = try probe().function("shout", returning: Int.self).capturingOutput()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let empty = try interpreter.call(shout)
        #expect(empty.value == 0)
        #expect(empty.stdout.isEmpty)
        let given = try interpreter.call(shout.withStdin(Array("quiet please\n".utf8)))
        #expect(given.value == 13)
        #expect(given.stdoutText == "QUIET PLEASE\n")
        // The next call's input is its own.
        #expect(try interpreter.call(shout).value == 0)
    }

    @Test(arguments: WASIGuestTests.engines) func theSandboxHidesTheHost(engine: GuestEngine) throws {
        let module = try probe()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let readFile = try module.function("read_file", returning: String.self)
        let listDirectory = try module.function("list_dir", returning: String.self)
        for path in ["/etc/passwd", "/proc/self/environ", "../etc/passwd", "passwd"] {
            let result = try interpreter.call(readFile, path)
            #expect(result.hasPrefix("error: "), "\(path) gave \(result)")
        }
        #expect(try interpreter.call(listDirectory, "/").hasPrefix("error: "))
        #expect(try interpreter.call(listDirectory, ".").hasPrefix("error: "))
        #expect(try interpreter.call(module.function("write_file", returning: String.self), "/tmp/escaped", "x").hasPrefix("error: "))
        #expect(access("/tmp/escaped", F_OK) != 0)
        // sock_accept and sock_send: ENOSYS (52) both.
        #expect(try interpreter.call(module.function("socket", returning: Int.self)) == 52_052)
        // Pointers outside the guest's memory: EFAULT (21), never a host crash.
        #expect(try interpreter.call(module.function("bad_pointer", returning: Int.self)) == 21_021)
        // What is granted works.
        #expect(try interpreter.call(module.function("clock_ok", returning: Int.self)) == 1)
    }

    @Test(arguments: WASIGuestTests.engines) func aPreopenShowsOnlyItsDirectoryReadOnlyUnlessAsked(engine: GuestEngine) throws {
        let root = temporaryDirectory("preopen")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let data = "\(root)/data"
        mkdir(data, 0o700)
        try "inside\nsecond\n".write(toFile: "\(data)/hello.txt", atomically: false, encoding: .utf8)
        try "outside\n".write(toFile: "\(root)/secret.txt", atomically: false, encoding: .utf8)
        let readOnly = try probe(WASIOptions(preopens: [.init(hostPath: data, guestPath: "/data")], output: .discard))
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let readFile = try readOnly.function("read_file", returning: String.self)
        let writeFile = try readOnly.function("write_file", returning: String.self)
        #expect(try interpreter.call(readFile, "/data/hello.txt") == "inside")
        #expect(try interpreter.call(readOnly.function("list_dir", returning: String.self), "/data") == "hello.txt")
        #expect(try interpreter.call(readOnly.function("list_dir", returning: String.self), "/data/..").hasPrefix("error: "))
        // A symbolic link inside the directory that points out of it leads nowhere either.
        symlink("\(root)/secret.txt", "\(data)/link.txt")
        symlink("/etc", "\(data)/etc")
        for path in ["/data/../secret.txt", "/data/../../etc/passwd", "/secret.txt", "/etc/passwd", "/data/link.txt", "/data/etc/passwd"] {
            #expect(try interpreter.call(readFile, path).hasPrefix("error: "), "\(path)")
        }
        #expect(try interpreter.call(writeFile, "/data/new.txt", "x").hasPrefix("error: "))
        #expect(try interpreter.call(writeFile, "/data/hello.txt", "x").hasPrefix("error: "))
        #expect(access("\(data)/new.txt", F_OK) != 0)
        #expect(try String(contentsOfFile: "\(data)/hello.txt", encoding: .utf8) == "inside\nsecond\n")

        let writable = try readOnly.withWASI(WASIOptions(preopens: [.init(hostPath: data, guestPath: "/data", isWritable: true)], output: .discard))
        #expect(try interpreter.call(writable.function("write_file", returning: String.self), "/data/new.txt", "made here") == "ok")
        #expect(try String(contentsOfFile: "\(data)/new.txt", encoding: .utf8) == "made here")
        #expect(try interpreter.call(writable.function("write_file", returning: String.self), "/data/../escaped.txt", "x").hasPrefix("error: "))
        #expect(access("\(root)/escaped.txt", F_OK) != 0)
        // A preopen that is not a directory is refused when the module is made.
        #expect(throws: ModuleError.self) {
            try readOnly.withWASI(WASIOptions(preopens: [.init(hostPath: "\(data)/hello.txt", guestPath: "/x")]))
        }
    }

    @Test(arguments: WASIGuestTests.engines) func aGuestPrintingForeverIsStoppedByTheOutputCap(engine: GuestEngine) throws {
        var limits = InterpreterLimits.default
        limits.maxValueBytes = 64 << 10
        let module = try probe(limits: limits)
        let interpreter = Interpreters.create(limits: limits, engine: engine)
        defer { try? interpreter.close() }
        do {
            _ = try interpreter.call(module.function("spam", returning: Int.self))
            Issue.record("spam returned")
        } catch let error as GuestError {
            #expect(error.kind == .outputLimit)
        }
        #expect(try interpreter.call(module.function("clock_ok", returning: Int.self)) == 1)
    }

    @Test(arguments: WASIGuestTests.engines) func procExitInAReactorIsAnErrorAndRenewsTheInstance(engine: GuestEngine) throws {
        let module = try probe()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let counter = try module.function("counter", returning: Int.self)
        #expect(try interpreter.call(counter) == 1)
        #expect(try interpreter.call(counter) == 2)
        do {
            _ = try interpreter.call(module.function("exit_with", returning: Int.self), 7)
            Issue.record("exit_with returned")
        } catch let error as GuestError {
            #expect(error.kind == .exited)
            #expect(error.exitStatus == 7)
        }
        #expect(try interpreter.call(counter) == 1)
    }

    @Test(arguments: WASIGuestTests.engines) func aCommandReturnsItsExitStatusAndOutputEachRunFresh(engine: GuestEngine) throws {
        let command = try BundledGuests.wordstat.command()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let input = Array("3 1 2 apple Apple pear 2.5\n".utf8)
        let first = try interpreter.call(command.withStdin(input))
        #expect(first.value == 0)
        #expect(
            first.stdoutText
                == "tokens: 7\nnumbers: 4 min 1 median 2.25 max 3 mean 2.125\nwords: 2 distinct\n  apple 2\n  pear 1\n")
        #expect(try interpreter.call(command.withStdin(input)) == first)
        let usage = try interpreter.call(command.withArguments(["-n", "many"]))
        #expect(usage.value == 2)
        #expect(usage.stderrText == "wordstat: -n needs a count, got 'many'\n")
        let missing = try interpreter.call(command.withArguments(["/etc/passwd"]))
        #expect(missing.value == 1)
        #expect(missing.stderrText.hasPrefix("wordstat: /etc/passwd: "))
    }

    @Test(arguments: WASIGuestTests.engines) func theSameGuestGivesTheSameResultsOnEveryInProcessExecutor(engine: GuestEngine) throws {
        let summarize = try BundledGuests.wordstatReactor.function("summarize", returning: String.self).capturingOutput()
        let inputs = (0..<24).map { index in (0...index).map { "w\($0 % 5) \($0)" }.joined(separator: " ") }
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let expected = try inputs.map { try interpreter.call(summarize, $0) }
        #expect(expected[0].value == "tokens: 2\nnumbers: 1 min 0 median 0 max 0 mean 0\nwords: 1 distinct\n  w0 1\n")
        let pool = try InterpreterPoolExecutor(maxWorkers: 3, modules: [BundledGuests.wordstatReactor], engine: engine)
        #expect(try pool.map(summarize, inputs).collect() == expected)
        pool.shutdown()
        let threads = try ThreadPoolExecutor(maxWorkers: 3)
        #expect(try threads.map(summarize, inputs).collect() == expected)
        threads.shutdown()
    }

    @Test(arguments: WASIGuestTests.engines) func eachWorkersOutputIsItsOwn(engine: GuestEngine) throws {
        let greet = try probe().function("greet", returning: String.self).capturingOutput()
        let names = (0..<200).map { "guest\($0)" }
        let pool = try InterpreterPoolExecutor(maxWorkers: 4, engine: engine)
        defer { pool.shutdown() }
        for (name, result) in zip(names, try pool.map(greet, names).collect()) {
            #expect(result.value == "hello, \(name)!")
            #expect(result.stdoutText == "greeting \(name)\n")
        }
    }

    @Test(arguments: WASIGuestTests.engines) func shuttingDownClosesEveryWorkersWASIState(engine: GuestEngine) throws {
        let root = temporaryDirectory("lifecycle")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let module = try probe(WASIOptions(preopens: [.init(hostPath: root, guestPath: "/data")], output: .discard))
        let readFile = try module.function("read_file", returning: String.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 4, modules: [module], engine: engine)
        let results = try pool.map(readFile, Array(repeating: "/data/none", count: 64)).collect()
        #expect(results.allSatisfy { $0.hasPrefix("error: ") })
        #expect(openDescriptorCount(under: root) == pool.workerCount)  // each worker holds its preopened directory
        pool.shutdown()
        #expect(openDescriptorCount(under: root) == 0)
        let interpreter = Interpreters.create(engine: engine)
        _ = try interpreter.call(readFile, "/data/none")
        #expect(openDescriptorCount(under: root) == 1)
        try interpreter.close()
        #expect(openDescriptorCount(under: root) == 0)
    }

    /// Every bundled WASI guest, called on both engines with the same calls: the same values,
    /// output, errors and exit statuses.
    @Test(.enabled(if: compiledEngineTestsRun)) func theBundledWASIGuestsAgreeOnBothEngines() throws {
        let root = temporaryDirectory("conformance")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "one two\nthree\n".write(toFile: "\(root)/words.txt", atomically: false, encoding: .utf8)
        let probe = try probe(
            WASIOptions(preopens: [.init(hostPath: root, guestPath: "/data")], arguments: ["p"], environment: ["K": "v"], output: .discard))
        let wordstat = try BundledGuests.wordstat.withWASI(WASIOptions(preopens: [.init(hostPath: root, guestPath: "/data")], output: .discard))
        let command = try wordstat.command()
        var calls: [(String, (Interpreter) throws -> ShareableValue)] = []
        func add<Value: Shareable>(_ label: String, _ function: GuestFunction<Value>, _ arguments: [ShareableValue] = []) {
            let invocation = GuestInvocation(module: function.module, function: function.name, arguments: arguments, fuel: nil, wasi: function.wasi)
            calls.append((label, { interpreter in try interpreter.run(invocation, wait: false) }))
        }
        for name in ["greet", "read_file", "list_dir"] {
            for argument in ["Ada", "/data/words.txt", "/data", "/etc/passwd", ""] {
                add("probe.\(name)(\(argument))", try probe.function(name, returning: String.self).capturingOutput(), [.string(argument)])
            }
        }
        for name in ["counter", "arguments", "clock_ok", "socket", "bad_pointer"] {
            add("probe.\(name)", try probe.function(name, returning: Int.self).capturingOutput())
        }
        add("probe.shout", try probe.function("shout", returning: Int.self).withStdin(Array("loud\n".utf8)).capturingOutput())
        add("probe.exit_with", try probe.function("exit_with", returning: Int.self).capturingOutput(), [.int(3)])
        add("probe.counter after exit", try probe.function("counter", returning: Int.self).capturingOutput())
        for arguments in [[], ["-n", "2"], ["-n", "x"], ["/data/words.txt"], ["/data/none"]] {
            add("wordstat \(arguments)", command.withArguments(arguments).withStdin(Array("b a b 1 2 3.5\n".utf8)))
        }
        add(
            "wordstat-reactor.summarize", try BundledGuests.wordstatReactor.function("summarize", returning: String.self).capturingOutput(),
            [.string("x y x 4")])
        add("TasksWASI", try BundledGuests.tasksWASI.function("cpu_bound", returning: Int.self), [.int(1000)])
        let interpreters = [Interpreters.create(engine: .wasmKit), Interpreters.create(engine: .compiled)]
        defer { for interpreter in interpreters { try? interpreter.close() } }
        for (label, call) in calls {
            let outcomes = interpreters.map { interpreter in Outcome { try call(interpreter) } }
            #expect(outcomes[0] == outcomes[1], "\(label): \(outcomes)")
        }
    }

    /// What process and MPI pools send: every option but the output destination, which stays
    /// with the caller.
    @Test func optionsCrossTheWire() throws {
        var options = WASIOptions(
            capabilities: [.clocks, .poll], preopens: [.init(hostPath: "/srv", guestPath: "/data", isWritable: true)],
            arguments: ["-v", "x y"], environment: ["B": "2", "A": "1"], output: .handler { _ in })
        options.maxOpenFiles = 5
        let copy = try #require(WASIOptions(wireValue: options.wireValue))
        #expect(copy.capabilities == options.capabilities)
        #expect(copy.preopens == options.preopens)
        #expect(copy.arguments == options.arguments)
        #expect(copy.environment == options.environment)
        #expect(copy.maxOpenFiles == 5)
        if case .discard = copy.output {} else { Issue.record("the destination travelled: \(copy.output)") }
        let call = WASICallOptions(arguments: ["a"], environment: [:], stdin: [1, 2, 3], capture: true)
        #expect(WASICallOptions(wireValue: call.wireValue) == call)
        #expect(WASICallOptions(wireValue: WASICallOptions().wireValue) == WASICallOptions())
        #expect(WASIOptions(wireValue: .array([.int(1)])) == nil)
        #expect(WASICallOptions(wireValue: .string("x")) == nil)
    }

    @Test func unknownWASIImportsAreNamed() throws {
        let text = """
            (module
              (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "not_a_call" (func))
              (memory (export "memory") 1))
            """
        do {
            _ = try GuestModule(wat: text)
            Issue.record("loaded")
        } catch {
            #expect(error.code == .missingImports)
            #expect(error.missingImports == ["wasi_snapshot_preview1.not_a_call"])
        }
    }

    /// The shapes of argument the bridge itself would not survive or would take too long over:
    /// an iovec array the data read would overwrite, more than 1,024 iovecs, a total over 2 GiB;
    /// and the descriptors a guest may take: at most `maxOpenFiles`, and never a FIFO.
    @Test(arguments: WASIGuestTests.engines) func hostileWASIArgumentsAreErrorsForTheGuest(engine: GuestEngine) throws {
        let text = """
            (module
              (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "path_open"
                (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
              (memory (export "memory") 512)
              (data (i32.const 2000) ".")
              (data (i32.const 2008) "fifo")
              ;; iov[0] = {100, 16} covers iov[1] itself: reading into it would rewrite iov[1].
              (func (export "overlapping_read") (result i32)
                (i32.store (i32.const 96) (i32.const 100)) (i32.store (i32.const 100) (i32.const 16))
                (i32.store (i32.const 104) (i32.const 200)) (i32.store (i32.const 108) (i32.const 4))
                (call $fd_read (i32.const 0) (i32.const 96) (i32.const 2) (i32.const 300)))
              (func (export "many_iovecs") (result i32)
                (call $fd_write (i32.const 1) (i32.const 4096) (i32.const 1025) (i32.const 60000)))
              ;; 100 iovecs of 32 MiB each: 3.2 GiB in all.
              (func (export "huge_total") (result i32) (local $i i32)
                (loop $fill
                  (i32.store (i32.add (i32.const 4096) (i32.mul (local.get $i) (i32.const 8))) (i32.const 0))
                  (i32.store (i32.add (i32.const 4100) (i32.mul (local.get $i) (i32.const 8))) (i32.const 33554432))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $fill (i32.lt_u (local.get $i) (i32.const 100))))
                (call $fd_write (i32.const 1) (i32.const 4096) (i32.const 100) (i32.const 60000)))
              ;; Opens "." until refused: count * 1000 + the errno.
              (func (export "open_many") (result i32) (local $count i32) (local $errno i32)
                (block $done
                  (loop $open
                    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 2000) (i32.const 1)
                      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 3000)))
                    (br_if $done (local.get $errno))
                    (local.set $count (i32.add (local.get $count) (i32.const 1)))
                    (br_if $open (i32.lt_u (local.get $count) (i32.const 10000)))))
                (i32.add (i32.mul (local.get $count) (i32.const 1000)) (local.get $errno)))
              (func (export "open_fifo") (result i32)
                (call $path_open (i32.const 3) (i32.const 0) (i32.const 2008) (i32.const 4)
                  (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 3000))))
            """
        let root = temporaryDirectory("hostile")
        defer { try? FileManager.default.removeItem(atPath: root) }
        mkfifo("\(root)/fifo", 0o600)
        var options = WASIOptions(preopens: [.init(hostPath: root, guestPath: "/data")], output: .discard)
        options.maxOpenFiles = 8
        let module = try GuestModule(wat: text, name: "hostile", limits: InterpreterLimits(memoryBytes: 64 << 20), wasi: options)
        let interpreter = Interpreters.create(limits: InterpreterLimits(memoryBytes: 64 << 20, timeLimit: .seconds(10)))
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        let read = try module.function("overlapping_read", returning: Int.self).withStdin(Array(repeating: 0xFF, count: 64))
        #expect(try interpreter.call(read) == 21)  // EFAULT
        #expect(try interpreter.call("many_iovecs") == .int(28))  // EINVAL
        #expect(try interpreter.call("huge_total") == .int(28))  // EINVAL
        #expect(try interpreter.call("open_fifo") == .int(58))  // ENOTSUP: opening it would wait for a writer
        #expect(try interpreter.call("open_many") == .int(8_033))  // 8 opened, then EMFILE
    }

    /// Every WASI function the host links, called with hostile arguments (pointers at and past
    /// the end of memory, huge lengths, odd descriptors, iovec arrays that overlap their buffers,
    /// standard input to read over them): each returns an errno or fails the call with a typed
    /// error, and the process survives.
    @Test(arguments: WASIGuestTests.engines) func fuzzedWASICallsNeverCrashTheHost(engine: GuestEngine) throws {
        let root = temporaryDirectory("fuzz")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let names = WASIHost.signatures.keys.sorted().filter { $0 != "poll_oneoff" }
        var text = "(module\n"
        for name in names {
            let type = WASIHost.signatures[name]!
            let parameters = type.parameters.map(typeName).joined(separator: " ")
            let results = type.results.map(typeName).joined(separator: " ")
            text += "(import \"wasi_snapshot_preview1\" \"\(name)\" (func $\(name) (param \(parameters)) (result \(results))))\n"
        }
        text += "(memory (export \"memory\") 1)\n"
        // Fills memory with plausible iovecs (a short buffer just after the iovec itself) from a
        // seed, so that random pointers land on vectors whose buffers overlap the vector.
        text += """
            (func (export "scribble") (param $seed i32) (local $at i32)
              (loop $fill
                (local.set $seed (i32.xor (local.get $seed) (i32.shl (local.get $seed) (i32.const 13))))
                (local.set $seed (i32.xor (local.get $seed) (i32.shr_u (local.get $seed) (i32.const 17))))
                (local.set $seed (i32.xor (local.get $seed) (i32.shl (local.get $seed) (i32.const 5))))
                (i32.store (local.get $at)
                  (i32.and (i32.add (local.get $at) (i32.and (local.get $seed) (i32.const 0x3F))) (i32.const 0xFFFF)))
                (i32.store (i32.add (local.get $at) (i32.const 4)) (i32.shr_u (local.get $seed) (i32.const 26)))
                (local.set $at (i32.add (local.get $at) (i32.const 8)))
                (br_if $fill (i32.lt_u (local.get $at) (i32.const 65528)))))

            """
        for name in names {
            let type = WASIHost.signatures[name]!
            let parameters = type.parameters.map(typeName).joined(separator: " ")
            let results = type.results.map(typeName).joined(separator: " ")
            let gets = type.parameters.indices.map { "local.get \($0)" }.joined(separator: " ")
            text += "(func (export \"\(name)\") (param \(parameters)) (result \(results)) \(gets) call $\(name))\n"
        }
        text += ")"
        var options = WASIOptions(
            capabilities: [.clocks, .random, .stdio, .process, .fileSystem],
            preopens: [.init(hostPath: root, guestPath: "/data", isWritable: true)], output: .discard)
        options.arguments = ["a", "b"]
        let module = try GuestModule(wat: text, name: "fuzz", wasi: options)
        let limits = InterpreterLimits(maxValueBytes: 1 << 16, timeLimit: .seconds(5))
        var interpreter = Interpreters.create(limits: limits, engine: engine)
        defer { try? interpreter.close() }
        var generator = SplitMix(state: 0x5EED_0012)
        let edges: [UInt32] = [0, 1, 3, 4, 8, 65_532, 65_535, 65_536, 0x7FFF_FFFF, 0xFFFF_FFF0, 0xFFFF_FFFF]
        var returned = 0
        // Every function in turn, and every other round one that takes an iovec array.
        let vectored = names.filter { WASIHost.pointerChecks[$0]?.contains { if case .iovecs = $0 { true } else { false } } == true }
        for round in 0..<4_000 {
            let name = round % 2 == 0 ? names[(round / 2) % names.count] : vectored[(round / 2) % vectored.count]
            let type = WASIHost.signatures[name]!
            let arguments: [ShareableValue] = type.parameters.map { parameter in
                let bits: UInt32
                switch UInt8.random(in: 0..<4, using: &generator) {
                case 0: bits = edges.randomElement(using: &generator)!
                case 1: bits = UInt32.random(in: 0...4, using: &generator)  // descriptors, counts
                case 2: bits = UInt32.random(in: 0...8_750, using: &generator) * 8  // on a scribbled iovec
                default: bits = UInt32.random(in: 0...70_000, using: &generator)
                }
                return parameter == .i64 ? .int(Int64(bits)) : .int(Int64(Int32(bitPattern: bits)))
            }
            if round % 50 == 0 {
                // A fresh interpreter now and then: the calls close and renumber its descriptors.
                if round % 100 == 0 {
                    try interpreter.close()
                    interpreter = Interpreters.create(limits: limits, engine: engine)
                    try interpreter.exec(module)
                }
                _ = try interpreter.call("scribble", [.int(Int64(round + 1))])
            }
            let invocation = GuestInvocation(
                module: module, function: name, arguments: arguments, fuel: nil,
                wasi: WASICallOptions(stdin: Array(repeating: 0xFF, count: 300)))
            do {
                _ = try interpreter.run(invocation, wait: false)
                returned += 1
            } catch let error as GuestError {
                #expect([.exited, .outputLimit, .invalidPointer, .trap].contains(error.kind), "\(name)\(arguments): \(error)")
            }
        }
        #expect(returned > 1_500)
        #expect(try interpreter.call("clock_time_get", [.int(0), .int(0), .int(64)]) == .int(0))
    }
}

@Suite("Building WASI guests", .enabled(if: wasiBuildTestsRun))
struct WASIGuestBuildTests {
    /// The committed WASI guests are what `Scripts/generate-guests.sh` builds from `Guests/` now.
    @Test func theCommittedWASIGuestsAreCurrent() async throws {
        let builds: [(String, [String], GuestBuilder.WASITarget, Bool)] = [
            ("probe.wasm", ["Guests/wasi/probe.c"], .reactor, true),
            ("wordstat.wasm", ["Guests/wasi/wordstat.c"], .command, true),
            ("wordstat-reactor.wasm", ["Guests/wasi/wordstat.c"], .reactor, true),
            ("TasksWASI.wasm", ["Guests/Tasks.swift"], .reactor, false),
        ]
        for (name, sources, target, runtime) in builds {
            let output = "/tmp/futures-test-\(getpid())-\(name)"
            defer { unlink(output) }
            var options = GuestBuilder.Options()
            options.wasi = target
            options.includeRuntime = runtime
            if !runtime { options.stackSize = 16_384 }
            try await GuestBuilder().build(sources: sources.map { "\(repositoryRoot)/\($0)" }, output: output, options: options)
            let built = try #require(FileManager.default.contents(atPath: output))
            let bundled = try #require(BundledGuests.bytes(named: name))
            // Embedded Swift puts a fresh module hash in the data section (11) of each build.
            #expect(sections([UInt8](built)).filter { $0.id != 11 } == sections(bundled).filter { $0.id != 11 }, "\(name)")
            if runtime { #expect([UInt8](built) == bundled, "\(name) differs from its committed build") }
        }
    }

    @Test func aWASICommandInCBuildsAndRuns() async throws {
        let source = "/tmp/futures-test-\(getpid())-hello.c"
        let output = "/tmp/futures-test-\(getpid())-hello.wasm"
        defer {
            unlink(source)
            unlink(output)
        }
        try """
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int main(int argc, char **argv) {
            char *copy = malloc(64);
            strcpy(copy, argc > 1 ? argv[1] : "nobody");
            printf("hi %s\\n", copy);
            fprintf(stderr, "done\\n");
            return argc;
        }
        """.write(toFile: source, atomically: false, encoding: .utf8)
        var options = GuestBuilder.Options()
        options.wasi = .command
        try await GuestBuilder().build(sources: [source], output: output, options: options)
        let command = try GuestModule(contentsOf: output).command()
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        let result = try interpreter.call(command.withArguments(["there"]))
        #expect(result.value == 2)
        #expect(result.stdoutText == "hi there\n")
        #expect(result.stderrText == "done\n")
    }

    @Test func anEmbeddedSwiftWASIReactorBuildsAndRuns() async throws {
        let source = "/tmp/futures-test-\(getpid())-Echo.swift"
        let output = "/tmp/futures-test-\(getpid())-Echo.wasm"
        defer {
            unlink(source)
            unlink(output)
        }
        try """
        @_expose(wasm, "echo") @_cdecl("echo")
        public func echo(_ pointer: UnsafePointer<UInt8>?, _ count: Int32) {
            let text = String(guestBytes: pointer, count: count)
            print("echoing \\(text)")
            Guest.returnString(text + text)
        }
        """.write(toFile: source, atomically: false, encoding: .utf8)
        var options = GuestBuilder.Options()
        options.wasi = .reactor
        try await GuestBuilder().build(sources: [source], output: output, options: options)
        let module = try GuestModule(contentsOf: output)
        #expect(module.wasiKind == .reactor)
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        let result = try interpreter.call(module.function("echo", returning: String.self).capturingOutput(), "ab")
        #expect(result.value == "abab")
        #expect(result.stdoutText == "echoing ab\n")
    }
}

extension WASIGuestTests {
    /// A guest whose memory has no pages passes empty ranges: EFAULT, never a stopped process.
    @Test(arguments: WASIGuestTests.engines) func aGuestWithoutMemoryGetsErrorsNotACrash(engine: GuestEngine) throws {
        let module = try GuestModule(wat: HostileGuests.wasiWithoutMemory, name: "no-memory", wasi: WASIOptions(output: .discard))
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try interpreter.call(module.function("random", returning: Int.self)) == 21)
        #expect(try interpreter.call(module.function("write", returning: Int.self)) == 21)
    }
}
