import TestSupport
import Testing

@testable import ConcurrentFutures

@Suite("InterpreterPoolExecutor")
struct InterpreterPoolExecutorTests {
    let module = Fixtures.module(Fixtures.basic, name: "basic")

    @Test func articleSubmitAndMap() throws {
        let add3 = try module.function("add3", returning: Int.self)
        let square = try module.function("square", returning: Int.self)
        try InterpreterPoolExecutor(maxWorkers: 1, modules: [module]).run { pool throws in
            #expect(try pool.submit(add3, 1, 3, 5).result() == 9)
        }
        try InterpreterPoolExecutor(maxWorkers: 3, modules: [module]).run { pool throws in
            #expect(try pool.map(square, [1, 2, 3, 4, 5]).collect() == [1, 4, 9, 16, 25])
        }
    }

    @Test func eachWorkerOwnsAnInterpreter() throws {
        let queues = Fixtures.module(Fixtures.queues, name: "queues")
        let getOne = try queues.function("get_one", returning: Int.self)
        let bump = try module.function("bump", returning: Int.self)
        let whoami = try module.function("whoami", returning: Int.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 2, modules: [module, queues])
        // Two guests blocked on a queue hold both workers, so both interpreters exist.
        let queue = Interpreters.createQueue()
        let held = try (0..<2).map { _ in try pool.submit(getOne, queue, -1) }
        waitUntil { pool.workerCount == 2 }
        try queue.put(1)
        try queue.put(2)
        #expect(try held.map { try $0.result(timeout: .seconds(10)) }.sorted() == [1, 2])
        let ids = Set(try pool.map(whoami, Array(repeating: (), count: 0).map { 0 }).collect())
        #expect(ids.isEmpty)
        var seen: Set<Int> = []
        var bumps: [Int] = []
        for _ in 0..<20 {
            seen.insert(try pool.submit(whoami).result())
            bumps.append(try pool.submit(bump).result())
        }
        #expect(!seen.contains(0), "workers do not use the main interpreter")
        #expect(bumps.filter { $0 == 1 }.count <= 2, "one counter per worker interpreter")
        #expect(bumps.max()! >= 10, "globals persist between tasks in a worker's interpreter")
        pool.shutdown()
        #expect(seen.allSatisfy { id in !Interpreters.list().contains { $0.id == id } }, "closed at shutdown")
    }

    @Test func workerInterpretersAreClosedAtShutdown() throws {
        let whoami = try module.function("whoami", returning: Int.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 3, modules: [module])
        let seen = try (0..<6).map { _ in try pool.submit(whoami) }.map { try $0.result() }
        #expect(seen.allSatisfy { id in Interpreters.list().contains { $0.id == id } })
        pool.shutdown()
        #expect(seen.allSatisfy { id in !Interpreters.list().contains { $0.id == id } })
        #expect(pool.workerCount == 0)
    }

    @Test func hostCodeCannotCrossIntoAnInterpreter() throws {
        try InterpreterPoolExecutor(maxWorkers: 1).run { pool throws in
            #expect(throws: NotShareableError.self) { try pool.submit(Call { 1 }) }
            let job = Job("double") { (x: Int) in x * 2 }
            #expect(throws: NotShareableError.self) { try pool.submit(job.call(2)) }
        }
    }

    @Test func faultsFailOnlyTheirTask() throws {
        let boom = try module.function("boom", returning: ShareableValue.self)
        let div = try module.function("div", returning: ShareableValue.self)
        let spin = try module.function("spin", returning: ShareableValue.self)
        let add = try module.function("add", returning: Int.self)
        try InterpreterPoolExecutor(maxWorkers: 2, modules: [module], limits: InterpreterLimits(fuel: 1_000_000)).run { pool throws in
            let futures = try [pool.submit(boom), pool.submit(div, 1, 0), pool.submit(spin)]
            let kinds = futures.map { future -> GuestError.Kind? in
                (try? future.exception(timeout: .seconds(30))).flatMap { $0 as? GuestError }?.kind
            }
            #expect(kinds == [.unreachable, .divideByZero, .outOfFuel])
            #expect(try pool.submit(add, 2, 3).result() == 5)
            #expect(try pool.submit(spin.withFuel(10)).exception(timeout: .seconds(30)) is GuestError)
        }
    }

    @Test func failingInitializerBreaksThePool() throws {
        let boom = try module.function("boom", returning: ShareableValue.self)
        let add = try module.function("add", returning: Int.self)
        let pool = try InterpreterPoolExecutor(maxWorkers: 2, modules: [module], initializer: boom.call().discardingResult())
        let future = try pool.submit(add, 1, 2)
        let error = try #require(throws: ExecutorError.self) { try future.result(timeout: .seconds(10)) }
        #expect(error.code == .brokenInterpreterPool)
        #expect(error.code.isBrokenThreadPool)
        #expect(throws: ExecutorError.self) { try pool.submit(add, 1, 2) }
        pool.shutdown()
    }

    @Test func initializerRunsInEachWorkerInterpreter() throws {
        let bump = try module.function("bump", returning: Int.self)
        try InterpreterPoolExecutor(maxWorkers: 1, modules: [module], initializer: bump.call().discardingResult()).run { pool throws in
            #expect(try pool.submit(bump).result() == 2, "the initializer already bumped once")
        }
    }

    @Test func sameGuestFunctionRunsOnThreadPoolInTheMainInterpreter() throws {
        let whoami = try module.function("whoami", returning: Int.self)
        let square = try module.function("square", returning: Int.self)
        try ThreadPoolExecutor(maxWorkers: 4).run { pool throws in
            let ids = try (0..<8).map { _ in try pool.submit(whoami) }.map { try $0.result() }
            #expect(Set(ids) == [0])
            #expect(try pool.map(square, 1...5).collect() == [1, 4, 9, 16, 25])
        }
    }

    @Test func queueWorkersProgram() throws {
        let queues = Fixtures.module(Fixtures.queues, name: "queues")
        let producer = try queues.function("producer", returning: Int.self)
        let getOne = try queues.function("get_one", returning: Int.self)
        let queue = Interpreters.createQueue()
        try InterpreterPoolExecutor(maxWorkers: 2, modules: [queues]).run { pool throws in
            let produced = try pool.submit(producer, queue)
            let consumed = try (0..<5).map { _ in try pool.submit(getOne, queue, -1) }
            #expect(try produced.result(timeout: .seconds(10)) == 5)
            #expect(try consumed.map { try $0.result(timeout: .seconds(10)) }.sorted() == [0, 1, 4, 9, 16])
        }
    }
}

@Suite("Resets and limits")
struct ResetTests {
    let module = Fixtures.module(Fixtures.basic, name: "basic")

    @Test func theInitializerRunsAgainAfterATrapResetsTheInterpreter() throws {
        let bump = try module.function("bump", returning: Int.self)
        let boom = try module.function("boom", returning: ShareableValue.self)
        try InterpreterPoolExecutor(maxWorkers: 1, modules: [module], initializer: bump.call().discardingResult()).run { pool throws in
            #expect(try pool.submit(bump).result() == 2)
            #expect(throws: GuestError.self) { try pool.submit(boom).result() }
            #expect(try pool.submit(bump).result() == 2, "fresh instances, initialized again")
        }
    }

    @Test func refusedGrowthReturnsMinusOneWhenAsked() throws {
        let interpreter = Interpreters.create(limits: InterpreterLimits(memoryBytes: 2 * 65_536, onMemoryLimit: .refuseGrowth))
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("grow", [8]) == -1)
        #expect(try interpreter.call("grow", [1]) == 1)
    }

    @Test func noneArgumentsFillAnyScalarParameter() throws {
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("add", [nil, 5]) == 5)
    }
}
