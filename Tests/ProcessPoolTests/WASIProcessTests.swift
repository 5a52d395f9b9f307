import BundledGuests
import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("WASI guests in worker processes")
struct WASIProcessTests {
    @Test func aWASIReactorGivesTheSameResultsInWorkerProcesses() throws {
        let summarize = try BundledGuests.wordstatReactor.function("summarize", returning: String.self).capturingOutput()
        let inputs = (0..<16).map { index in (0...index).map { "w\($0 % 4) \($0)" }.joined(separator: " ") }
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        let expected = try inputs.map { try interpreter.call(summarize, $0) }
        let pool = try makePool(maxWorkers: 2)
        defer { pool.shutdown() }
        #expect(try pool.map(summarize, inputs).collect() == expected)

        // Output that is not returned reaches the module's handler in this process.
        let records = Locked<[String]>([])
        let module = try BundledGuests.wordstatReactor.withWASI(
            WASIOptions(output: .handler { record in records.withLock { $0.append(String(decoding: record.stdout, as: UTF8.self)) } }))
        let plain = try module.function("summarize", returning: String.self)
        #expect(try pool.map(plain, inputs).collect() == expected.map(\.value))
        #expect(records.withLock { $0 }.sorted() == expected.map(\.stdoutText).sorted())
    }

    @Test func perCallArgumentsInputAndExitCrossToWorkers() throws {
        let pool = try makePool(maxWorkers: 1)
        defer { pool.shutdown() }
        let command = try BundledGuests.wordstat.command()
        let report = try pool.submit(command.withStdin(Array("b a b 10 20".utf8))).result()
        #expect(report.value == 0)
        #expect(report.stdoutText == "tokens: 5\nnumbers: 2 min 10 median 15 max 20 mean 15\nwords: 2 distinct\n  b 2\n  a 1\n")
        let usage = try pool.submit(command.withArguments(["-n", "x"])).result()
        #expect(usage.value == 2)
        #expect(usage.stderrText == "wordstat: -n needs a count, got 'x'\n")

        let probe = try BundledGuests.probe.withWASI(WASIOptions(output: .discard))
        let arguments = try probe.function("arguments", returning: Int.self).capturingOutput()
        let seen = try pool.submit(arguments.withArguments(["p", "q"]).withEnvironment(["K": "v"])).result()
        #expect(seen.value == 3)
        #expect(seen.stdoutText == "arg probe.wasm\narg p\narg q\nenv K=v\n")
        do {
            _ = try pool.submit(try probe.function("exit_with", returning: Int.self), 9).result()
            Issue.record("exit_with returned")
        } catch let error as GuestError {
            #expect(error.kind == .exited)
            #expect(error.exitStatus == 9)
        }
        #expect(try pool.submit(try probe.function("counter", returning: Int.self)).result() == 1)
    }
}

@Suite("Resident commands in worker processes")
struct ResidentProcessTests {
    @Test func eachWorkerProcessKeepsItsProgramBetweenCalls() throws {
        let echo = try GuestModule(wat: residentEchoServer, name: "echo-server", wasi: WASIOptions(output: .discard)).residentCommand()
        let pool = try makePool(maxWorkers: 1)
        defer { pool.shutdown() }
        let replies = try (0..<5).map { try pool.submit(echo.withStdin(Array("r\($0)".utf8))).result() }
        #expect(replies.map(\.value) == [1, 2, 3, 4, 5])
        #expect(replies.map(\.stdoutText) == ["1r0", "2r1", "3r2", "4r3", "5r4"])
        let exit = try #require(throws: GuestError.self) { try pool.submit(echo.withStdin(Array("x".utf8))).result() }
        #expect(exit.exitStatus == 7)
        #expect(try pool.submit(echo.withStdin(Array("again".utf8))).result().stdoutText == "1again")
    }
}
