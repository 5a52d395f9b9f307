import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM (what a service manager sends to stop a program) drains `futures map` as a first
/// Ctrl-C does: the queued inputs are cancelled, the running calls end, the map reports.
@Suite("futures map and SIGTERM")
struct TerminationTests {
    /// Synchronous, as the Ctrl-C test is: the signal must come while the map runs.
    @Test func sigtermDrainsTheMap() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("futures-term-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let files = ["in", "out", "err"].map { directory.appendingPathComponent($0).path }
        try Array(repeating: "60000000", count: 200).joined(separator: "\n").write(toFile: files[0], atomically: false, encoding: .utf8)
        let tool = try spawnInOwnProcessGroup(
            [futuresPath, "map", "Tasks.wasm", "cpu_bound", "--executor", "process", "--workers", "2", "--timeout", "1"],
            standardInput: files[0], standardOutput: files[1], standardError: files[2])
        let deadline = ContinuousClock.now + .seconds(120)
        while workers(of: tool).count < 2, ContinuousClock.now < deadline { usleep(20_000) }
        #expect(workers(of: tool).count == 2, "the map started its workers")
        // To the tool alone, as `systemctl stop` or `kill` sends it: its workers are not signalled.
        kill(tool, SIGTERM)
        var status: Int32 = 0
        while waitpid(tool, &status, 0) < 0, errno == EINTR {}
        let errors = try String(contentsOfFile: files[2], encoding: .utf8)
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 130, "exit status 130, got wait status \(status)")
        #expect(errors.contains("interrupted:"))
        #expect(errors.split(separator: "\n").count < 100, "the queued inputs were cancelled")
        usleep(200_000)
        #expect(workers(of: tool).isEmpty, "no worker process is left")
    }
}
