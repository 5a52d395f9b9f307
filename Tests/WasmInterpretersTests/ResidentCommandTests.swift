import BundledGuests
import Foundation
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The threads of this process that run resident programs.
func residentThreads() -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in
        (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.hasPrefix("futures-residen") == true
    }.count
}

/// How the echo server writes exchange number `n`: one character, `"0" + n`.
private func tag(_ n: Int) -> String { String(UnicodeScalar(UInt8(48 + n))) }

@Suite("Resident commands", .serialized)
struct ResidentCommandTests {
    private func server(_ engine: GuestEngine) throws -> GuestFunction<GuestOutput<Int>> {
        try GuestModule(wat: residentEchoServer, name: "echo-server", wasi: WASIOptions(output: .discard)).residentCommand()
    }

    private func exchange(_ function: GuestFunction<GuestOutput<Int>>, _ request: String, in interpreter: Interpreter) throws -> (Int, String) {
        let reply = try interpreter.call(function.withStdin(Array(request.utf8)))
        return (reply.value, reply.stdoutText)
    }

    @Test(arguments: WASIGuestTests.engines) func theProgramKeepsItsStateBetweenCalls(engine: GuestEngine) throws {
        let echo = try server(engine)
        let interpreter = Interpreters.create(engine: engine)
        #expect(try exchange(echo, "a", in: interpreter) == (1, "1a"))
        #expect(try exchange(echo, "bc", in: interpreter) == (2, "2bc"))
        let reply = try interpreter.call(echo.withStdin(Array("e-oops".utf8)))
        #expect(reply.value == 3)
        #expect(reply.stdout.isEmpty)
        #expect(reply.stderrText == "3e-oops")
        try interpreter.close()
        // Closing waits for the program to end; its thread then leaves the process.
        waitUntil { residentThreads() == 0 }
        #expect(residentThreads() == 0)
    }

    @Test(arguments: WASIGuestTests.engines) func anExitFailsTheCallAndTheNextStartsAfresh(engine: GuestEngine) throws {
        let echo = try server(engine)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try exchange(echo, "a", in: interpreter) == (1, "1a"))
        let error = try #require(throws: GuestError.self) { try exchange(echo, "x", in: interpreter) }
        #expect(error.kind == .exited)
        #expect(error.exitStatus == 7)
        #expect(try exchange(echo, "b", in: interpreter) == (1, "1b"))
        let trap = try #require(throws: GuestError.self) { try exchange(echo, "t", in: interpreter) }
        #expect(trap.kind == .unreachable)
        #expect(try exchange(echo, "c", in: interpreter) == (1, "1c"))
    }

    @Test(arguments: WASIGuestTests.engines) func fuelAndTimeLimitsApplyToEachExchange(engine: GuestEngine) throws {
        let echo = try server(engine)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        // A budget that one exchange fits in, many times over: it is each exchange's, not the run's.
        let budgeted = echo.withFuel(10_000)
        for round in 1...20 { #expect(try exchange(budgeted, "a", in: interpreter) == (round, tag(round) + "a")) }
        let outOfFuel = try #require(throws: GuestError.self) { try exchange(budgeted, "l", in: interpreter) }
        #expect(outOfFuel.kind == .outOfFuel)
        #expect(try exchange(echo, "a", in: interpreter) == (1, "1a"))
        let timed = echo.withTimeLimit(.milliseconds(200))
        #expect(try exchange(timed, "b", in: interpreter) == (2, "2b"))
        let timedOut = try #require(throws: GuestError.self) { try exchange(timed, "l", in: interpreter) }
        #expect(timedOut.kind == .timedOut)
        #expect(try exchange(timed, "c", in: interpreter) == (1, "1c"))
    }

    /// A program that floods its output fails the call at the cap, and the next call starts it
    /// afresh: an exchange's output is bounded like any call's.
    @Test(arguments: WASIGuestTests.engines) func outputPastTheCapFailsTheExchange(engine: GuestEngine) throws {
        let echo = try server(engine)
        let interpreter = Interpreters.create(limits: InterpreterLimits(maxValueBytes: 8), engine: engine)
        defer { try? interpreter.close() }
        #expect(try exchange(echo, "ab", in: interpreter) == (1, "1ab"))
        let flood = try #require(throws: GuestError.self) { try exchange(echo, "abcdefghijkl", in: interpreter) }
        #expect(flood.kind == .outputLimit)
        #expect(try exchange(echo, "c", in: interpreter) == (1, "1c"))
    }

    @Test(arguments: WASIGuestTests.engines) func otherArgumentsStartAnotherRun(engine: GuestEngine) throws {
        let echo = try server(engine)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try exchange(echo, "a", in: interpreter) == (1, "1a"))
        #expect(try exchange(echo.withArguments(["-v"]), "b", in: interpreter) == (1, "1b"))
        #expect(try exchange(echo.withArguments(["-v"]), "c", in: interpreter) == (2, "2c"))
        #expect(try exchange(echo.withEnvironment(["A": "1"]), "d", in: interpreter) == (1, "1d"))
    }

    @Test(arguments: WASIGuestTests.engines) func otherCallsOfTheInterpreterRunBetweenExchanges(engine: GuestEngine) throws {
        let echo = try server(engine)
        let tasks = try BundledGuests.tasks.function("square", returning: Int.self)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try exchange(echo, "a", in: interpreter) == (1, "1a"))
        #expect(try interpreter.call(tasks, 7) == 49)
        #expect(try exchange(echo, "b", in: interpreter) == (2, "2b"))
        // A trap elsewhere resets the interpreter's instances, not the resident program.
        let boom = try GuestModule(wat: #"(module (func (export "boom") (result i32) unreachable))"#).function("boom", returning: Int.self)
        #expect(throws: GuestError.self) { try interpreter.call(boom) }
        #expect(try exchange(echo, "c", in: interpreter) == (3, "3c"))
    }

    @Test(arguments: WASIGuestTests.engines) func eachPoolWorkerServesFromItsOwnRun(engine: GuestEngine) throws {
        let echo = try server(engine)
        let inputs = (0..<40).map { "r\($0)" }
        let replies = try InterpreterPoolExecutor(maxWorkers: 3, engine: engine).run { pool in
            try pool.map(inputs) { echo.withStdin(Array($0.utf8)).call() }.collect()
        }
        for (input, reply) in zip(inputs, replies) { #expect(reply.stdoutText == tag(reply.value) + input) }
        // Each worker started its program once, and numbered its exchanges 1, 2, ...: as many
        // replies numbered 1 as programs started, and never more numbered n + 1 than n.
        var counts = [Int](repeating: 0, count: inputs.count + 2)
        for reply in replies { counts[reply.value] += 1 }
        #expect((1...3).contains(counts[1]))
        #expect(counts[0] == 0)
        for n in 1...inputs.count { #expect(counts[n + 1] <= counts[n]) }
        // Closing waits for the program to end; its thread then leaves the process.
        waitUntil { residentThreads() == 0 }
        #expect(residentThreads() == 0)
    }

    @Test func theResidentFlagCrossesTheWire() throws {
        let call = WASICallOptions(arguments: ["-c", "x"], stdin: [1], capture: true, resident: true)
        #expect(WASICallOptions(wireValue: call.wireValue) == call)
        #expect(throws: ModuleError.self) { try BundledGuests.probe.residentCommand() }
    }
}
