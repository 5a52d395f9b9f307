import BundledGuests
import Foundation
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

/// Fuel counts the same on both engines, unit for unit: the compiled engine's metering reproduces
/// WasmKit's regions, bulk operations pay for their bytes on both, and host calls (`cf` and WASI)
/// pay for the bytes they move on both.
@Suite("Fuel on both engines", .enabled(if: compiledEngineTestsRun))
struct FuelConformanceTests {
    static let budget: UInt64 = 1 << 40

    /// Control flow of every shape (the regions), bulk operations, growth and host calls.
    static let shapes = """
        (module
          (import "cf" "return_bytes" (func $return_bytes (param i32 i32)))
          (import "cf" "queue_put" (func $queue_put (param i32 i32 i32 i64) (result i32)))
          (memory (export "memory") 2 64)
          (table $t 8 64 funcref)
          (data $d "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz")
          (elem $e funcref (ref.func $seven) (ref.func $seven) (ref.func $seven) (ref.func $seven))
          (type $nullary (func (result i32)))
          (func $seven (result i32) i32.const 7)
          (func (export "branches") (param $n i32) (result i32) (local $acc i32) (local $i i32)
            (block $out
              (loop $next
                (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
                (if (i32.and (local.get $i) (i32.const 1))
                  (then (local.set $acc (i32.add (local.get $acc) (local.get $i))))
                  (else (local.set $acc (i32.sub (local.get $acc) (i32.const 1))) nop))
                (block $a (block $b (block $c
                  (br_table $a $b $c (i32.rem_u (local.get $i) (i32.const 3))))
                  (local.set $acc (i32.add (local.get $acc) (i32.const 100))) (br $a))
                  (local.set $acc (i32.mul (local.get $acc) (i32.const 3))) (i32.const 0) drop)
                (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 5)))
                  (then (local.set $acc (i32.xor (local.get $acc) (i32.const 0x55)))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)
                ;; Dead code, and a block opened in it (reachable again, as WasmKit counts it).
                (i32.const 1) drop (block (i32.const 2) drop (nop)) (unreachable)))
            (call_indirect (type $nullary) (i32.const 0))
            (local.get $acc) (i32.add))
          (func $fib (export "fib") (param $n i32) (result i32)
            (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
              (then (local.get $n))
              (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
          (func (export "early_return") (param $n i32) (result i32)
            (if (local.get $n) (then (return (i32.const 1)) (i32.const 5) drop))
            (i32.const 2))
          (func (export "fill") (param $n i32) (memory.fill (i32.const 16) (i32.const 7) (local.get $n)))
          (func (export "copy") (param $n i32) (memory.copy (i32.const 1000) (i32.const 16) (local.get $n)))
          (func (export "init") (param $n i32) (memory.init $d (i32.const 64) (i32.const 0) (local.get $n)))
          (func (export "table_fill") (param $n i32) (table.fill $t (i32.const 0) (ref.null func) (local.get $n)))
          (func (export "table_copy") (param $n i32) (table.copy $t $t (i32.const 1) (i32.const 0) (local.get $n)))
          (func (export "table_init") (param $n i32) (table.init $t $e (i32.const 0) (i32.const 0) (local.get $n)))
          (func (export "table_grow") (param $n i32) (result i32) (table.grow $t (ref.null func) (local.get $n)))
          (func (export "memory_grow") (param $n i32) (result i32) (memory.grow (local.get $n)))
          (func (export "pass_bytes") (param $n i32) (call $return_bytes (i32.const 0) (local.get $n)))
          (func (export "bulk_loop") (param $rounds i32) (local $i i32)
            (loop $again
              (memory.fill (i32.const 0) (i32.const 1) (i32.const 65536))
              (memory.copy (i32.const 65536) (i32.const 0) (i32.const 4096))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $again (i32.lt_u (local.get $i) (local.get $rounds)))))
        )
        """

    /// What a call to `name` with `arguments` consumed on `engine`, or its error.
    static func consumption(_ module: GuestModule, _ name: String, _ arguments: [ShareableValue], engine: GuestEngine) -> Result<UInt64, GuestError> {
        let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: budget, memoryBytes: 64 << 20), engine: engine)
        defer { try? interpreter.close() }
        do {
            _ = try interpreter.run(GuestInvocation(module: module, function: name, arguments: arguments, fuel: nil), wait: false)
        } catch let error as GuestError {
            return .failure(error)
        } catch {
            return .failure(GuestError(kind: .trap, function: name, message: "\(error)", interpreterID: 0))
        }
        return .success(budget - (interpreter.remainingFuel ?? budget))
    }

    /// Every shape, with lengths around the 64-byte steps: the same fuel on both engines, and
    /// bulk operations pay for their length on both.
    @Test func everyShapeCostsTheSameOnBothEngines() throws {
        let module = Fixtures.module(Self.shapes)
        var compared = 0
        let calls: [(String, [Int64])] = [
            ("branches", [0, 1, 7, 50]), ("fib", [0, 1, 10]), ("early_return", [0, 1]),
            ("fill", [0, 63, 64, 65, 4096, 100_000]), ("copy", [0, 64, 4096]), ("init", [0, 10, 80]),
            ("table_fill", [0, 4, 8]), ("table_copy", [0, 3, 7]), ("table_init", [0, 4]), ("table_grow", [0, 1, 20, 100]),
            ("memory_grow", [0, 1, 3, 100]), ("pass_bytes", [0, 63, 64, 5000]), ("bulk_loop", [1, 3]),
        ]
        var bulk: [String: [UInt64]] = [:]
        for (name, values) in calls {
            for value in values {
                let outcomes = GuestEngine.allCases.filter { $0 != .auto }.map { Self.consumption(module, name, [.int(value)], engine: $0) }
                switch (outcomes[0], outcomes[1]) {
                case (.success(let wasmKit), .success(let compiled)):
                    #expect(wasmKit == compiled, "\(name)(\(value)): WasmKit \(wasmKit), compiled \(compiled)")
                    if name == "fill" { bulk[name, default: []].append(wasmKit) }
                    compared += 1
                case (.failure(let wasmKit), .failure(let compiled)):
                    #expect(wasmKit.kind == compiled.kind, "\(name)(\(value)): \(wasmKit) / \(compiled)")
                default:
                    Issue.record("\(name)(\(value)): \(outcomes)")
                }
            }
        }
        #expect(compared > 30)
        // memory.fill of 100,000 bytes pays 1,562 units more than one of 0.
        let fills = try #require(bulk["fill"])
        #expect(fills.last! - fills.first! == 100_000 / 64)
    }

    /// The bundled guests' functions cost the same on both engines.
    @Test func theBundledGuestsCostTheSameOnBothEngines() throws {
        var compared = 0
        for module in [BundledGuests.tasks, BundledGuests.examples] {
            for export in module.functions
            where export.parameters.allSatisfy({ $0 == "i64" || $0 == "i32" }) && !["spin", "print_hello"].contains(export.name) {
                for value: Int64 in [0, 3, 1000] {
                    let arguments = export.parameters.map { _ in ShareableValue.int(value) }
                    let outcomes = [GuestEngine.wasmKit, .compiled].map { Self.consumption(module, export.name, arguments, engine: $0) }
                    switch (outcomes[0], outcomes[1]) {
                    case (.success(let wasmKit), .success(let compiled)):
                        #expect(wasmKit == compiled, "\(module.name).\(export.name)(\(value)): WasmKit \(wasmKit), compiled \(compiled)")
                        compared += 1
                    case (.failure(let wasmKit), .failure(let compiled)):
                        // Both stopped (a trap the arguments cause): the same kind of stop.
                        #expect(wasmKit.kind == compiled.kind, "\(module.name).\(export.name)(\(value)): \(wasmKit) / \(compiled)")
                    default:
                        Issue.record("\(module.name).\(export.name)(\(value)): one engine succeeded, the other failed: \(outcomes)")
                    }
                }
            }
        }
        #expect(compared > 20)
    }

    /// WASI calls pay for the bytes they move, the same on both engines.
    @Test func wasiCallsPayForTheirBytesOnBothEngines() throws {
        let text = """
            (module
              (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
              (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
              (memory (export "memory") 4)
              (func (export "random") (param $n i32) (result i32) (call $random_get (i32.const 1024) (local.get $n)))
              (func (export "write") (param $n i32) (result i32)
                (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (local.get $n))
                (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (func (export "read") (param $n i32) (result i32)
                (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (local.get $n))
                (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))))
            """
        let module = try GuestModule(wat: text, name: "wasi-fuel", wasi: WASIOptions(output: .discard))
        var costs: [String: [UInt64]] = [:]
        for name in ["random", "write", "read"] {
            for length: Int64 in [0, 6400, 64_000] {
                var consumed: [UInt64] = []
                for engine in [GuestEngine.wasmKit, .compiled] {
                    let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: Self.budget), engine: engine)
                    defer { try? interpreter.close() }
                    let invocation = GuestInvocation(
                        module: module, function: name, arguments: [.int(length)], fuel: nil,
                        wasi: WASICallOptions(stdin: Array(repeating: 1, count: 6400)))
                    #expect(try interpreter.run(invocation, wait: false) == .int(0))
                    consumed.append(Self.budget - (interpreter.remainingFuel ?? 0))
                }
                #expect(consumed[0] == consumed[1], "\(name)(\(length)): \(consumed)")
                costs[name, default: []].append(consumed[0])
            }
        }
        // 64,000 random bytes cost 1,000 units more than none; reading pays for what it read
        // (6,400 bytes of input at most).
        #expect(costs["random"]![2] - costs["random"]![0] == 1000)
        #expect(costs["write"]![2] - costs["write"]![0] == 1000)
        #expect(costs["read"]![2] - costs["read"]![0] == 100)
        #expect(costs["read"]![2] == costs["read"]![1])
    }

    /// Listing a directory pays for the bytes the listing wrote, not for the buffer the guest
    /// offered (a large buffer for a small directory costs what a small one does), and the same on
    /// both engines.
    @Test func directoryListingsPayForWhatTheyFill() throws {
        let data = NSTemporaryDirectory() + "fuel-readdir-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        for name in ["alpha.txt", "beta.txt", "gamma.txt"] { _ = FileManager.default.createFile(atPath: "\(data)/\(name)", contents: nil) }
        let text = """
            (module
              (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
              (memory (export "memory") 2)
              (func (export "list") (param $n i32) (result i32)
                (drop (call $fd_readdir (i32.const 3) (i32.const 1024) (local.get $n) (i64.const 0) (i32.const 8)))
                (i32.load (i32.const 8))))
            """
        let module = try GuestModule(
            wat: text, name: "readdir-fuel", wasi: WASIOptions(preopens: [.init(hostPath: data, guestPath: "/data")]))
        var costs: [Int64: UInt64] = [:]
        var used: [Int64: ShareableValue] = [:]
        for length: Int64 in [0, 4096, 65_536] {
            var consumed: [UInt64] = []
            for engine in [GuestEngine.wasmKit, .compiled] {
                let interpreter = Interpreters.create(limits: InterpreterLimits(fuel: Self.budget), engine: engine)
                defer { try? interpreter.close() }
                used[length] = try interpreter.run(
                    GuestInvocation(module: module, function: "list", arguments: [.int(length)], fuel: nil), wait: false)
                consumed.append(Self.budget - (interpreter.remainingFuel ?? 0))
            }
            #expect(consumed[0] == consumed[1], "list(\(length)): \(consumed)")
            costs[length] = consumed[0]
        }
        // Five entries (".", "..", three files) of 24 bytes and a name each: over 64 bytes, far
        // under 4,096.
        guard case .int(let filled) = used[65_536] else {
            Issue.record("no byte count: \(String(describing: used[65_536]))")
            return
        }
        #expect(filled > 64 && filled < 4096)
        #expect(used[4096] == used[65_536])
        #expect(costs[65_536] == costs[4096])
        #expect(costs[4096]! - costs[0]! == UInt64(filled) / 64)
    }

    /// A loop of bulk operations, or of host calls moving large buffers, is stopped by fuel on
    /// both engines (before, the compiled engine charged each one a single unit).
    @Test func fuelBoundsBulkOperationsAndHostCalls() throws {
        let bulk = Fixtures.module(
            """
            (module
              (memory (export "memory") 2)
              (func (export "fill_forever") (loop $again (memory.fill (i32.const 0) (i32.const 1) (i32.const 65536)) (br $again))))
            """)
        let host = try GuestModule(
            wat: """
                (module
                  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
                  (import "cf" "return_bytes" (func $return_bytes (param i32 i32)))
                  (memory (export "memory") 2)
                  (func (export "random_forever") (loop $again (drop (call $random_get (i32.const 0) (i32.const 65536))) (br $again)))
                  (func (export "bytes_forever") (loop $again (call $return_bytes (i32.const 0) (i32.const 65536)) (br $again))))
                """, name: "host-loops", wasi: WASIOptions(output: .discard))
        // A time limit only so that a regression fails instead of hanging.
        let limits = InterpreterLimits(fuel: 2_000_000, timeLimit: .seconds(60))
        for engine in [GuestEngine.wasmKit, .compiled] {
            let interpreter = Interpreters.create(limits: limits, engine: engine)
            defer { try? interpreter.close() }
            for (module, name) in [(bulk, "fill_forever"), (host, "random_forever"), (host, "bytes_forever")] {
                expectFailure(.outOfFuel) {
                    _ = try interpreter.run(GuestInvocation(module: module, function: name, arguments: [], fuel: nil), wait: false)
                }
            }
        }
    }
}
