import BundledGuests
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The compiled engine's runtime and glue: no abort, true memory accounting, WebAssembly's float
/// semantics, the same refusals and names as WasmKit.
@Suite("Compiled runtime", .enabled(if: compiledEngineTestsRun))
struct CompiledRuntimeTests {
    /// The runtime's type registry takes 100,000 distinct types (it used to abort past 65,536,
    /// after a linear search for each): ids are assigned in order, and the same type gets the
    /// same id again. Run as a C program built from the runtime's own sources.
    @Test func theTypeRegistryGrowsAndIsHashed() throws {
        let directory = temporaryDirectory("registry")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(PackageResources.wasm_rt_h).write(to: URL(fileURLWithPath: "\(directory)/wasm-rt.h"))
        try Data(PackageResources.cf_rt_c).write(to: URL(fileURLWithPath: "\(directory)/cf-rt.c"))
        let arguments = (0..<17).map { "(i >> \($0) & 1) ? WASM_RT_I64 : WASM_RT_I32" }.joined(separator: ", ")
        let driver = """
            #include "wasm-rt.h"
            #include <stdio.h>
            static __thread _Alignas(16) unsigned char state[64];
            static void *thread_state(void) { return state; }
            static int failures;
            static void body(void *argument) {
              (void)argument;
              for (int round = 0; round < 2; round++) {
                for (uint32_t i = 0; i < 100000; i++) {
                  uint32_t id = wasm_rt_register_func_type(17, i & 1, \(arguments), WASM_RT_F64);
                  if (id != i + 1) failures++;
                }
              }
            }
            int main(void) {
              cf_runtime_init(thread_state);
              int trap = cf_guard(body, NULL);
              printf("trap %d failures %d\\n", trap, failures);
              return trap || failures;
            }
            """
        try driver.write(toFile: "\(directory)/driver.c", atomically: false, encoding: .utf8)
        let compiler = try #require(Toolchain.find(environmentValue("CONCURRENT_FUTURES_CC") ?? "clang"))
        #expect(run(compiler, ["-O1", "-o", "\(directory)/driver", "\(directory)/driver.c", "\(directory)/cf-rt.c"]).status == 0)
        let result = run("\(directory)/driver", [])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == "trap 0 failures 0\n")
    }

    /// Tables count what the compiled engine allocates (24 bytes per function reference), and an
    /// instance counts its globals: a limit WasmKit's smaller tables fit under refuses them.
    @Test func memoryAccountingCountsWhatTheEngineAllocates() throws {
        let table = Fixtures.module("(module (table 1000000 funcref) (func (export \"one\") (result i32) i32.const 1))")
        let limits = InterpreterLimits(memoryBytes: 16 << 20)
        #expect(try Interpreters.create(limits: limits).call(table.function("one", returning: Int.self)) == 1)  // 8 MB
        expectFailure(.memoryLimit) {
            _ = try Interpreters.create(limits: limits, engine: .compiled).call(table.function("one", returning: Int.self))
        }
        let globals = (0..<5000).map { "(global (mut i64) (i64.const \($0)))" }.joined(separator: " ")
        let many = Fixtures.module("(module \(globals) (func (export \"one\") (result i32) i32.const 1))")
        let small = InterpreterLimits(memoryBytes: 16 << 10)
        expectFailure(.memoryLimit) { _ = try Interpreters.create(limits: small, engine: .compiled).call(many.function("one", returning: Int.self)) }
        #expect(
            try Interpreters.create(limits: InterpreterLimits(memoryBytes: 1 << 20), engine: .compiled).call(
                many.function("one", returning: Int.self)) == 1)
    }

    /// Arithmetic on a signaling NaN gives a quiet NaN, as the specification requires, on both
    /// engines; operations on bits (neg, abs, copysign, reinterpret) keep it. Constants the
    /// compiler could fold (`x - 0`, `x * 1`, `x / 1`, `x + -0`) included.
    @Test func signalingNaNsAreQuietedAsTheSpecificationSays() throws {
        let f32Operations: [(String, String, Bool)] = [
            ("sub0", "f32.const 0 f32.sub", true), ("add_neg0", "f32.const -0 f32.add", true), ("mul1", "f32.const 1 f32.mul", true),
            ("div1", "f32.const 1 f32.div", true), ("mul_neg1", "f32.const -1 f32.mul", true), ("sqrt", "f32.sqrt", true),
            ("ceil", "f32.ceil", true), ("floor", "f32.floor", true), ("trunc", "f32.trunc", true), ("nearest", "f32.nearest", true),
            ("min", "f32.const 1 f32.min", true), ("max", "f32.const 1 f32.max", true), ("promote_demote", "f64.promote_f32 f32.demote_f64", true),
            ("neg", "f32.neg", false), ("abs", "f32.abs", false), ("copysign", "f32.const -1 f32.copysign", false), ("plain", "", false),
        ]
        var text = "(module\n"
        for (name, operation, _) in f32Operations {
            text += "(func (export \"\(name)\") (param i32) (result i32) local.get 0 f32.reinterpret_i32 \(operation) i32.reinterpret_f32)\n"
            let operation64 = operation.replacingOccurrences(of: "f32", with: "f64")
                .replacingOccurrences(of: "f64.promote_f64 f64.demote_f64", with: "f32.demote_f64 f64.promote_f32")
            text += "(func (export \"\(name)_64\") (param i64) (result i64) local.get 0 f64.reinterpret_i64 \(operation64) i64.reinterpret_f64)\n"
        }
        text += ")"
        let module = Fixtures.module(text)
        let engines = [Interpreters.create(), Interpreters.create(engine: .compiled)]
        for interpreter in engines { try interpreter.exec(module) }
        let signaling32: Int64 = 0x7FA0_0001  // quiet bit (22) clear, payload set
        let signaling64: Int64 = 0x7FF4_0000_0000_0001  // quiet bit (51) clear
        for (name, _, arithmetic) in f32Operations {
            for (function, input, quietBit, width) in [(name, signaling32, Int64(1) << 22, 32), (name + "_64", signaling64, Int64(1) << 51, 64)] {
                let results = try engines.map { try $0.call(function, [.int(input)]) }
                #expect(results[0] == results[1], "\(function): \(results)")
                guard case .int(let bits) = results[1] else { continue }
                let value = width == 32 ? Int64(UInt32(truncatingIfNeeded: bits)) : bits
                let exponent = width == 32 ? (value >> 23) & 0xFF == 0xFF : (value >> 52) & 0x7FF == 0x7FF
                #expect(exponent, "\(function) gave \(String(value, radix: 16)), not a NaN")
                #expect((value & quietBit != 0) == arithmetic, "\(function) gave \(String(value, radix: 16))")
            }
        }
    }

    /// A start function that takes or returns values is refused when the module is made, whatever
    /// the engine (the compiled engine used to run it).
    @Test func aStartFunctionWithResultsIsRefusedAtLoad() {
        for text in [
            "(module (func $s (result i32) i32.const 1) (start $s))",
            "(module (func $s (param i32)) (start $s))",
        ] {
            #expect(throws: ModuleError.self) { try GuestModule(bytes: (try? GuestModule.compile(wat: text)) ?? []) }
            do {
                _ = try GuestModule(bytes: try GuestModule.compile(wat: text))
            } catch {
                #expect(error.code == .invalid)
                #expect(error.message.contains("start function"), "\(error)")
            }
        }
        // A start section naming a function the module does not have (WasmKit noticed only when
        // instantiating, wasm2c when translating): refused at load too.
        do {
            _ = try GuestModule(bytes: [0, 0x61, 0x73, 0x6D, 1, 0, 0, 0, 8, 1, 5])
            Issue.record("loaded")
        } catch {
            #expect(error.code == .invalid)
        }
    }

    /// Growing an empty memory by nothing, then within and past its maximum: the same answers on
    /// both engines (an empty memory's size is 0, which is no refusal).
    @Test func growingFromAnEmptyMemoryAnswersAsWasmKitDoes() throws {
        let module = Fixtures.module(
            """
            (module (memory 0 2)
              (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
              (func (export "size") (result i32) (memory.size)))
            """)
        var answers: [[ShareableValue]] = []
        for engine in [GuestEngine.wasmKit, .compiled] {
            let interpreter = Interpreters.create(engine: engine)
            defer { try? interpreter.close() }
            try interpreter.exec(module)
            answers.append([
                try interpreter.call("grow", [0]), try interpreter.call("size"), try interpreter.call("grow", [1]),
                try interpreter.call("grow", [0]), try interpreter.call("grow", [5]), try interpreter.call("size"),
            ])
        }
        #expect(answers[0] == [0, 0, 0, 1, -1, 1])
        #expect(answers[1] == answers[0])
    }

    /// Loads and stores carry no bounds check on the compiled engine: memory sits at the start of
    /// a reserved range and an access past it faults. Every such access is the guest's trap, on
    /// every thread, at the edges (the last byte, one past it, the largest index plus the largest
    /// offset), after growth, and the host process and its other faults are untouched.
    @Test func accessesPastTheMemoryTrapThroughTheGuardRange() throws {
        let module = Fixtures.module(
            """
            (module (memory 1 4)
              (func (export "load") (param $address i32) (result i32) (i32.load8_u (local.get $address)))
              (func (export "load_far") (param $address i32) (result i64) (i64.load offset=4294967295 (local.get $address)))
              (func (export "store") (param $address i32) (param $value i32) (i32.store (local.get $address) (local.get $value)))
              (func (export "grow") (result i32) (memory.grow (i32.const 1))))
            """)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            failures.wrappingAdd(Self.outOfBoundsFailures(module, thread: thread), ordering: .relaxed)
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let interpreter = Interpreters.create(engine: .compiled)
        try interpreter.exec(module)
        expectFailure(.memoryOutOfBounds) { _ = try interpreter.call("load", [-1]) }
        expectFailure(.memoryOutOfBounds) { _ = try interpreter.call("load_far", [-1]) }
        #expect(try interpreter.call("grow") == 1)
        _ = try interpreter.call("store", [131068, 7])
        #expect(try interpreter.call("load", [131068]) == 7)
        expectFailure(.memoryOutOfBounds) { _ = try interpreter.call("load", [131072]) }
    }

    /// Out-of-bounds loads and stores on one thread: how many did not end as they should.
    private static func outOfBoundsFailures(_ module: GuestModule, thread: Int) -> Int {
        let interpreter = Interpreters.create(engine: .compiled)
        guard (try? interpreter.exec(module)) != nil else { return 1 }
        var failures = 0
        for round in 0..<200 {
            for arguments: [ShareableValue] in [[.int(Int64(65536 + round))], [65533, .int(Int64(thread))]] {
                do {
                    _ = try interpreter.call(arguments.count == 1 ? "load" : "store", arguments)
                    failures += 1
                } catch let error as GuestError where error.kind == .memoryOutOfBounds {
                } catch {
                    failures += 1
                }
            }
            if (try? interpreter.call("load", [65535])) != 0 { failures += 1 }
        }
        return failures
    }

    /// A module loaded for the compiled engine only skips WasmKit's translation of its bodies: it
    /// runs compiled, WasmKit refuses it, and an invalid body is still caught, by the build.
    @Test func aModuleForTheCompiledEngineOnlyIsValidatedByItsBuild() throws {
        let valid = try GuestModule(wat: "(module (func (export \"one\") (result i32) i32.const 1))").wasmBytes
        let module = try GuestModule(bytes: valid, name: "only", limits: .default, wasi: .default, compiledEngineOnly: true)
        #expect(try Interpreters.create(engine: .compiled).call(module.function("one", returning: Int.self)) == 1)
        #expect(throws: ModuleError.self) { _ = try Interpreters.create(engine: .wasmKit).call(module.function("one", returning: Int.self)) }
        // `(func (result i32) i64.const 0)`: the body's type is wrong.
        let invalid: [UInt8] = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00,
            0x07, 0x07, 0x01, 0x03, 0x62, 0x61, 0x64, 0x00, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x42, 0x00, 0x0b,
        ]
        #expect { _ = try GuestModule(bytes: invalid, name: "bad") } throws: { ($0 as? ModuleError)?.code == .invalid }
        let unchecked = try GuestModule(bytes: invalid, name: "bad", limits: .default, wasi: .default, compiledEngineOnly: true)
        #expect { _ = try Interpreters.create(engine: .compiled).call(unchecked.function("bad", returning: Int.self)) } throws: { error in
            (error as? ModuleError).map { $0.code == .invalid || $0.code == .buildFailed } ?? false
        }
    }

    /// Export names the metering uses for itself are a module's to use, on both engines.
    @Test func noExportNameIsReserved() throws {
        let module = Fixtures.module(
            """
            (module
              (global (export "__cf_fuel") i64 (i64.const 5))
              (global $g (mut i32) (i32.const 0))
              (func $start (global.set $g (i32.const 40)))
              (start $start)
              (func (export "__cf_start") (result i32) (i32.add (global.get $g) (i32.const 2)))
              (func (export "__cf_fuel_1") (result i32) i32.const 9))
            """)
        for engine in [GuestEngine.wasmKit, .compiled] {
            let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: 1000), engine: engine)
            #expect(try interpreter.call(module.function("__cf_start", returning: Int.self)) == 42, "\(engine)")
            #expect(try interpreter.call(module.function("__cf_fuel_1", returning: Int.self)) == 9, "\(engine)")
        }
    }

    /// What wasm2c 1.0.32 cannot translate is refused before it runs, naming the feature.
    @Test func untranslatableFeaturesAreRefusedEarlyAndNamed() throws {
        let cases: [(String, String)] = [
            ("(module (func (export \"f\") (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 0))", "SIMD"),
            ("(module (func $g (result i32) i32.const 1) (func (export \"f\") (result i32) return_call $g))", "tail calls"),
            ("(module (memory 1 1 shared) (func (export \"f\") (result i32) i32.const 0 i32.atomic.load))", "threads"),
            ("(module (memory i64 1) (func (export \"f\") (result i32) i32.const 1))", "64-bit memory"),
            ("(module (memory 1) (memory 1) (func (export \"f\") (result i32) i32.const 1))", "multi-memory"),
        ]
        var checked: [String] = []
        for (text, feature) in cases {
            guard let module = try? GuestModule(wat: text) else { continue }  // WasmKit may refuse it too
            checked.append(feature)
            do {
                try Interpreters.create(engine: .compiled).exec(module)
                Issue.record("\(feature): loaded on the compiled engine")
            } catch let error as ModuleError {
                #expect(error.code == .unsupportedFeature, "\(feature): \(error)")
                #expect(error.message.contains(feature), "\(feature): \(error)")
            }
        }
        // WasmKit 0.4.2 accepts two of them at least, SIMD among them.
        #expect(checked.count >= 2 && checked.contains("SIMD"), "only \(checked) could be checked")
    }

    /// Every module loads as its own shared object, however many are loaded one after another
    /// (the loader knows libraries by name, and a name like /proc/self/fd/N comes back when N is
    /// closed and reused: each used to alias the last).
    @Test func everyModuleIsItsOwnLibrary() throws {
        let interpreter = Interpreters.create(engine: .compiled)
        for index in 0..<12 {
            let module = Fixtures.module(
                "(module (func (export \"which\") (result i64) i64.const \(index * 7 + 1_000_003)))", name: "library-\(index)")
            #expect(try interpreter.call(module.function("which", returning: Int.self)) == index * 7 + 1_000_003)
        }
    }

    /// Caps refuse what would keep the tools busy for minutes, before they run.
    @Test func capsRefuseOversizedModulesBeforeBuilding() throws {
        let types = (0..<40).map { index in "(type (func (param \(String(repeating: "i32 ", count: index)))))" }.joined(separator: " ")
        let module = Fixtures.module("(module \(types) (func (export \"one\") (result i32) i32.const 1))")
        var budget = CompiledEngine.BuildBudget()
        budget.maxTypes = 20
        do {
            try CompiledBuild.checkCaps(module, budget: budget)
            Issue.record("no cap")
        } catch {
            #expect(error.code == .tooLarge)
            #expect(error.message.contains("maxTypes"), "\(error)")
        }
        budget = CompiledEngine.BuildBudget(maxGlobals: 3)
        let globals = Fixtures.module(
            "(module (global i32 (i32.const 1)) (global i32 (i32.const 1)) (global i32 (i32.const 1)) (global i32 (i32.const 1)))")
        #expect(throws: ModuleError.self) { try CompiledBuild.checkCaps(globals, budget: budget) }
        try CompiledBuild.checkCaps(globals, budget: .default)
    }

    /// One build per module at a time, any number of modules at once: a slow build of one module
    /// never holds another's.
    @Test func buildLocksArePerModule() {
        let gate = KeyedGate()
        let holding = Gate()
        let release = Gate()
        let order = Recorder<String>()
        runOnThreads(3) { index in
            switch index {
            case 0:
                gate.with("slow") {
                    holding.open()
                    release.wait()
                    order.append("slow done")
                }
            case 1:
                holding.wait()
                gate.with("other") { order.append("other ran") }
                release.open()
            default:
                holding.wait()
                // Waits for the slow one: the same module.
                gate.with("slow") { order.append("second slow ran") }
            }
        }
        #expect(order.all.first == "other ran")
        #expect(order.all.last == "second slow ran")
    }
}

/// Runs `tool` with `arguments`, returning its exit status and output (stdout then stderr).
func run(_ tool: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

extension CompiledRuntimeTests {
    /// A table access out of bounds is the same error on both engines (wasm2c reports tables and
    /// memories with one trap; the build tells them apart).
    @Test func tableAccessesOutOfBoundsAreTheSameErrorOnBothEngines() throws {
        let module = Fixtures.module(
            """
            (module
              (table $t 2 funcref)
              (elem $e funcref (ref.func $f))
              (func $f)
              (func (export "get") (drop (table.get $t (i32.const 5))))
              (func (export "set") (table.set $t (i32.const 5) (ref.null func)))
              (func (export "init") (table.init $t $e (i32.const 1) (i32.const 0) (i32.const 2)))
              (func (export "copy") (table.copy $t $t (i32.const 1) (i32.const 0) (i32.const 2)))
              (func (export "fill") (table.fill $t (i32.const 1) (ref.null func) (i32.const 2)))
              (func (export "load") (drop (i32.load (i32.const 70000))))
              (memory 1))
            """)
        for name in ["get", "set", "init", "copy", "fill"] {
            for engine in [GuestEngine.wasmKit, .compiled] {
                expectFailure(.indirectCall) { _ = try Interpreters.create(engine: engine).call(module.function(name, returning: Int.self)) }
            }
        }
        for engine in [GuestEngine.wasmKit, .compiled] {
            expectFailure(.memoryOutOfBounds) { _ = try Interpreters.create(engine: engine).call(module.function("load", returning: Int.self)) }
        }
    }
}

extension CompiledRuntimeTests {
    /// Export names are the guest's to choose, and none reaches the generated C: a name that
    /// would close wasm2c's comment and define a constructor runs nothing, and a global whose name
    /// mangles like the fuel counter's does not take its place (the time limit still stops a loop).
    @Test func exportNamesCannotInjectCodeOrTakeTheFuelCountersPlace() throws {
        let marker = "/tmp/futures-test-\(getpid())-injected"
        defer { unlink(marker) }
        // A WAT string: `\n` is a newline, `\"` a quote, in the export's name.
        let injected =
            #"x*/\n#ifndef PWN\n#define PWN\nextern void *fopen(const char *, const char *);\n"#
            + #"__attribute__((constructor)) static void pwn(void){ fopen(\"\#(marker)\", \"w\"); }\n#endif\n/*"#
        let module = Fixtures.module(
            """
            (module
              (func (export "\(injected)") (result i32) i32.const 7)
              (global (export "__cf-fuel") (mut i64) (i64.const 0))
              (global (export "fuel") (mut i64) (i64.const 0))
              (func (export "e0") (result i32) i32.const 8)
              (func (export "spin") (loop $forever (br $forever))))
            """)
        let interpreter = Interpreters.create(limits: InterpreterLimits(timeLimit: .milliseconds(200)), engine: .compiled)
        try interpreter.exec(module)
        #expect(access(marker, F_OK) != 0, "the injected constructor ran")
        #expect(try interpreter.call(module.function("e0", returning: Int.self)) == 8)
        let name = try #require(module.functions.first { $0.name.hasPrefix("x*/") }?.name)
        #expect(try interpreter.call(module.function(name, returning: Int.self)) == 7)
        expectFailure(.timedOut) { _ = try interpreter.call(module.function("spin", returning: Int.self)) }
    }
}
