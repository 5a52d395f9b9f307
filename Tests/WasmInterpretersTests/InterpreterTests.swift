import Dispatch
import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("Interpreters (PEP 734)")
struct InterpreterTests {
    @Test func createListCloseAndMain() throws {
        let interpreter = Interpreters.create()
        #expect(interpreter.id > 0)
        #expect(Interpreters.list().contains(interpreter))
        #expect(Interpreters.list().contains(Interpreters.main))
        #expect(Interpreters.main.id == 0)
        #expect(Interpreters.main.isRunning, "the main interpreter always counts as running")
        #expect(!interpreter.isRunning)
        #expect(Interpreters.current == Interpreters.main)
        try interpreter.close()
        #expect(!Interpreters.list().contains(interpreter))
        #expect(throws: InterpreterError(.notFound, "interpreter \(interpreter.id) was closed")) { try interpreter.close() }
        let error = try #require(throws: InterpreterError.self) { try Interpreters.main.close() }
        #expect(error.code == .mainInterpreter)
        #expect(throws: InterpreterError.self) { try interpreter.call("add", [1, 2]) }
    }

    @Test func execLoadsModulesAndCallReturnsValues() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(wat: Fixtures.basic)
        #expect(try interpreter.call("add", [2, 40]) == 42)
        #expect(try interpreter.call("half", [3.0]) == 1.5)
        #expect(try interpreter.call("noop") == .none)
        #expect(try interpreter.call("length", ["héllo"]) == 6)
        #expect(try interpreter.call("echo", ["héllo ✓"]) == "héllo ✓")
        let square = try Fixtures.module(Fixtures.basic).function("square", returning: Int.self)
        #expect(try interpreter.call(square, 9) == 81)
    }

    @Test func stateIsPerInterpreter() throws {
        let module = Fixtures.module(Fixtures.basic)
        let a = Interpreters.create()
        let b = Interpreters.create()
        defer {
            try? a.close()
            try? b.close()
        }
        try a.exec(module)
        try b.exec(module)
        #expect(try a.call("bump") == 1)
        #expect(try a.call("bump") == 2)
        #expect(try b.call("bump") == 1, "globals are not shared")
        #expect(try a.call("whoami") == .int(Int64(a.id)))
        #expect(try b.call("whoami") == .int(Int64(b.id)))
    }

    @Test func runningInterpreterRejectsASecondCaller() throws {
        let queue = Interpreters.createQueue()
        let interpreter = Interpreters.create()
        try interpreter.exec(wat: Fixtures.queues)
        let blocked = interpreter.callInThread("get_one", [.queue(queue.id), -1])
        waitUntil { interpreter.isRunning }
        let error = try #require(throws: InterpreterError.self) { try interpreter.call("get_one", [.queue(queue.id), 0]) }
        #expect(error.code == .running)
        let closing = try #require(throws: InterpreterError.self) { try interpreter.close() }
        #expect(closing.code == .running)
        try queue.put(7)
        #expect(try blocked.result(timeout: .seconds(10)) == 7)
        try interpreter.close()
    }

    @Test func missingFunctionAndBadArguments() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(wat: Fixtures.basic)
        expectFailure(.missingFunction) { _ = try interpreter.call("nope") }
        expectFailure(.badArguments) { _ = try interpreter.call("add", [1]) }
        expectFailure(.badArguments) { _ = try interpreter.call("add", ["one", 2]) }
        #expect(try interpreter.call("add", [1, 2]) == 3, "still serving")
    }

    @Test func malformedBytesAndMissingImportsAreClearErrors() throws {
        let malformed = try #require(throws: ModuleError.self) { try GuestModule(bytes: [0, 1, 2, 3]) }
        #expect(malformed.code == .malformed)
        let bad = try #require(throws: ModuleError.self) { try GuestModule(wat: "(module (func (export \"f\") (result i32) i64.const 1))") }
        #expect(bad.code == .invalid)
        let missing = try #require(throws: ModuleError.self) {
            try GuestModule(
                wat: """
                    (module
                      (import "env" "numpy_init" (func (param i32)))
                      (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
                      (import "cf" "log" (func (param i32 i32))))
                    """, name: "numpy.wasm")
        }
        #expect(missing.code == .missingImports)
        #expect(missing.missingImports == ["env.numpy_init", "wasi_snapshot_preview1.fd_write"])
        #expect(missing.message.contains("numpy.wasm cannot load in an interpreter"))
        let wrongSignature = try #require(throws: ModuleError.self) {
            try GuestModule(wat: #"(module (import "cf" "log" (func (param i64))))"#)
        }
        #expect(wrongSignature.missingImports == ["cf.log"])
        #expect(throws: ModuleError.self) { try GuestModule(contentsOf: "/nonexistent/module.wasm") }
    }
}

@Suite("Guest faults")
struct GuestFaultTests {
    let module = Fixtures.module(Fixtures.basic)

    @Test func trapsFailTheCallAndTheInterpreterKeepsServing() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("bump") == 1)
        expectFailure(.unreachable) { _ = try interpreter.call("boom") }
        expectFailure(.divideByZero) { _ = try interpreter.call("div", [1, 0]) }
        expectFailure(.integerOverflow) { _ = try interpreter.call("div", [.int(.min), -1]) }
        expectFailure(.memoryOutOfBounds) { _ = try interpreter.call("oob") }
        expectFailure(.stackExhausted) { _ = try interpreter.call("recurse", [0]) }
        #expect(try interpreter.call("add", [1, 1]) == 2)
        #expect(try interpreter.call("bump") == 1, "a trap replaces the instances with fresh ones")
    }

    @Test func executionFailedNamesTheFunctionAndInterpreter() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        let error = try #require(throws: GuestError.self) { try interpreter.call("boom") }
        #expect(error.function == "boom")
        #expect(error.interpreterID == interpreter.id)
        #expect(error.message == "unreachable")
    }

    @Test func fuelBoundsEachCall() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: 100_000))
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        expectFailure(.outOfFuel) { _ = try interpreter.call("spin") }
        #expect(try interpreter.call("add", [20, 22]) == 42, "a new budget for each call")
    }

    @Test func memoryCapRefusesGrowthAndReportsIt() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(memoryBytes: 4 * 65_536))
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("grow", [2]) == 1, "growing within the cap works")
        expectFailure(.memoryLimit) { _ = try interpreter.call("grow", [10]) }
        let big = Interpreters.create(limits: InterpreterLimits(memoryBytes: 65_536))
        defer { try? big.close() }
        expectFailure(.memoryLimit) { try big.exec(wat: "(module (memory 4))") }
    }

    @Test func badGuestPointersFailTheCallNotTheHost() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        expectFailure(.invalidPointer) { _ = try interpreter.call("bad_return") }
        #expect(try interpreter.call("echo", ["ok"]) == "ok")
    }

    @Test func valueSizeCapsApplyInAndOut() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(maxValueBytes: 16))
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        expectFailure(.valueTooLarge) { _ = try interpreter.call("length", [.string(String(repeating: "x", count: 17))]) }
        #expect(try interpreter.call("echo", ["sixteen bytes..."]) == "sixteen bytes...")
    }

    @Test func concurrentCreateAndClose() throws {
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<50 {
                let interpreter = Interpreters.create()
                do {
                    try interpreter.exec(module)
                    guard try interpreter.call("add", [.int(Int64(worker)), .int(Int64(round))]) == .int(Int64(worker + round)) else {
                        failures.increment()
                        continue
                    }
                    try interpreter.close()
                } catch {
                    failures.increment()
                }
            }
        }
        #expect(failures.count == 0)
    }
}

@Suite("Time limits")
struct TimeLimitTests {
    @Test func aRunawayGuestIsStoppedAtItsTimeLimit() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(timeLimit: .milliseconds(50)))
        defer { try? interpreter.close() }
        try interpreter.exec(wat: Fixtures.basic)
        expectFailure(.timedOut) { _ = try interpreter.call("spin") }
        #expect(try interpreter.call("add", [1, 2]) == 3, "the interpreter keeps serving")
    }

    @Test func timeLimitsReachPoolWorkers() throws {
        let module = Fixtures.module(Fixtures.basic)
        let spin = try module.function("spin", returning: ShareableValue.self)
        let add = try module.function("add", returning: Int.self)
        try InterpreterPoolExecutor(maxWorkers: 1, modules: [module], limits: InterpreterLimits(timeLimit: .milliseconds(250))).run { pool throws in
            let error = try #require(throws: GuestError.self) { try pool.submit(spin).result(timeout: .seconds(30)) }
            #expect(error.kind == .timedOut)
            #expect(try pool.submit(add, 2, 2).result() == 4)
        }
    }
}
