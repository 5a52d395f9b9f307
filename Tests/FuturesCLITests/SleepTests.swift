import Foundation
import Testing

/// A WASI program's sleep (`poll_oneoff` on a clock), granted with `--allow poll`: it sleeps, and
/// under a time limit it ends at the limit with `timedOut` (it slept on in the host, past
/// `--timeout`).
@Suite("WASI sleep")
struct SleepTests {
    /// A command that sleeps `nanoseconds` on the monotonic clock with `poll_oneoff` and exits
    /// with the errno when it fails, else userdata × 10 + events (71 when it slept).
    static func sleeper(nanoseconds: Int64) -> String {
        """
        (module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (local $errno i32)
            (i64.store (i32.const 0) (i64.const 7))
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const \(nanoseconds)))
            (local.set $errno (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
            (if (local.get $errno) (then (call $exit (local.get $errno))))
            (call $exit (i32.add (i32.mul (i32.wrap_i64 (i64.load (i32.const 100))) (i32.const 10)) (i32.load (i32.const 200))))))
        """
    }

    @Test(arguments: ["wasmkit", "compiled"])
    func aSleepEndsAtTheTimeLimit(engine: String) async throws {
        guard engine == "wasmkit" || compiledEngineAvailable else { return }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let short = directory + "/short.wat"
        try Self.sleeper(nanoseconds: 20_000_000).write(toFile: short, atomically: true, encoding: .utf8)
        let slept = try await futures(["run", "--engine", engine, "--allow", "poll", short])
        #expect(slept.exitCode == 71, "\(slept.error)")
        // Without the grant there is no sleeping: ENOSYS (52).
        let refused = try await futures(["run", "--engine", engine, short])
        #expect(refused.exitCode == 52, "\(refused.error)")
        let long = directory + "/long.wat"
        try Self.sleeper(nanoseconds: 30_000_000_000).write(toFile: long, atomically: true, encoding: .utf8)
        let limited = try await futures(["run", "--engine", engine, "--allow", "poll", "--timeout", "0.3", long])
        #expect(limited.exitCode == 134, "\(limited.error)")
        #expect(limited.error.contains("timedOut"), "\(limited.error)")
    }
}
