import Foundation
import Testing

/// `futures map --output`: what a WASI guest prints reaches its line whole, whatever the bytes.
@Suite("futures map --output")
struct MapOutputTests {
    /// A WASI reactor that prints `n` NUL bytes (`emit`), or bytes that are not UTF-8 (`bad`).
    static let printer = """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 40)
          (func (export "_initialize"))
          (func $write (param $length i32)
            (i32.store (i32.const 0) (i32.const 1024))
            (i32.store (i32.const 4) (local.get $length))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
          (func (export "emit") (param $n i32) (result i32)
            (call $write (local.get $n))
            (local.get $n))
          (data (i32.const 600000) "hello from the guest\\n")
          (func (export "greet") (param i32) (result i32)
            (i32.store (i32.const 0) (i32.const 600000))
            (i32.store (i32.const 4) (i32.const 21))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (i32.const 21))
          (func (export "bad") (param i32) (result i32)
            (i32.store8 (i32.const 1024) (i32.const 0xFF))
            (i32.store8 (i32.const 1025) (i32.const 0x41))
            (call $write (i32.const 2))
            (i32.const 2)))
        """

    /// Output full of control bytes is escaped byte by byte (a quadratic-looking escape took 16 s
    /// for 4 MB of NUL bytes; it is one pass now), and comes back intact.
    @Test func controlBytesAreEscapedAndKept() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/printer.wat"
        try Self.printer.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await futures(["map", "--quiet", "--output", "--workers", "1", path, "emit"], input: "500000\n")
        #expect(run.exitCode == 0, "\(run.error)")
        let line = try #require(run.outputLines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["value"] as? Int == 500_000)
        let stdout = try #require(object["stdout"] as? String)
        #expect(stdout.utf8.count == 500_000)
        #expect(stdout.utf8.allSatisfy { $0 == 0 })
    }

    /// Output that is not UTF-8 is delivered as bytes, not replaced (it became U+FFFD silently).
    @Test func outputThatIsNotTextComesAsBytes() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/printer.wat"
        try Self.printer.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await futures(["map", "--quiet", "--output", path, "bad"], input: "0\n")
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.outputLines == [#"{"value":2,"stdout":{"bytes":"/0E="},"stderr":""}"#])
    }

    /// Without `--output`, what a guest prints goes to standard error as it printed it (it became
    /// one full log line, with a timestamp and labels, per printed line).
    @Test(arguments: ["interpreter", "process"])
    func withoutOutputWhatAGuestPrintsGoesToStandardErrorAsPrinted(executor: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/printer.wat"
        try Self.printer.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try await futures(["map", "--quiet", "--executor", executor, path, "greet"], input: "0\n0\n")
        #expect(run.exitCode == 0, "\(run.error)")
        #expect(run.outputLines == ["21", "21"])
        #expect(run.error == "hello from the guest\nhello from the guest\n")
    }
}
