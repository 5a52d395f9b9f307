import Synchronization
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The engines host functions are checked on: WasmKit always, the compiled engine where it runs.
let hostFunctionEngines: [GuestEngine] = compiledEngineTestsRun ? [.wasmKit, .compiled] : [.wasmKit]

/// A plugin's host API: a log that keeps what it is told, a key-value store, numbers of every
/// type, and functions that misbehave on purpose.
final class PluginHost: Sendable {
    let lines = Mutex<[String]>([])
    let store = ["greeting": "hello", "name": "plugin"]

    var linker: Linker {
        Linker([
            HostFunction(module: "env", name: "log", parameters: [.i32, .i32, .i32]) { call in
                let text = try call.string(1)
                self.lines.withLock { $0.append("\(call.arguments[0].int32!):\(text)") }
                return []
            },
            HostFunction(module: "env", name: "kv_get", parameters: [.i32, .i32], results: [.i64]) { call in
                guard let value = self.store[try call.string(0)] else { return [.i64(0)] }
                return [try call.returning(string: value)]
            },
            HostFunction(module: "env", name: "mix", parameters: [.i32, .i64, .f32, .f64], results: [.f64]) { call in
                let sum = Double(call.arguments[0].int32!) + Double(call.arguments[1].int64!) + Double(call.arguments[2].float!)
                return [.double(sum + call.arguments[3].double!)]
            },
            HostFunction(module: "env", name: "f32_bits", parameters: [.f32], results: [.f32]) { call in
                // Hands back the very bits it got, flipped in the sign: a NaN stays signaling.
                guard case .f32(let bits) = call.arguments[0] else { return [] }
                return [.f32(bits ^ 0x8000_0000)]
            },
            HostFunction(module: "env", name: "fail", parameters: [.i32]) { call in
                if call.arguments[0].int32 == 1 { throw HostFunctionFailure("key not allowed", kind: .badArguments) }
                struct Oops: Error {}
                throw Oops()
            },
            HostFunction(module: "env", name: "peek", parameters: [.i32, .i32], results: [.i32]) { call in
                [.i32(UInt32(try call.bytes(0).count))]
            },
            HostFunction(module: "env", name: "slow", parameters: []) { _ in
                usleep(300_000)
                return []
            },
            HostFunction(module: "env", name: "callback", parameters: [.i32], results: [.i32]) { call in
                try call.callGuest("twice", [call.arguments[0]])
            },
            HostFunction(module: "env", name: "wrong_result", parameters: [], results: [.i32]) { _ in [.i64(1)] },
        ])
    }
}

private let pluginWAT = """
    (module
      (import "env" "log" (func $log (param i32 i32 i32)))
      (import "env" "kv_get" (func $kv_get (param i32 i32) (result i64)))
      (import "env" "mix" (func $mix (param i32 i64 f32 f64) (result f64)))
      (import "env" "f32_bits" (func $f32_bits (param f32) (result f32)))
      (import "env" "fail" (func $fail (param i32)))
      (import "env" "peek" (func $peek (param i32 i32) (result i32)))
      (import "env" "slow" (func $slow))
      (import "env" "callback" (func $callback (param i32) (result i32)))
      (import "env" "wrong_result" (func $wrong_result (result i32)))
      (memory (export "memory") 1)
      (global $heap (mut i32) (i32.const 4096))
      (global (export "counter") (mut i64) (i64.const 41))
      (global (export "ratio") f32 (f32.const 0.5))
      (data (i32.const 16) "greeting")
      (data (i32.const 32) "hi there")
      (data (i32.const 48) "missing")
      (func (export "cf_alloc") (param $n i32) (result i32) (local $p i32)
        global.get $heap local.set $p
        global.get $heap local.get $n i32.add global.set $heap
        local.get $p)
      (func (export "cf_free") (param i32))
      (func (export "say") (call $log (i32.const 2) (i32.const 32) (i32.const 8)))
      (func (export "greeting_length") (result i64) (i64.shr_u (call $kv_get (i32.const 16) (i32.const 8)) (i64.const 32)))
      (func (export "greeting_first_byte") (result i32)
        (i32.load8_u (i32.wrap_i64 (call $kv_get (i32.const 16) (i32.const 8)))))
      (func (export "missing") (result i64) (call $kv_get (i32.const 48) (i32.const 7)))
      (func (export "mix") (result f64) (call $mix (i32.const -2) (i64.const 40) (f32.const 0.25) (f64.const 1.75)))
      (func (export "bits") (param f32) (result f32) (call $f32_bits (local.get 0)))
      (func (export "fail") (param i32) (call $fail (local.get 0)))
      (func (export "peek_outside") (result i32) (call $peek (i32.const 65530) (i32.const 100)))
      (func (export "slow") (call $slow))
      (func (export "twice") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
      (func (export "callback") (param i32) (result i32) (call $callback (local.get 0)))
      (func (export "nested") (param i32) (result i32) (call $callback (local.get 0)))
      (func (export "wrong_result") (result i32) (call $wrong_result))
      (func (export "bump") (global.set 1 (i64.add (global.get 1) (i64.const 1))))
    )
    """

@Suite("Host functions")
struct HostFunctionTests {
    let host = PluginHost()

    func plugin() throws -> GuestModule {
        try GuestModule(wat: pluginWAT, name: "plugin", linker: host.linker)
    }

    @Test("A guest calls host functions with strings, numbers of every type, and gets strings back", arguments: hostFunctionEngines)
    func callsHostFunctions(engine: GuestEngine) throws {
        let module = try plugin()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("say") == .none)
        #expect(host.lines.withLock { $0 } == ["2:hi there"])
        #expect(try interpreter.call("greeting_length") == .int(5))
        #expect(try interpreter.call("greeting_first_byte") == .int(Int64(UInt8(ascii: "h"))))
        #expect(try interpreter.call("missing") == .int(0))
        #expect(try interpreter.call("mix") == .double(40))
    }

    @Test("f32 values keep their bits both ways: a signaling NaN crosses as one", arguments: hostFunctionEngines)
    func f32BitsKept(engine: GuestEngine) throws {
        let module = try plugin()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let signaling: UInt32 = 0x7FA0_0001
        let results = try interpreter.call("bits", in: module, values: [.f32(signaling)])
        #expect(results == [.f32(signaling ^ 0x8000_0000)])
        #expect(try interpreter.call("bits", in: module, values: [.float(1.5)]) == [.float(-1.5)])
        expectFailure(.badArguments) { _ = try interpreter.call("bits", in: module, values: [.f64(0)]) }
    }

    @Test("A host function fails the call with a typed error; the interpreter goes on", arguments: hostFunctionEngines)
    func hostFailures(engine: GuestEngine) throws {
        let module = try plugin()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        let error1 = #expect(throws: GuestError.self) { _ = try interpreter.call("fail", [.int(1)]) }
        #expect(
            error1.map { error in error.kind == .badArguments && error.message.contains("env.fail: key not allowed") } == true,
            "\(String(describing: error1))")
        let error2 = #expect(throws: GuestError.self) { _ = try interpreter.call("fail", [.int(2)]) }
        #expect(error2.map { error in error.kind == .hostFunction && error.message.contains("Oops") } == true, "\(String(describing: error2))")
        expectFailure(.invalidPointer) { _ = try interpreter.call("peek_outside") }
        expectFailure(.badArguments) { _ = try interpreter.call("wrong_result") }
        #expect(try interpreter.call("greeting_length") == .int(5))
    }

    @Test("The time limit counts while a host function runs", arguments: hostFunctionEngines)
    func timeLimitCoversHostFunctions(engine: GuestEngine) throws {
        var limits = InterpreterLimits.default
        limits.timeLimit = .milliseconds(100)
        let interpreter = Interpreters.create(limits: limits, engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(try plugin())
        expectFailure(.timedOut) { _ = try interpreter.call("slow") }
        #expect(try interpreter.call("greeting_length") == .int(5))
    }

    @Test("Memory a host function reads is charged to the call's fuel", arguments: hostFunctionEngines)
    func fuelCoversHostReads(engine: GuestEngine) throws {
        let module = try GuestModule(
            wat: """
                (module (import "env" "peek" (func $peek (param i32 i32) (result i32)))
                  (memory (export "memory") 1)
                  (func (export "read") (param $times i32) (result i32) (local $sum i32)
                    (loop $again
                      (local.set $sum (i32.add (local.get $sum) (call $peek (i32.const 0) (i32.const 64000))))
                      (br_if $again (local.tee $times (i32.sub (local.get $times) (i32.const 1)))))
                    (local.get $sum)))
                """, linker: host.linker)
        var limits = InterpreterLimits.default
        limits.fuel = 5_000
        let interpreter = Interpreters.create(limits: limits, engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        // 1,000 units per read of 64,000 bytes: four fit in the budget, six do not.
        #expect(try interpreter.call(module.function("read", returning: Int.self), 4) == 256_000)
        expectFailure(.outOfFuel) { _ = try interpreter.call("read", [.int(6)]) }
    }

    @Test("A host function calls back into the guest one level deep, not more", arguments: hostFunctionEngines)
    func reentryIsOneLevel(engine: GuestEngine) throws {
        let module = try plugin()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("callback", [.int(21)]) == .int(42))
        // A callback into `callback` itself: the second level is refused.
        let deeper = Linker([
            HostFunction(module: "env", name: "callback", parameters: [.i32], results: [.i32]) { call in
                try call.callGuest("again", [call.arguments[0]])
            }
        ])
        let recursive = try GuestModule(
            wat: """
                (module (import "env" "callback" (func $callback (param i32) (result i32)))
                  (func (export "again") (param i32) (result i32) (call $callback (local.get 0))))
                """, linker: deeper)
        let other = Interpreters.create(engine: engine)
        defer { try? other.close() }
        expectFailure(.reentrantCall) { _ = try other.call(recursive.function("again", returning: Int.self), 1) }
    }

    @Test("Loading names every missing or mistyped import and the functions defined")
    func missingImportsAreListed() throws {
        let wat = """
            (module (import "env" "log" (func (param i32))) (import "env" "nope" (func)))
            """
        let error3 = #expect(throws: ModuleError.self) { _ = try GuestModule(wat: wat, linker: host.linker) }
        #expect(
            error3.map { error in
                error.code == .missingImports && error.missingImports == ["env.log", "env.nope"]
                    && error.message.contains("expected (i32, i32, i32)") && error.message.contains("host functions defined: env.callback")
            } == true, "\(String(describing: error3))")
        let error4 = #expect(throws: ModuleError.self) { _ = try GuestModule(wat: wat) }
        #expect(
            error4.map { error in error.code == .missingImports && error.message.contains("no host functions are defined") } == true,
            "\(String(describing: error4))")
        let wide = Linker([HostFunction(module: "env", name: "two", results: [.i32, .i32]) { _ in [.i32(1), .i32(2)] }])
        let error5 = #expect(throws: ModuleError.self) { _ = try GuestModule(wat: "(module)", linker: wide) }
        #expect(error5.map { error in error.code == .invalidOptions } == true, "\(String(describing: error5))")
    }

    @Test("Exported globals and memory are read from Swift", arguments: hostFunctionEngines)
    func readsGlobalsAndMemory(engine: GuestEngine) throws {
        let module = try plugin()
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        #expect(try interpreter.global("counter", of: module) == .int64(41))
        #expect(try interpreter.global("ratio", of: module) == .float(0.5))
        _ = try interpreter.call("bump")
        #expect(try interpreter.global("counter", of: module) == .int64(42))
        let text = try interpreter.withMemory(of: module) { memory in try memory.string(at: 16, count: 8) }
        #expect(text == "greeting")
        #expect(try interpreter.withMemory(of: module) { $0.byteCount } == 65_536)
        try interpreter.withMemory(of: module) { memory in
            try memory.store(UInt32(0xDEAD_BEEF), at: 100)
            #expect(try memory.load(UInt32.self, at: 100) == 0xDEAD_BEEF)
            #expect(throws: HostFunctionFailure.self) { try memory.bytes(at: 65_535, count: 2) }
        }
        #expect(throws: ModuleError.self) { try interpreter.global("nothing", of: module) }
    }

    @Test("One instance's exports are another module's imports in one interpreter", arguments: hostFunctionEngines)
    func linksInstances(engine: GuestEngine) throws {
        let library = try GuestModule(
            wat: """
                (module (global $total (mut i64) (i64.const 0))
                  (func (export "add") (param i64) (result i64)
                    (global.set $total (i64.add (global.get $total) (local.get 0))) (global.get $total)))
                """, name: "library")
        var linker = Linker()
        linker.allowInstance(named: "lib")
        let user = try GuestModule(
            wat: """
                (module (import "lib" "add" (func $add (param i64) (result i64)))
                  (func (export "use") (param i64) (result i64) (call $add (local.get 0)))
                  (func (export "crash") unreachable))
                """, name: "user", linker: linker)
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        let error6 = #expect(throws: ModuleError.self) { try interpreter.exec(user) }
        #expect(error6.map { error in error.code == .missingImports && error.missingImports == ["lib.add"] } == true, "\(String(describing: error6))")
        try interpreter.register(library, as: "lib")
        try interpreter.exec(user)
        #expect(try interpreter.call("use", [.int(5)]) == .int(5))
        #expect(try interpreter.call("use", [.int(7)]) == .int(12))
        // The library's state is shared: its own export sees it.
        #expect(try interpreter.call("add", [.int(0)]) == .int(12))
        // A trap replaces every instance; the link is made again, to a fresh library.
        expectFailure(.unreachable) { _ = try interpreter.call("crash") }
        #expect(try interpreter.call("use", [.int(1)]) == .int(1))
    }

    @Test("Linked memories and globals (WasmKit)")
    func linksMemoriesAndGlobals() throws {
        let provider = try GuestModule(
            wat: """
                (module (memory (export "mem") 1) (global (export "base") i32 (i32.const 8))
                  (data (i32.const 8) "\\2a"))
                """)
        var linker = Linker()
        linker.allowInstance(named: "spectest")
        let user = try GuestModule(
            wat: """
                (module (import "spectest" "mem" (memory 1)) (import "spectest" "base" (global $base i32))
                  (func (export "read") (result i32) (i32.load8_u (global.get $base))))
                """, linker: linker)
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.register(provider, as: "spectest")
        #expect(try interpreter.call(user.function("read", returning: Int.self)) == 42)
        if compiledEngineTestsRun {
            let compiled = Interpreters.create(engine: .compiled)
            defer { try? compiled.close() }
            try compiled.register(provider, as: "spectest")
            let error7 = #expect(throws: ModuleError.self) { try compiled.exec(user) }
            #expect(error7.map { error in error.code == .unsupportedFeature } == true, "\(String(describing: error7))")
        }
    }

    /// Random addresses and lengths from a guest never reach past its memory: every call gives
    /// the bytes' count or a typed error, the host survives, and the interpreter goes on.
    @Test("Random ranges handed to a host function are checked", arguments: hostFunctionEngines)
    func randomRangesAreChecked(engine: GuestEngine) throws {
        let module = try GuestModule(
            wat: """
                (module (import "env" "peek" (func $peek (param i32 i32) (result i32)))
                  (memory (export "memory") 1 3)
                  (func (export "peek") (param i32 i32) (result i32) (call $peek (local.get 0) (local.get 1)))
                  (func (export "grow") (result i32) (memory.grow (i32.const 1))))
                """, linker: host.linker)
        var limits = InterpreterLimits.default
        limits.maxValueBytes = 100_000
        let interpreter = Interpreters.create(limits: limits, engine: engine)
        defer { try? interpreter.close() }
        var generator = SystemRandomNumberGenerator()
        let edges: [UInt32] = [0, 1, 65_535, 65_536, 131_072, 196_608, UInt32.max, UInt32.max - 7, 0x8000_0000]
        for round in 0..<400 {
            if round % 50 == 49 { _ = try interpreter.call("grow", in: module, values: []) }
            let size = try interpreter.withMemory(of: module) { $0.byteCount }
            let address =
                Bool.random(using: &generator) ? edges.randomElement(using: &generator)! : UInt32.random(in: 0...0x4_0000, using: &generator)
            let count = Bool.random(using: &generator) ? edges.randomElement(using: &generator)! : UInt32.random(in: 0...0x2_0000, using: &generator)
            let fits = UInt64(address) + UInt64(count) <= UInt64(size)
            do {
                let results = try interpreter.call("peek", in: module, values: [.i32(address), .i32(count)])
                #expect(fits && count <= 100_000, "0x\(String(address, radix: 16))+\(count) of \(size) was read")
                #expect(results == [.i32(count)])
            } catch let error as GuestError {
                #expect(!fits || count > 100_000, "0x\(String(address, radix: 16))+\(count) of \(size): \(error)")
                #expect(error.kind == (fits ? .valueTooLarge : .invalidPointer), "\(error)")
            }
        }
    }
}
