import BundledGuests
import TestJobs
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// A start function that runs out of its limits (here fuel, deterministic; time alike) fails the
/// call that instantiated it, on every executor, never the pool: the next call tries again, and
/// one with limits that suffice succeeds.
@Suite("Slow starts")
struct SlowStartTests {
    static let tight = InterpreterLimits(fuel: 10_000)
    static let ready = try! TestGuests.slowStart.function("ready", returning: Int.self)
    static let generous = ready.withFuel(100_000_000)

    static var engines: [GuestEngine] {
        CompiledEngine.canCompile || getenv("CONCURRENT_FUTURES_REQUIRE_WABT") != nil ? [.wasmKit, .compiled] : [.wasmKit]
    }

    @Test(arguments: engines) func anInterpreter(engine: GuestEngine) throws {
        let interpreter = Interpreters.create(limits: Self.tight, engine: engine)
        expectOutOfFuel { _ = try interpreter.call(Self.ready) }
        #expect(try interpreter.call(Self.generous) == 1)
        // A start function that waits on a queue: past the call's time limit while the queue is
        // empty; once it holds an item, the next call's start takes it and goes on.
        let queue = Interpreters.createQueue()
        let waiting = try GuestModule(
            wat: """
                (module
                  (import "cf" "queue_get_int" (func $get (param i32 i64 i32) (result i32)))
                  (memory (export "memory") 1)
                  (func $start (drop (call $get (i32.const \(queue.id)) (i64.const -1) (i32.const 0))))
                  (start $start)
                  (func (export "ready") (result i64) (i64.const 1)))
                """, name: "waiting-start")
        let timed = Interpreters.create(limits: InterpreterLimits(timeLimit: .milliseconds(50)), engine: engine)
        let waitingReady = try waiting.function("ready", returning: Int.self)
        expectFailure(.timedOut) { _ = try timed.call(waitingReady) }
        try queue.putNowait(1)
        #expect(try timed.call(waitingReady) == 1)
    }

    /// The pool's workers load the module when they start, under the pool's limits, and that
    /// fails: the pool stays usable, and the calls load it again.
    @Test(arguments: engines) func anInterpreterPool(engine: GuestEngine) throws {
        let pool = try InterpreterPoolExecutor(maxWorkers: 2, modules: [TestGuests.slowStart], limits: Self.tight, engine: engine)
        defer { pool.shutdown() }
        expectOutOfFuel { _ = try pool.submit(Self.ready).result() }
        #expect(try pool.submit(Self.generous).result() == 1)
        #expect(try pool.submit(contentsOf: (0..<6).map { _ in Self.generous.call() }).map { try $0.result() } == Array(repeating: 1, count: 6))
    }

    @Test func aThreadPool() throws {
        let pool = try ThreadPoolExecutor(maxWorkers: 2)
        defer { pool.shutdown() }
        // The main interpreter's limits are the defaults: the call gives its own.
        expectOutOfFuel { _ = try pool.submit(Self.ready.withFuel(10_000)).result() }
        #expect(try pool.submit(Self.generous).result() == 1)
    }

    @Test(arguments: engines) func aProcessPool(engine: GuestEngine) throws {
        let pool = try ProcessPoolExecutor(maxWorkers: 2, workerExecutable: workerPath, limits: Self.tight, engine: engine)
        defer { pool.shutdown() }
        expectOutOfFuel { _ = try pool.submit(Self.ready).result() }
        #expect(try pool.submit(Self.generous).result() == 1)
        // The instance the generous call made serves the next calls, tight or not.
        #expect(try pool.submit(Self.ready).result() == 1)
    }
}

func expectOutOfFuel(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    expectFailure(.outOfFuel, sourceLocation: sourceLocation, body)
}

func expectFailure(_ kind: GuestError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(kind), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as GuestError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(kind), got \(error)", sourceLocation: sourceLocation)
    }
}
