import Foundation
import Testing

/// Every error of the tool is one plain sentence that says what to do: no Swift debug text, and a
/// call stopped by a limit names the option that sets it.
@Suite("futures: errors as sentences")
struct CLIErrorTests {
    /// The standard error of a failed run: one line, with no Swift debug text.
    static func oneSentence(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let lines = run.error.split(separator: "\n").map(String.init)
        #expect(lines.count == 1, "\(run.error)", sourceLocation: sourceLocation)
        for debugText in ["Message(", "text:", "WasmParserError", "Optional(", "CommandFailure("] {
            #expect(!run.error.contains(debugText), "\(run.error)", sourceLocation: sourceLocation)
        }
        return run.error
    }

    /// A file that is not WebAssembly (it was Swift debug text: `Message(text: "magic header not
    /// detected")`).
    @Test(arguments: ["run", "inspect", "map"])
    func aFileThatIsNotWebAssemblySaysSo(command: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notes.txt"
        try "these are notes, not a program\n".write(toFile: path, atomically: true, encoding: .utf8)
        let arguments = command == "map" ? ["map", path, "f"] : [command, path]
        let run = try await futures(arguments)
        #expect(run.exitCode != 0)
        let text = Self.oneSentence(run)
        #expect(text.contains("notes.txt is not a WebAssembly module"), "\(text)")
        #expect(text.contains("give a .wasm file"), "\(text)")
    }

    /// A malformed module after the header: WasmKit's message as text, with where it was found.
    @Test func aTruncatedModuleGivesTheParsersMessageAsText() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cut.wasm"
        try Data([0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0x01, 0x7F]).write(to: URL(fileURLWithPath: path))
        let run = try await futures(["run", path])
        #expect(run.exitCode != 0)
        let text = Self.oneSentence(run)
        #expect(text.contains("cut.wasm is not a valid WebAssembly module"), "\(text)")
    }

    /// A device or a pipe is refused before anything is read (`/dev/zero` was read until memory
    /// ran out), and a missing file says what to give.
    @Test func whatIsNotARegularFileIsRefusedBeforeItIsRead() async throws {
        let device = try await futures(["inspect", "/dev/zero"])
        #expect(device.exitCode != 0)
        #expect(Self.oneSentence(device).contains("/dev/zero is not a regular file"), "\(device.error)")
        let missing = try await futures(["run", "/nonexistent/program.wasm"])
        #expect(missing.exitCode != 0)
        #expect(Self.oneSentence(missing).contains("give the path of a .wasm or .wat file"), "\(missing.error)")
    }

    /// A module reached through a symbolic link is the file it names (it was refused as not a
    /// regular file).
    @Test func aModuleThroughASymbolicLinkLoads() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "(module (func (export \"_start\")))".write(toFile: directory + "/real.wat", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: directory + "/link.wat", withDestinationPath: directory + "/real.wat")
        let run = try await futures(["run", directory + "/link.wat"])
        #expect(run.exitCode == 0, "\(run.error)")
    }

    /// A module file over the module size limit is refused from its size, before it is read (a
    /// 1 GiB file took 2.1 GB of memory to refuse).
    @Test func anOversizedFileIsRefusedFromItsSize() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/huge.wasm"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)  // sparse: no disk used
        try handle.close()
        let run = try await futures(["inspect", path])
        #expect(run.exitCode != 0)
        let text = Self.oneSentence(run)
        #expect(text.contains("over the module size limit"), "\(text)")
    }

    /// A program stopped by the memory limit is told how to raise it.
    @Test func theMemoryLimitErrorNamesTheOption() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/grow.wat"
        try """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (if (i32.eq (memory.grow (i32.const 64)) (i32.const -1)) (then (call 0 (i32.const 3))))))
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await futures(["run", "--memory", "1", path])
        #expect(run.exitCode == 134)
        let text = Self.oneSentence(run)
        #expect(text.contains("memoryLimit"), "\(text)")
        #expect(text.contains("raise it with --memory"), "\(text)")
        // With room, the same program runs.
        #expect(try await futures(["run", "--memory", "8", path]).exitCode == 0)
    }
}
