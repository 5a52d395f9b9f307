import Foundation
import Testing

/// The standard streams `futures run` passes through are streams: seeking on them fails with
/// `ESPIPE` (70) and says so, whatever the host's descriptor is (a file, a pipe).
@Suite("futures run: seeking on standard output")
struct StreamSeekTests {
    /// A command that seeks on standard output and exits with the errno, then writes `after`.
    static let seeker = """
        (module
          (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "after\\n")
          (func (export "_start") (local $errno i32)
            (local.set $errno (call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 16)))
            (i32.store (i32.const 0) (i32.const 100))
            (i32.store (i32.const 4) (i32.const 6))
            (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $exit (local.get $errno))))
        """

    @Test func seekingOnStandardOutputFailsAndMovesNothing() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let module = directory + "/seeker.wat"
        try Self.seeker.write(toFile: module, atomically: true, encoding: .utf8)
        let run = try await futures(["run", module])
        #expect(run.exitCode == 70, "\(run.error)")
        #expect(run.output == "after\n")
    }
}
