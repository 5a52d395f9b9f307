import TestSupport
import Testing

@testable import ConcurrentFutures

/// A `Codable` value whose encoding throws: an unsigned integer above `Int64.max`.
struct Huge: Codable, Shareable, Equatable {
    var value: UInt64
}

/// A `Codable` value whose `encode(to:)` throws.
struct Refusing: Codable, Shareable {
    struct Refusal: Error {}
    func encode(to encoder: any Encoder) throws { throw Refusal() }
    init() {}
    init(from decoder: any Decoder) throws {}
}

func expectModuleError(
    _ code: ModuleError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    expectError("ModuleError(\(code))", sourceLocation: sourceLocation, body) { (error: ModuleError) in error.code == code }
}

/// Issue 8: a hostile guest cannot crash the host, hang past its limits, or make the host hold
/// more memory than its limit.
@Suite("Hardening against hostile guests")
struct HardeningTests {
    // MARK: Crashes

    @Test func exceptionHandlingIsRefusedAtLoadNamingTheFeature() throws {
        for source in [HostileGuests.staleException, HostileGuests.tryTableOnly, HostileGuests.exceptionGrowth] {
            expectModuleError(.unsupportedFeature) { _ = try GuestModule(wat: source) }
        }
        let error = try #require(throws: ModuleError.self) { try GuestModule(wat: HostileGuests.staleException, name: "stale") }
        #expect(error.message.contains("exception handling"))
        #expect(error.message.contains("stale"))
        let interpreter = Interpreters.create()
        #expect(throws: ModuleError.self) { try interpreter.exec(wat: HostileGuests.staleException) }
        #expect(try interpreter.call(Fixtures.module(Fixtures.basic).function("add", returning: Int.self), 1, 2) == 3)
    }

    @Test func aGuestCannotRecurseThroughTheHostAllocator() throws {
        let queue = Interpreters.createQueue()
        for item in 0..<4 { try queue.put(item) }
        let interpreter = Interpreters.create()
        try interpreter.exec(wat: HostileGuests.reentrantAllocator)
        _ = try interpreter.call("set_queue", [.queue(queue.id)])
        // queue_get -> cf_alloc -> queue_get: refused at the second level.
        expectFailure(.reentrantCall) { _ = try interpreter.call("take", [.queue(queue.id)]) }
        #expect(queue.count == 4, "the item the outer queue_get took is put back")
        // An argument copied in: cf_alloc -> queue_get -> cf_alloc is refused too.
        _ = try interpreter.call("set_queue", [.queue(queue.id)])
        expectFailure(.reentrantCall) { _ = try interpreter.call("length", ["text"]) }
        #expect(queue.count == 4)
        #expect(try interpreter.call("length", [1, 2]) == 2, "the interpreter keeps serving")
    }

    /// A `name` section that names a function the module does not have (or does not parse)
    /// crashed WasmKit 0.4.2 on the first trap; such a section is dropped at load.
    @Test func aBadNameSectionCannotCrashTheHostWhenTheGuestTraps() throws {
        let bytes = try GuestModule.compile(wat: "(module (func (export \"boom\") unreachable))")
        func customSection(_ payload: [UInt8]) -> [UInt8] {
            let content = [4] + Array("name".utf8) + payload
            return [0, UInt8(content.count)] + content
        }
        // Function names (subsection 1): one entry, index 1000 (LEB128 e8 07), name "x".
        let outOfRange = customSection([1, 5, 1, 0xe8, 0x07, 1, 0x78])
        let garbage = customSection([1, 9, 0xff, 0xff])
        for section in [outOfRange, garbage] {
            let module = try GuestModule(bytes: bytes + section, name: "named")
            let interpreter = Interpreters.create()
            try interpreter.exec(module)
            expectFailure(.unreachable) { _ = try interpreter.call("boom") }
        }
    }

    @Test func unencodableValuesAreNotShareableErrorsWithTheReason() throws {
        let add = try Fixtures.module(Fixtures.basic).function("add", returning: Int.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 1)
        defer { pool.shutdown() }
        for future in [try pool.submit(add, Huge(value: .max), 1), try pool.submit(add, Refusing(), 1)] {
            let error = try #require(try future.exception(timeout: .seconds(10)) as? NotShareableError)
            #expect(error.message.contains("cannot be encoded"))
        }
        #expect(throws: NotShareableError.self) { _ = try Huge(value: UInt64(Int64.max) + 1).shareableValue }
        #expect(try Huge(shareableValue: Huge(value: 7).shareableValue) == Huge(value: 7))
        let threads = try ThreadPoolExecutor(maxWorkers: 1)
        defer { threads.shutdown() }
        #expect(try threads.submit(add, Huge(value: .max), 1).exception(timeout: .seconds(10)) is NotShareableError)
        let queue = Interpreters.createQueue()
        let putError = try #require(throws: NotShareableError.self) { try queue.put(Huge(value: .max)) }
        #expect(putError.message.contains("Huge"))
        #expect(throws: NotShareableError.self) { try queue.putNowait(Refusing()) }
        #expect(queue.isEmpty)
        #expect(try pool.submit(add, 2, 3).result() == 5, "the pool keeps serving")
    }

    @Test func aPoolThatCannotStartAThreadFailsTheSubmissionNotTheProcess() throws {
        let prefix = "no-threads-\(UInt64.random(in: 0...UInt64.max))"
        let pool = try ThreadPoolExecutor(maxWorkers: 2, threadNamePrefix: prefix)
        defer { pool.shutdown() }
        DetachedThread.simulatedFailures.withLock { $0[prefix] = 1 }
        let error = try #require(throws: ExecutorError.self) { try pool.submit { 1 } }
        #expect(error.code == .resourceExhausted)
        #expect(pool.workerCount == 0)
        #expect(try pool.submit { 2 }.result() == 2, "the next submission starts a thread")
        // With a live worker, a thread that cannot start leaves the work to it.
        let gate = Gate()
        let blocked = try pool.submit { () -> Int in
            gate.wait()
            return 3
        }
        gate.awaitArrivals(1)
        DetachedThread.simulatedFailures.withLock { $0[prefix] = 1 }
        let queued = try pool.submit { 4 }
        #expect(DetachedThread.simulatedFailures.withLock { $0[prefix] } == 0, "a second thread was asked for")
        #expect(pool.workerCount == 1)
        gate.open()
        #expect(try blocked.result(timeout: .seconds(10)) == 3)
        #expect(try queued.result(timeout: .seconds(10)) == 4)
    }

    // MARK: Hangs past a limit

    @Test func theTimeLimitCoversStartFunctionAllocatorAndFree() throws {
        let limits = InterpreterLimits(timeLimit: .milliseconds(100))
        let start = try GuestModule(wat: HostileGuests.loopingStart, name: "start")
        let interpreter = Interpreters.create(limits: limits)
        expectFailure(.timedOut) { try interpreter.exec(start) }
        expectFailure(.timedOut) { _ = try interpreter.call(start.function("answer", returning: Int.self)) }

        try interpreter.exec(wat: HostileGuests.loopingAllocator)
        expectFailure(.timedOut) { _ = try interpreter.call("length", ["text"]) }
        #expect(try interpreter.call("length", [1, 5]) == 5, "scalars need no allocator")

        let free = Interpreters.create(limits: limits)
        try free.exec(wat: HostileGuests.loopingFree)
        #expect(try free.call("length", ["four"]) == 4, "the result stands when only cf_free overran")
        #expect(try free.call("length", ["abc"]) == 3, "and the interpreter keeps serving")

        // Fuel covers them too.
        let fueled = Interpreters.create(limits: InterpreterLimits(fuel: 100_000))
        expectFailure(.outOfFuel) { try fueled.exec(start) }
    }

    @Test func theTimeLimitCoversTheStartFunctionOnEveryExecutor() throws {
        let limits = InterpreterLimits(timeLimit: .milliseconds(100))
        let start = try GuestModule(wat: HostileGuests.loopingStart, name: "start")
        let answer = try start.function("answer", returning: Int.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 1, limits: limits)
        defer { pool.shutdown() }
        let error = try #require(try pool.submit(answer).exception(timeout: .seconds(30)) as? GuestError)
        #expect(error.kind == .timedOut)
        // The thread pool's shared main interpreter honours a per-function limit.
        let threads = try ThreadPoolExecutor(maxWorkers: 1)
        defer { threads.shutdown() }
        let allocating = try GuestModule(wat: HostileGuests.loopingAllocator, name: "alloc")
        let length = try allocating.function("length", returning: Int.self).withTimeLimit(.milliseconds(100))
        let threadError = try #require(try threads.submit(length, "text").exception(timeout: .seconds(30)) as? GuestError)
        #expect(threadError.kind == .timedOut)
    }

    @Test func queueWaitsEndAtTheCallsDeadline() throws {
        let queue = Interpreters.createQueue()
        let interpreter = Interpreters.create(limits: InterpreterLimits(timeLimit: .milliseconds(100)))
        try interpreter.exec(wat: Fixtures.queues)
        // The guest waits forever (-1); the call's limit ends the wait.
        expectFailure(.timedOut) { _ = try interpreter.call("get_one", [.queue(queue.id), -1]) }
        try queue.put(5)
        #expect(try interpreter.call("get_one", [.queue(queue.id), -1]) == 5)
    }

    @Test func fuelBoundsMemoryGrowth() throws {
        // Each growth copies the whole memory, so growing a page at a time is quadratic: with a
        // fuel budget of 5e7 this ran for more than a minute before growth was charged.
        let limits = InterpreterLimits(fuel: 50_000_000, onMemoryLimit: .refuseGrowth)
        let interpreter = Interpreters.create(limits: limits)
        try interpreter.exec(wat: HostileGuests.memoryGrowth)
        expectFailure(.outOfFuel) { _ = try interpreter.call("grow_all") }
        // Without fuel, the memory limit stops it.
        let capped = Interpreters.create(limits: InterpreterLimits(memoryBytes: 4 << 20, onMemoryLimit: .refuseGrowth))
        try capped.exec(wat: HostileGuests.memoryGrowth)
        #expect(try capped.call("grow_all") == 63, "4 MiB is 64 pages, one of them initial")
    }

    // MARK: Memory

    @Test func tablesCountAgainstTheMemoryLimit() throws {
        let limits = InterpreterLimits(memoryBytes: 16 << 20)
        let interpreter = Interpreters.create(limits: limits)
        try interpreter.exec(wat: HostileGuests.tableGrowth)
        expectFailure(.memoryLimit) { _ = try interpreter.call("grow_table") }
        let refusing = Interpreters.create(limits: InterpreterLimits(memoryBytes: 16 << 20, onMemoryLimit: .refuseGrowth))
        try refusing.exec(wat: HostileGuests.tableGrowth)
        let size = try #require(try refusing.call("grow_table").asInt)
        #expect(size > 0 && size * 8 <= 16 << 20, "\(size) elements")
        // Declared tables are refused before they are allocated.
        expectModuleError(.tooLarge) { _ = try GuestModule(wat: HostileGuests.manyTables) }
        expectModuleError(.tooLarge) { _ = try GuestModule(wat: HostileGuests.manyTables, limits: limits) }
    }

    @Test func queuedValuesCountAgainstThePuttersMemoryLimit() throws {
        let queue = Interpreters.createQueue()
        let interpreter = Interpreters.create(limits: InterpreterLimits(memoryBytes: 1 << 20))
        try interpreter.exec(wat: HostileGuests.queueFlood)
        expectFailure(.memoryLimit) { _ = try interpreter.call("flood", [.queue(queue.id)]) }
        let held = queue.count
        #expect(held > 100 && held * 1023 <= 1 << 20, "\(held) values of 1 KiB under a 1 MiB limit with a 64 KiB memory")
        for _ in 0..<held { _ = try queue.getNowait() }
        expectFailure(.memoryLimit) { _ = try interpreter.call("flood", [.queue(queue.id)]) }
        #expect(queue.count == held, "taking values out gives the room back")
    }

    /// An encoding of empty elements decodes to about 24 times its size: the value limit bounds
    /// what a returned value takes in host memory, not only its bytes.
    @Test func aReturnedValueCannotAmplifyIntoHostMemory() throws {
        let amplifier = """
            (module
              (import "cf" "return_value" (func $return (param i32 i32)))
              (memory (export "memory") 2)
              ;; An array of 65,000 nones: tag 7, the count in LEB128, then 65,000 zero bytes.
              (data (i32.const 0) "\\07\\e8\\fb\\03")
              (func (export "amplify") (call $return (i32.const 0) (i32.const 65004))))
            """
        let interpreter = Interpreters.create(limits: InterpreterLimits(maxValueBytes: 65_536))
        try interpreter.exec(wat: amplifier)
        expectFailure(.malformedValue) { _ = try interpreter.call("amplify") }
        let roomy = Interpreters.create(limits: InterpreterLimits(maxValueBytes: 4 << 20))
        try roomy.exec(wat: amplifier)
        #expect(try roomy.call("amplify") == .array(Array(repeating: .none, count: 65_000)))
    }

    @Test func loadingAModuleRespectsTheLimitsBeforeAllocating() throws {
        // A module declaring 1 GiB of initial memory, with data written across it.
        var data = ""
        for page in stride(from: 0, to: 16_384, by: 64) { data += "(data (i32.const \(page * 65_536)) \"x\")" }
        let huge = "(module (memory 16384) \(data))"
        expectModuleError(.tooLarge) { _ = try GuestModule(wat: huge) }
        let bytes = try GuestModule.compile(wat: huge)
        expectModuleError(.tooLarge) { _ = try GuestModule(bytes: bytes, limits: InterpreterLimits(maxModuleBytes: 1000)) }
        #expect(throws: Never.self) { _ = try GuestModule(bytes: bytes, limits: InterpreterLimits(memoryBytes: 1 << 30)) }
    }

    @Test func anInterpreterNobodyReferencesIsDestroyed() throws {
        let queue = Interpreters.createQueue(unboundItems: .remove)
        var id = 0
        weak var weakInterpreter: Interpreter?
        do {
            let interpreter = Interpreters.create()
            id = interpreter.id
            weakInterpreter = interpreter
            try interpreter.exec(wat: Fixtures.queues)
            _ = try interpreter.call("put_one", [.queue(queue.id), 9])
            #expect(queue.count == 1)
            #expect(Interpreters.list().contains { $0.id == id })
        }
        #expect(weakInterpreter == nil)
        #expect(!Interpreters.list().contains { $0.id == id })
        #expect(queue.count == 0, "its items got their unbound policy, as when it is closed")
    }

    // MARK: Races

    @Test func theMainInterpretersLockLosesNoWakeUp() throws {
        // Many threads queue on the main interpreter's run lock; a lost wake-up leaves the last
        // waiter asleep for ever, and its future never resolves.
        let add = try Fixtures.module(Fixtures.basic).function("add", returning: Int.self)
        let pool = try ThreadPoolExecutor(maxWorkers: 6)
        defer { pool.shutdown() }
        for round in 0..<20 {
            let futures = try (0..<600).map { try pool.submit(add, $0, round) }
            for (index, future) in futures.enumerated() {
                #expect(try future.result(timeout: .seconds(60)) == index + round)
            }
        }
    }
}

extension ShareableValue {
    var asInt: Int? { if case .int(let number) = self { Int(number) } else { nil } }
}
