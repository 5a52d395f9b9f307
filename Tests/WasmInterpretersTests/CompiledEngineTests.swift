import BundledGuests
import Dispatch
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Whether the compiled engine's tests run: when `wasm2c` and `clang` are here, and always in CI
/// (`CONCURRENT_FUTURES_REQUIRE_WABT=1`), where a missing tool must fail them, not skip them.
let compiledEngineTestsRun = CompiledEngine.canCompile || getenv("CONCURRENT_FUTURES_REQUIRE_WABT") != nil

/// What a call came to, comparable across engines: its value, or the kind of its error.
enum Outcome: Equatable, CustomStringConvertible {
    case value(ShareableValue)
    case guestError(GuestError.Kind)
    case moduleError(ModuleError.Code)
    case other(String)

    init(_ body: () throws -> ShareableValue) {
        do {
            self = .value(try body())
        } catch let error as GuestError {
            self = .guestError(error.kind)
        } catch let error as ModuleError {
            self = .moduleError(error.code)
        } catch {
            self = .other("\(type(of: error))")
        }
    }

    /// Running out of fuel and out of time both mean "stopped for running too long": fuel counts
    /// the same on both engines, but a time limit may come first on the slower one.
    func agrees(with other: Outcome) -> Bool {
        let stopped: Set<GuestError.Kind> = [.outOfFuel, .timedOut]
        if case .guestError(let mine) = self, case .guestError(let theirs) = other, stopped.contains(mine), stopped.contains(theirs) {
            return true
        }
        return self == other
    }

    var description: String {
        switch self {
        case .value(let value): "\(value)"
        case .guestError(let kind): "GuestError(\(kind))"
        case .moduleError(let code): "ModuleError(\(code))"
        case .other(let text): text
        }
    }
}

@Suite("Compiled engine", .enabled(if: compiledEngineTestsRun))
struct CompiledEngineTests {
    /// Fuel stops runaway guests (it counts the same on both engines); the time limit only
    /// guards against a call that blocks, and is long enough for WasmKit under ThreadSanitizer.
    static let limits = InterpreterLimits(
        fuel: 50_000_000, memoryBytes: 16 << 20, maxValueBytes: 1 << 20, stackBytes: 256 << 10, timeLimit: .seconds(60))

    /// Arguments for a signature: the sandbox queue's id for every integer, then -1, then a
    /// string for each leading (pointer, length) pair, then a large number.
    static func argumentSets(_ export: GuestExport, queue: Int) -> [[ShareableValue]] {
        func numbers(_ integer: Int64, _ float: Double) -> [ShareableValue] {
            export.parameters.map { $0.hasPrefix("f") ? .double(float) : .int(integer) }
        }
        var sets = [numbers(Int64(queue), 2.5), numbers(-1, -0.5), numbers(100_000, 1e300)]
        if export.parameters.starts(with: ["i32", "i32"]) {
            sets.append([.string("héllo, wörld")] + numbers(Int64(queue), 2.5).dropFirst(2))
            sets.append([.bytes([1, 2, 3, 250])] + numbers(Int64(queue), 1).dropFirst(2))
        }
        return sets
    }

    /// Every function of every bundled guest gives the same value, or the same kind of error, on
    /// both engines, over the same sequence of calls (traps and resets included).
    @Test func everyBundledFunctionAgreesOnBothEngines() throws {
        let modules = [BundledGuests.tasks, BundledGuests.examples, BundledGuests.faults]
        let sandbox = Interpreters.createQueue()
        let wasmKit = Interpreters.create(limits: Self.limits)
        let compiled = Interpreters.create(limits: Self.limits, engine: .compiled)
        var compared = 0
        for module in modules {
            try wasmKit.exec(module)
            try compiled.exec(module)
            for export in module.functions where !["print_hello", "spin"].contains(export.name) {
                for arguments in Self.argumentSets(export, queue: sandbox.id) {
                    var outcomes: [Outcome] = []
                    for interpreter in [wasmKit, compiled] {
                        // The same queue contents for both, more than a consumer takes (no call waits).
                        while (try? sandbox.getNowait()) != nil {}
                        for item in 0..<8 { try sandbox.putNowait(item) }
                        outcomes.append(Outcome { try interpreter.call(export.name, arguments) })
                    }
                    #expect(outcomes[0].agrees(with: outcomes[1]), "\(module.name).\(export.name)\(arguments): \(outcomes)")
                    compared += 1
                }
            }
        }
        #expect(compared > 100)
        withExtendedLifetime(sandbox) {}
    }

    /// Random and mutated modules: whatever WasmKit rejects, traps on or computes, the compiled
    /// engine rejects, traps on or computes too.
    @Test func fuzzedModulesAgreeOnBothEngines() throws {
        var random = SplitMix(state: 0xC0_3311ED)
        let seeds: [[UInt8]] =
            [
                BundledGuests.bytes(named: "Tasks.wasm")!,
                BundledGuests.bytes(named: "faults.wasm")!,
                try GuestModule(wat: Fixtures.basic).wasmBytes,
                try GuestModule(wat: FuelConformanceTests.shapes).wasmBytes,
                BundledGuests.bytes(named: "probe.wasm")!,
            ] + (try HostileGuests.all.map { try GuestModule.compile(wat: $0) })
        let limits = InterpreterLimits(
            fuel: 1_000_000, memoryBytes: 1 << 20, maxValueBytes: 4096, stackBytes: 64 << 10, timeLimit: .seconds(1))
        var compiledModules = 0
        var fuelCompared = 0
        var mismatches: [String] = []
        // Queues are process-wide by id: integer arguments name a queue of this test's own (as in
        // the WasmKit fuzzer), full enough that no get waits, and refilled for each engine.
        let sandbox = Interpreters.createQueue()
        let integer = ShareableValue.int(Int64(sandbox.id))
        func refill() throws {
            while (try? sandbox.getNowait()) != nil {}
            for item in 0..<16 { try sandbox.putNowait(item) }
        }
        for round in 0..<400 where compiledModules < 40 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 8..<bytes.count, using: &random)
                bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            }
            guard let module = try? GuestModule(bytes: bytes, name: "fuzz-\(round)", wasi: WASIOptions(output: .discard)) else { continue }
            compiledModules += 1
            let interpreters = [Interpreters.create(limits: limits), Interpreters.create(limits: limits, engine: .compiled)]
            let loads = try interpreters.map { interpreter in
                try refill()
                return Outcome {
                    try interpreter.exec(module)
                    return .none
                }
            }
            // What the compiled engine does not translate (a mutation may make a SIMD or tail
            // call instruction) is its refusal to make, before any tool runs.
            if loads[0] == .value(.none), case .moduleError(let code) = loads[1], code == .unsupportedFeature { continue }
            if !loads[0].agrees(with: loads[1]) {
                mismatches.append("round \(round) load: \(loads)")
                continue
            }
            guard loads[0] == .value(.none) else { continue }
            // Interpreter ids differ between the two: a module that can read its id is compared by
            // outcome kinds.
            let readsItsID = module.imports.contains { $0.name == "interpreter_id" }
            for export in module.functions {
                let arguments = export.parameters.map { type -> ShareableValue in type.hasPrefix("f") ? .double(1) : integer }
                var fuel: [UInt64?] = []
                var calls = try interpreters.map { interpreter in
                    try refill()
                    let outcome = Outcome { try interpreter.call(export.name, arguments) }
                    fuel.append(interpreter.remainingFuel)
                    return outcome
                }
                if readsItsID { calls = calls.map { if case .value = $0 { .value(.none) } else { $0 } } }
                if !calls[0].agrees(with: calls[1]) { mismatches.append("round \(round) \(export.name): \(calls)") }
                // A call that ran to its end used the same fuel on both engines.
                if case .value = calls[0], case .value = calls[1] {
                    if fuel[0] != fuel[1] { mismatches.append("round \(round) \(export.name): fuel left \(fuel)") }
                    fuelCompared += 1
                }
            }
        }
        #expect(compiledModules > 10)
        #expect(fuelCompared > 10)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        withExtendedLifetime(sandbox) {}
    }

    /// Two threads trapping 100,000 times each, interleaved with good calls: every trap is the
    /// right error and every good call the right value (the trap's jump buffer is per thread).
    @Test func twoThreadsTrappingManyTimesStayCorrect() throws {
        let module = Fixtures.module(
            """
            (module
              (func (export "div") (param i64 i64) (result i64) local.get 0 local.get 1 i64.div_s))
            """)
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            let interpreter = Interpreters.create(engine: .compiled)
            for round in 0..<100_000 {
                let divisor: Int64 = round % 2 == 0 ? 0 : Int64(thread + 1)
                do {
                    let value = try interpreter.call(GuestFunction<Int>(module: module, name: "div"), Int(round), Int(divisor))
                    if divisor == 0 || value != round / Int(divisor) { wrong.add(1, ordering: .relaxed) }
                } catch let error as GuestError where error.kind == .divideByZero && divisor == 0 {
                } catch {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
    }

    /// A runaway recursion on a worker thread is `stackExhausted`, and the worker keeps serving.
    @Test func stackExhaustionOnAWorkerIsAnErrorAndTheWorkerServesOn() throws {
        let pool = try InterpreterPoolExecutor(maxWorkers: 1, modules: [BundledGuests.examples], engine: .compiled)
        defer { pool.shutdown() }
        let recurse = try BundledGuests.examples.function("recurse", returning: Int.self)
        expectError(
            "stackExhausted", sourceLocation: #_sourceLocation, { _ = try pool.submit(recurse, 10_000_000).result() },
            matches: { (error: GuestError) in error.kind == .stackExhausted })
        let depth = try BundledGuests.examples.function("recurse_depth", returning: Int.self)
        #expect(try pool.submit(depth, 1000).result() == 1000)
    }

    /// Fuel, time and memory limits stop the same guests as on WasmKit, and the interpreter
    /// keeps working after each.
    @Test func limitsHoldOnTheCompiledEngine() throws {
        let basic = Fixtures.module(Fixtures.basic)
        let interpreter = Interpreters.create(
            limits: InterpreterLimits(fuel: 1_000_000, memoryBytes: 4 << 20, timeLimit: nil), engine: .compiled)
        try interpreter.exec(basic)
        func kind(_ body: () throws -> Void) -> GuestError.Kind? {
            do { try body() } catch let error as GuestError { return error.kind } catch { return nil }
            return nil
        }
        #expect(kind { _ = try interpreter.call("spin") } == .outOfFuel)
        #expect(try interpreter.call("add", [.int(2), .int(3)]) == .int(5))
        #expect(kind { _ = try interpreter.call("grow", [.int(100)]) } == .memoryLimit)
        #expect(kind { _ = try interpreter.call("oob") } == .memoryOutOfBounds)
        #expect(kind { _ = try interpreter.call("boom") } == .unreachable)
        #expect(kind { _ = try interpreter.call("div", [.int(1), .int(0)]) } == .divideByZero)
        #expect(kind { _ = try interpreter.call("bad_return") } == .invalidPointer)
        #expect(try interpreter.call("echo", [.string("über")]) == .string("über"))
        #expect(try interpreter.call("half", [.double(3)]) == .double(1.5))

        let timed = Interpreters.create(limits: InterpreterLimits(timeLimit: .milliseconds(50)), engine: .compiled)
        try timed.exec(basic)
        #expect(kind { _ = try timed.call("spin") } == .timedOut)
        #expect(try timed.call("square", [.int(9)]) == .int(81))

        // Initial memory over the limit: the instantiation fails, the interpreter does not.
        let big = Fixtures.module("(module (memory (export \"memory\") 100) (func (export \"one\") (result i32) i32.const 1))")
        #expect(kind { try interpreter.exec(big) } == .memoryLimit)
        #expect(try interpreter.call("square", [.int(12)]) == .int(144))

        let refusing = Interpreters.create(limits: InterpreterLimits(memoryBytes: 4 << 20, onMemoryLimit: .refuseGrowth), engine: .compiled)
        try refusing.exec(basic)
        #expect(try refusing.call("grow", [.int(100)]) == .int(-1))
        #expect(try refusing.call("grow", [.int(1)]) == .int(1))
    }

    /// The start function, `cf_alloc` and `cf_free` run under the call's limits, as on WasmKit.
    @Test func theLimitsCoverStartAllocatorAndFree() throws {
        let limits = InterpreterLimits(fuel: 1_000_000, timeLimit: .seconds(5))
        for (wat, expected) in [(HostileGuests.loopingStart, "start"), (HostileGuests.loopingAllocator, "alloc")] {
            let interpreter = Interpreters.create(limits: limits, engine: .compiled)
            let module = Fixtures.module(wat)
            do {
                if expected == "start" {
                    try interpreter.exec(module)
                } else {
                    try interpreter.exec(module)
                    _ = try interpreter.call("length", [.string("abc")])
                }
                Issue.record("\(expected): nothing thrown")
            } catch let error as GuestError {
                #expect(error.kind == .outOfFuel, "\(expected): \(error)")
            }
        }
        // A cf_free that never returns: the result stands, and the next call starts afresh.
        let interpreter = Interpreters.create(limits: limits, engine: .compiled)
        try interpreter.exec(Fixtures.module(HostileGuests.loopingFree))
        #expect(try interpreter.call("length", [.string("abcd")]) == .int(4))
        #expect(try interpreter.call("length", [.string("ab")]) == .int(2))
    }

    /// Queues work between compiled interpreters in a pool as between WasmKit ones.
    @Test func queuesCrossBetweenCompiledWorkers() throws {
        let module = Fixtures.module(Fixtures.queues)
        let queue = Interpreters.createQueue()
        let pool = try InterpreterPoolExecutor(maxWorkers: 2, modules: [module], engine: .compiled)
        defer { pool.shutdown() }
        let producer = try module.function("producer", returning: Int.self)
        let getOne = try module.function("get_one", returning: Int.self)
        #expect(try pool.submit(producer, queue).result() == 5)
        let values = try (0..<5).map { _ in try pool.submit(getOne, queue, 1000).result() }
        #expect(values == [0, 1, 4, 9, 16])
        #expect(try pool.submit(getOne, queue, 0).result() == -1)
    }

    /// The injected metering keeps a module valid, renames every export (none of the module's
    /// names reaches wasm2c), and exports the start function and the fuel counter.
    @Test func meteringKeepsModulesValidAndRenamesExports() throws {
        for module in [BundledGuests.tasks, BundledGuests.examples, BundledGuests.faults] {
            let metered = try FuelMetering.instrument(module.wasmBytes)
            let reloaded = try GuestModule(bytes: metered.bytes, name: module.name)
            #expect(Set(metered.functionExports.keys) == Set(module.functions.map(\.name)))
            #expect(Set(reloaded.functions.map(\.name)) == Set(metered.functionExports.values))
            #expect(reloaded.functions.allSatisfy { $0.name.first == "e" && $0.name.dropFirst().allSatisfy(\.isNumber) })
            #expect(!reloaded.hasStartFunction)
            #expect(metered.memoryExport != nil)
        }
        let starting = try FuelMetering.instrument(GuestModule.compile(wat: HostileGuests.loopingStart))
        #expect(starting.startExport == "start")
        #expect(try GuestModule(bytes: starting.bytes).export(named: "start") != nil)
    }

    /// wasm2c's name mangling, as the glue must reproduce it.
    @Test func exportNamesAreMangledAsWasm2cDoes() {
        #expect(CompiledGlue.mangle("cpu_bound") == "cpu_bound")
        #expect(CompiledGlue.mangle("a.b") == "aZ2Eb")
        #expect(CompiledGlue.mangle("Zed") == "Z5Aed")
        #expect(CompiledGlue.mangle("é x") == "ZC3ZA9Z20x")
    }

    /// Odd export names, multiple results and floats cross as on WasmKit.
    @Test func oddNamesMultipleResultsAndFloats() throws {
        let module = Fixtures.module(
            """
            (module
              (func (export "a.b") (result i32) i32.const 1)
              (func (export "Zed é") (result i32) i32.const -2)
              (func (export "two") (result i32 i64 f32 f64) i32.const 1 i64.const 2 f32.const 0.5 f64.const 0.25)
              (func (export "mix") (param f32 f64 i32) (result f64)
                local.get 0 f64.promote_f32 local.get 1 f64.add local.get 2 f64.convert_i32_s f64.add))
            """)
        let wasmKit = Interpreters.create()
        let compiled = Interpreters.create(engine: .compiled)
        for interpreter in [wasmKit, compiled] { try interpreter.exec(module) }
        for (name, arguments) in [("a.b", []), ("Zed é", []), ("two", []), ("mix", [ShareableValue.double(1.5), .double(2), .int(-3)])] {
            let expected = try wasmKit.call(name, arguments)
            #expect(try compiled.call(name, arguments) == expected, "\(name)")
        }
    }
}

extension CompiledEngineTests {
    /// What the compiled engine cannot translate fails to load with a typed error, not a crash.
    @Test func untranslatableModulesFailToLoadClearly() throws {
        let simd = Fixtures.module("(module (func (export \"f\") (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 2))")
        #expect(try Interpreters.create().call(try simd.function("f", returning: Int.self)) == 3)
        let compiled = Interpreters.create(engine: .compiled)
        do {
            try compiled.exec(simd)
            Issue.record("a SIMD module loaded on the compiled engine")
        } catch let error as ModuleError {
            // Refused before wasm2c runs, saying what and why.
            #expect(error.code == .unsupportedFeature, "\(error)")
            #expect(error.message.contains("SIMD"), "\(error)")
        }
        // The interpreter is unharmed.
        try compiled.exec(Fixtures.module(Fixtures.basic))
        #expect(try compiled.call("add", [.int(2), .int(2)]) == .int(4))
    }

    /// An import called through a table (`call_indirect`) reaches the host as a direct call does.
    @Test func importsCalledThroughATableReachTheHost() throws {
        let module = Fixtures.module(
            """
            (module
              (import "cf" "return_string" (func $return_string (param i32 i32)))
              (type $ret (func (param i32 i32)))
              (memory (export "memory") 1)
              (data (i32.const 16) "through the table")
              (table 1 funcref)
              (elem (i32.const 0) $return_string)
              (func (export "indirect") (call_indirect (type $ret) (i32.const 16) (i32.const 17) (i32.const 0))))
            """)
        for engine in GuestEngine.allCases {
            let interpreter = Interpreters.create(engine: engine)
            try interpreter.exec(module)
            #expect(try interpreter.call("indirect") == .string("through the table"), "\(engine)")
        }
    }
}
