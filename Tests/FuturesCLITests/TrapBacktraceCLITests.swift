import Foundation
import Testing

/// `futures run` prints the guest's stack at a trap after its error line, one frame a line,
/// innermost first, as Wasmtime does.
@Suite("futures run backtraces")
struct TrapBacktraceCLITests {
    /// A WASI command whose `_start` (function 2) calls `outer` (1), which calls `inner` (0),
    /// which executes `unreachable`; its `name` section names functions 0 and 1.
    static let command: [UInt8] =
        [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00]
        + [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]  // types: () -> ()
        + [0x03, 0x04, 0x03, 0x00, 0x00, 0x00]  // functions: three of type 0
        + [0x07, 0x0A, 0x01, 0x06] + Array("_start".utf8) + [0x00, 0x02]  // export "_start" = 2
        + [0x0A, 0x0F, 0x03]  // code
        + [0x03, 0x00, 0x00, 0x0B]  // inner: unreachable
        + [0x04, 0x00, 0x10, 0x00, 0x0B]  // outer: call 0
        + [0x04, 0x00, 0x10, 0x01, 0x0B]  // _start: call 1
        + [0x00, 0x16, 0x04] + Array("name".utf8) + [0x01, 0x0F, 0x02]  // name section: function names
        + [0x00, 0x05] + Array("inner".utf8) + [0x01, 0x05] + Array("outer".utf8)

    static func runTrapping(engine: String) async throws -> Run {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/trap.wasm"
        try Data(command).write(to: URL(fileURLWithPath: path))
        return try await futures(["run", "--engine", engine, path])
    }

    @Test func wasmKitPrintsEveryFrame() async throws {
        let run = try await Self.runTrapping(engine: "wasmkit")
        #expect(run.exitCode == 134)
        #expect(
            run.error == "futures run: unreachable in _start: unreachable\nbacktrace:\n    0: inner\n    1: outer\n    2: _start\n",
            "\(run.error)")
    }

    @Test(.enabled(if: compiledEngineAvailable))
    func compiledEnginePrintsTheTrappingFunction() async throws {
        let run = try await Self.runTrapping(engine: "compiled")
        #expect(run.exitCode == 134)
        #expect(run.error.hasPrefix("futures run: unreachable in _start: unreachable\nbacktrace:\n    0: inner\n"), "\(run.error)")
    }
}
