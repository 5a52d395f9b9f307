import Foundation
import Testing

/// What `futures run` and `futures map` grant a WASI guest: `--dir`, `--writable-dir`, `--env`
/// and `--allow` on both commands, and `--` before a program's arguments.
@Suite("futures: WASI grants")
struct WASIGrantTests {
    /// A WASI reactor that opens `a.txt` in its first preopened directory (`open_a`: the WASI
    /// errno, 0 when it opened), and counts its environment variables (`env_count`).
    static let reader = """
        (module
          (import "wasi_snapshot_preview1" "path_open"
            (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "a.txt")
          (func (export "_initialize"))
          (func (export "open_a") (param i32) (result i32)
            (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 0)
              (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
          (func (export "env_count") (param i32) (result i32)
            (drop (call $sizes (i32.const 300) (i32.const 304)))
            (i32.load (i32.const 300))))
        """

    /// `futures map` had no `--dir`, `--writable-dir` or `--env`: a reactor that reads files could
    /// not be mapped.
    @Test(arguments: ["interpreter", "process"])
    func mapGrantsDirectoriesAndEnvironment(executor: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let module = directory + "/reader.wat"
        try Self.reader.write(toFile: module, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try "text\n".write(toFile: directory + "/data/a.txt", atomically: true, encoding: .utf8)
        let base = ["map", "--quiet", "--executor", executor, "--workers", "1"]
        let granted = try await futures(base + ["--dir", "\(directory)/data:/d", module, "open_a"], input: "0\n")
        #expect(granted.exitCode == 0, "\(granted.error)")
        #expect(granted.outputLines == ["0"])
        let writable = try await futures(base + ["--writable-dir", "\(directory)/data:/d", module, "open_a"], input: "0\n")
        #expect(writable.outputLines == ["0"], "\(writable.error)")
        // Without a directory the file system is not granted: ENOSYS (52).
        let refused = try await futures(base + [module, "open_a"], input: "0\n")
        #expect(refused.outputLines == ["52"], "\(refused.error)")
        let environment = try await futures(base + ["--env", "A=1", "--env", "B=two", module, "env_count"], input: "0\n")
        #expect(environment.outputLines == ["2"], "\(environment.error)")
        let none = try await futures(base + [module, "env_count"], input: "0\n")
        #expect(none.outputLines == ["0"], "\(none.error)")
    }

    /// `--` between the module and the program's arguments is this command's, not the
    /// program's (it reached the program, which tried to open a file named `--`).
    @Test func aDoubleDashBeforeTheArgumentsIsNotTheProgramsArgument() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "x y x 4 5\n".write(toFile: directory + "/a.txt", atomically: true, encoding: .utf8)
        let run = try await futures(["run", "--dir", "\(directory):/d", "wordstat.wasm", "--", "-n", "1", "/d/a.txt"])
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.output == "tokens: 5\nnumbers: 2 min 4 median 4.5 max 5 mean 4.5\nwords: 2 distinct\n  x 2\n")
        // The usage line shows options before the module.
        let help = try await futures(["run", "--help"])
        #expect(help.output.contains("USAGE: futures run [<options>] <module> [--] [<arguments> ...]"), "\(help.output)")
    }

    /// `--allow` takes the capabilities there are (`poll`), and refuses others by naming them.
    @Test func allowPollIsAcceptedByBothCommands() async throws {
        let run = try await futures(["run", "--allow", "poll", "wordstat.wasm"], input: "1 2\n")
        #expect(run.exitCode == 0, "\(run.error)")
        let bad = try await futures(["run", "--allow", "sockets", "wordstat.wasm"])
        #expect(bad.exitCode != 0)
        #expect(bad.error.contains("poll"), "\(bad.error)")
    }
}
