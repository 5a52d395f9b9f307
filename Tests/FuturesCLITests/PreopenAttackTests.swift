import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a guest can do to a preopened directory, and what a directory can do to a guest's call.
@Suite("WASI preopens under attack")
struct PreopenAttackTests {
    /// A command that makes three symbolic links in its first preopen and exits with 1 when the
    /// one to `/etc/passwd` was refused with `EPERM` (63), plus 2 when the one to `../../x` was,
    /// plus 4 when the one to `a.txt` was made.
    static let linker = """
        (module
          (import "wasi_snapshot_preview1" "path_symlink" (func $link (param i32 i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "/etc/passwd")
          (data (i32.const 200) "escape")
          (data (i32.const 300) "../../x")
          (data (i32.const 400) "climb")
          (data (i32.const 500) "a.txt")
          (data (i32.const 600) "inside")
          (func (export "_start")
            (call $exit
              (i32.add
                (i32.add
                  (i32.eq (call $link (i32.const 100) (i32.const 11) (i32.const 3) (i32.const 200) (i32.const 6)) (i32.const 63))
                  (i32.mul (i32.eq (call $link (i32.const 300) (i32.const 7) (i32.const 3) (i32.const 400) (i32.const 5)) (i32.const 63))
                    (i32.const 2)))
                (i32.mul (i32.eqz (call $link (i32.const 500) (i32.const 5) (i32.const 3) (i32.const 600) (i32.const 6))) (i32.const 4))))))
        """

    /// A symbolic link pointing outside the directory is refused (`EPERM`, 63): the guest could
    /// leave one for the host's programs to follow later. One inside is made.
    @Test func symbolicLinksOutOfTheDirectoryAreRefused() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let module = directory + "/linker.wat"
        try Self.linker.write(toFile: module, atomically: true, encoding: .utf8)
        let run = try await futures(["run", "--writable-dir", "\(directory)/data:/d", module])
        #expect(run.exitCode == 7, "\(run.error)")
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory + "/data")
        #expect(entries == ["inside"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/data/inside") == "a.txt")
    }

    /// A FIFO swapped in, again and again, between the host's check of the path and its open:
    /// `futures run` ends at its time limit (it waited for a writer for ever, past `--timeout`).
    /// WasmKit's bridge opens without `O_NONBLOCK`, so the open itself may block: at the limit
    /// the host wakes it (FIFOPreopenTests checks the same in a pool).
    @Test func aFIFOSwappedInCannotHoldTheCall() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try PreopenGuests.opener.write(toFile: directory + "/opener.wat", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: futuresPath)
        process.arguments = ["run", "--timeout", "5", "--dir", "\(data):/d", directory + "/opener.wat"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Swap a FIFO and a regular file under the name the guest opens until it is done.
        var swaps = 0
        while process.isRunning, swaps < 200_000 {
            mkfifo(data + "/fifo", 0o600)
            rename(data + "/fifo", data + "/t")
            _ = FileManager.default.createFile(atPath: data + "/file", contents: nil)
            rename(data + "/file", data + "/t")
            swaps += 1
        }
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        let hung = process.isRunning
        if hung { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(!hung, "futures run went on past its time limit")
        // Every open returned (0), or the command ended at its limit (134).
        #expect([0, 134].contains(process.terminationStatus), "status \(process.terminationStatus)")
    }
}
