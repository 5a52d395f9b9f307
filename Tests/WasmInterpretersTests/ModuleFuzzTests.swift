import BundledGuests
import TestSupport
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// A small deterministic generator, so a failing case can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Module fuzzing")
struct ModuleFuzzTests {
    /// 10,000 random and mutated modules: each is rejected with a `ModuleError` or loads; a
    /// loaded one is instantiated and its exports called under fuel, time and memory limits, with
    /// numbers and with a string (which goes through the guest's `cf_alloc` and `cf_free`).
    /// Nothing may crash or hang the host, and every failure must be one of the package's typed
    /// errors. The seeds include every kind of hostile guest the host was hardened against:
    /// exception handling, a re-entrant allocator, loops in the start function, `cf_alloc` and
    /// `cf_free`, and memory, table, exception and queue growth, bulk operations, a type section of
    /// thousands of entries, a WASI guest with no memory; and WASI programs in C, whose mutations
    /// call WASI functions with whatever their damaged code passes.
    @Test func randomAndMutatedModulesNeverCrashTheHost() throws {
        var random = SplitMix(state: UInt64(getenv("FUTURES_FUZZ_SEED").flatMap { Int(String(cString: $0)) } ?? 0x5EED))
        let seeds: [[UInt8]] =
            [
                BundledGuests.bytes(named: "Tasks.wasm")!,
                BundledGuests.bytes(named: "faults.wasm")!,
                BundledGuests.bytes(named: "probe.wasm")!,
                BundledGuests.bytes(named: "wordstat-reactor.wasm")!,
                try GuestModule(wat: Fixtures.basic).wasmBytes,
                try GuestModule(wat: Fixtures.queues).wasmBytes,
                // Bulk memory and table operations, and a type section of thousands of entries.
                try GuestModule(wat: FuelConformanceTests.shapes).wasmBytes,
                try GuestModule.compile(wat: HostileGuests.manyTypes),
            ] + (try HostileGuests.all.map { try GuestModule.compile(wat: $0) })
        var loaded = 0
        var rejected = 0
        var untyped: [String] = []
        let limits = InterpreterLimits(
            fuel: 20_000, memoryBytes: 1 << 20, maxValueBytes: 4096, stackBytes: 64 << 10, timeLimit: .milliseconds(500))
        // Queues are process-wide by id, as in PEP 734, and the queue fixture's exports take a
        // queue id: integer arguments name a queue of this test's own, never another test's.
        // Gets must not wait for their timeout (the same integer), so the queue starts full enough.
        let sandbox = Interpreters.createQueue()
        for item in 0..<10_000 { try sandbox.putNowait(item) }
        let integer = ShareableValue.int(Int64(sandbox.id))
        for round in 0..<10_000 {
            var bytes: [UInt8]
            if round % 5 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                if round % 10 == 0, bytes.count >= 8 { bytes.replaceSubrange(0..<8, with: [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) }
            } else {
                bytes = seeds[round % seeds.count]
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let position = Int.random(in: 0..<bytes.count, using: &random)
                    switch Int.random(in: 0..<4, using: &random) {
                    case 0: bytes[position] = UInt8.random(in: 0...255, using: &random)
                    case 1: bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                    case 2: bytes.remove(at: position)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
                    }
                    if bytes.isEmpty { break }
                }
                if round % 7 == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random))) }
            }
            let module: GuestModule
            do {
                module = try GuestModule(bytes: bytes, name: "fuzz-\(round)", wasi: WASIOptions(output: .discard))
            } catch {
                rejected += 1
                continue
            }
            loaded += 1
            let interpreter = Interpreters.create(limits: limits)
            defer { try? interpreter.close() }
            do {
                try interpreter.exec(module)
            } catch is GuestError {
                continue
            } catch {
                untyped.append("exec \(round): \(error)")
                continue
            }
            for export in module.functions {
                let numbers = export.parameters.map { type -> ShareableValue in type.hasPrefix("f") ? .double(1) : integer }
                var argumentSets = [numbers]
                if export.parameters.starts(with: ["i32", "i32"]) {
                    argumentSets.append(["fuzz"] + numbers.dropFirst(2))
                }
                for arguments in argumentSets {
                    do {
                        _ = try interpreter.call(export.name, arguments)
                    } catch is GuestError {
                    } catch {
                        untyped.append("call \(round) \(export.name): \(error)")
                    }
                }
            }
            // Guests may flood the queue; keep it small, and full enough that gets never wait.
            while sandbox.count > 12_000 { _ = try? sandbox.getNowait() }
            while sandbox.count < 2_000 { try sandbox.putNowait(0) }
        }
        #expect(loaded + rejected == 10_000)
        #expect(rejected > 0 && loaded > 0)
        #expect(untyped.isEmpty, "\(untyped.prefix(5))")
        withExtendedLifetime(sandbox) {}
    }
}
