import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// `GuestEngine.auto`: WasmKit at once, the compiled form once it is built in the background.
@Suite("Auto engine", .serialized, .enabled(if: compiledEngineTestsRun))
struct AutoEngineTests {
    /// A module no earlier run has built: its constant is new.
    static func freshModule(_ label: String) -> GuestModule {
        let constant = Int64.random(in: 1...Int64(Int32.max))
        return Fixtures.module(
            """
            (module
              (global $calls (mut i64) (i64.const 0))
              (func (export "answer") (result i64) (global.set $calls (i64.add (global.get $calls) (i64.const 1))) (i64.const \(constant)))
              (func (export "calls") (result i64) (global.get $calls)))
            """, name: "\(label)-\(constant)")
    }

    static func waitForCompiledForm(of module: GuestModule) -> Bool {
        for _ in 0..<1200 where !CompiledLibrary.isLoaded(module) { usleep(50_000) }
        return CompiledLibrary.isLoaded(module)
    }

    /// The first interpreter runs the module on WasmKit at once while it is built in the
    /// background; later ones run it compiled.
    @Test func wasmKitFirstThenCompiled() throws {
        let module = Self.freshModule("auto")
        let answer = try module.function("answer", returning: Int.self)
        let first = Interpreters.create(engine: .auto)
        let expected = try Interpreters.create().call(answer)
        #expect(try first.call(answer) == expected)
        #expect(first.placement(of: module) == .wasmKit)
        #expect(Self.waitForCompiledForm(of: module))
        // The first interpreter keeps its instance (and its state)...
        #expect(try first.call(answer) == expected)
        #expect(first.placement(of: module) == .wasmKit)
        #expect(try first.call(module.function("calls", returning: Int.self)) == 2)
        // ...and a new one runs the compiled form.
        let later = Interpreters.create(engine: .auto)
        #expect(try later.call(answer) == expected)
        #expect(later.placement(of: module) == .compiled)
    }

    /// A pool worker moves to the compiled form between two tasks, once it is ready.
    @Test func aPoolWorkerMovesToCompiledCodeBetweenTasks() throws {
        let module = Self.freshModule("auto-pool")
        let answer = try module.function("answer", returning: Int.self)
        let expected = try Interpreters.create().call(answer)
        let before = Set(Interpreters.list().map(\.id))
        let pool = try InterpreterPoolExecutor(maxWorkers: 1, modules: [module], engine: .auto)
        defer { pool.shutdown() }
        #expect(try pool.submit(answer).result() == expected)
        // Only this pool's worker is asked: asking takes an interpreter's run lock, and another
        // test's interpreter would find itself "already running" (as one once did).
        let worker = try #require(Interpreters.list().first { !before.contains($0.id) && $0.engine == .auto && $0.placement(of: module) != nil })
        #expect(worker.placement(of: module) == .wasmKit)
        #expect(Self.waitForCompiledForm(of: module))
        #expect(try pool.submit(answer).result() == expected)
        #expect(worker.placement(of: module) == .compiled)
    }

    /// A module the compiled engine cannot build runs on WasmKit under auto, before and after the
    /// background build failed; the failure is remembered, so the build is not tried again.
    @Test func whatCannotBeBuiltStaysOnWasmKit() throws {
        let simd = Fixtures.module("(module (func (export \"lane\") (result i32) v128.const i32x4 5 6 7 8 i32x4.extract_lane 3))")
        let lane = try simd.function("lane", returning: Int.self)
        let first = Interpreters.create(engine: .auto)
        #expect(try first.call(lane) == 8)
        #expect(first.placement(of: simd) == .wasmKit)
        // The background build fails (the module uses SIMD) and is remembered as the verdict.
        var failure: ModuleError?
        for _ in 0..<600 where failure == nil {
            failure = CompiledLibrary.knownFailure(of: simd)
            if failure == nil { usleep(10_000) }
        }
        #expect(failure?.code == .unsupportedFeature, "\(String(describing: failure))")
        for _ in 0..<3 {
            let interpreter = Interpreters.create(engine: .auto)
            #expect(try interpreter.call(lane) == 8)
            #expect(interpreter.placement(of: simd) == .wasmKit)
        }
        #expect(!CompiledEngine.isLoaded(simd))
    }
}

extension AutoEngineTests {
    /// What a process pool builds in the background (without loading it) is used by the
    /// process's own interpreters under auto once it is in the cache.
    @Test func aBuildWithoutLoadIsUsedOnceItIsCached() throws {
        let module = Self.freshModule("auto-unloaded")
        let answer = try module.function("answer", returning: Int.self)
        #expect(CompiledEngine.prepareForWorkers(module, engine: .auto) == nil)
        var placement: GuestEngine?
        for _ in 0..<1200 {
            let interpreter = Interpreters.create(engine: .auto)
            _ = try interpreter.call(answer)
            placement = interpreter.placement(of: module)
            if placement == .compiled { break }
            usleep(50_000)
        }
        #expect(placement == .compiled)
    }
}
