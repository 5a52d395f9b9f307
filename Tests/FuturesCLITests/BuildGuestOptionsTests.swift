import Foundation
import Testing

/// `futures build-guest` for C programs as users build them: several files, headers elsewhere,
/// macros, optimization levels, libraries and the stack size, and cf.h's `cf_trap` under WASI.
@Suite("futures build-guest options", .enabled(if: wasiToolchainAvailable))
struct BuildGuestOptionsTests {
    /// The first of `names` that is an executable on `PATH` or next to `swiftc`, or `nil`.
    private static func executable(_ names: [String]) -> String? {
        var directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        if let swiftc = directories.map({ "\($0)/swiftc" }).first(where: FileManager.default.isExecutableFile(atPath:)) {
            directories.append(URL(fileURLWithPath: swiftc).resolvingSymlinksInPath().deletingLastPathComponent().path)
        }
        for name in names {
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }

    /// Runs `path` with `arguments` and expects it to succeed.
    private static func runTool(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(path) \(arguments)")
    }

    /// A WASI command of two C files with its header in another directory, a macro, `-O2`, an
    /// object, an archive found with `-L` and `-l`, libm, and a larger stack: built by the tool,
    /// it prints what the macro, the level and the libraries imply.
    @Test func aMultiFileCommandBuildsWithTheCompilerOptions() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for folder in ["include", "src", "lib"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(folder)", withIntermediateDirectories: true)
        }
        let files = [
            "include/calc.h": """
            #include <stdint.h>
            int64_t scaled(int64_t x);   // util.c
            int64_t bonus(int64_t x);    // libbonus.a
            int64_t offset(void);        // offset.o
            """,
            "src/main.c": """
            #include <math.h>
            #include <stdio.h>
            #include "calc.h"

            int main(void) {
            #if defined(__OPTIMIZE_SIZE__)
                const char *level = "size";
            #elif defined(__OPTIMIZE__)
                const char *level = "speed";
            #else
                const char *level = "none";
            #endif
                char big[96 * 1024];   // more than a 64 KiB stack
                for (size_t i = 0; i < sizeof big; i++) big[i] = (char)i;
                printf("%lld %s %d %s\\n", (long long)(scaled(5) + bonus(5) + offset()), level, (int)sqrt(144.0), GREETING);
                return big[sizeof big - 1] == (char)(sizeof big - 1) ? 0 : 1;
            }
            """,
            "src/util.c": """
            #include "calc.h"
            int64_t scaled(int64_t x) { return x * FACTOR; }
            """,
            "lib/bonus.c": "#include <stdint.h>\nint64_t bonus(int64_t x) { return x + 1000; }\n",
            "lib/offset.c": "#include <stdint.h>\nint64_t offset(void) { return 50000; }\n",
        ]
        for (name, text) in files { try text.write(toFile: "\(directory)/\(name)", atomically: false, encoding: .utf8) }
        let compiler = try #require(Self.executable(["clang-14"]))
        let archiver = try #require(Self.executable(["llvm-ar-14", "llvm-ar"]))
        for name in ["bonus", "offset"] {
            try Self.runTool(compiler, ["--target=wasm32-wasi", "-O2", "-c", "\(directory)/lib/\(name).c", "-o", "\(directory)/lib/\(name).o"])
        }
        try Self.runTool(archiver, ["rcs", "\(directory)/lib/libbonus.a", "\(directory)/lib/bonus.o"])

        let program = "\(directory)/calc.wasm"
        let sources = ["\(directory)/src/main.c", "\(directory)/src/util.c", "\(directory)/lib/offset.o"]
        let common = ["build-guest", "--wasi", "command", "-I", "\(directory)/include", "-D", "GREETING=\"hi\"", "-o", program]
        let libraries = ["-L", "\(directory)/lib", "-l", "bonus", "-lm", "--stack-size", "262144"]
        let built = try await futures(common + ["-D", "FACTOR=7", "-O2"] + libraries + sources)
        #expect(built.exitCode == 0, "\(built.error)")
        let ran = try await futures(["run", program])
        #expect(ran.exitCode == 0, "\(ran.error)")
        #expect(ran.output == "51040 speed 12 hi\n")  // 5 * 7 + (5 + 1000) + 50000

        let small = try await futures(common + ["-DFACTOR", "-Oz"] + libraries + sources)  // -DFACTOR: FACTOR is 1
        #expect(small.exitCode == 0, "\(small.error)")
        #expect(try await futures(["run", program]).output == "51010 size 12 hi\n")
        let plain = try await futures(common + ["-D", "FACTOR=2", "-O", "0"] + libraries + sources)
        #expect(plain.exitCode == 0, "\(plain.error)")
        #expect(try await futures(["run", program]).output == "51015 none 12 hi\n")

        // Each option reaches its tool: without the header directory, the macro or the library,
        // the build fails where that tool says so.
        let noHeader = try await futures(["build-guest", "--wasi", "command", "-D", "FACTOR=7", "-o", program] + sources)
        #expect(noHeader.exitCode == 1 && noHeader.error.contains("calc.h"), "\(noHeader.error)")
        let noMacro = try await futures(common + libraries + sources)
        #expect(noMacro.exitCode == 1 && noMacro.error.contains("FACTOR"), "\(noMacro.error)")
        let noLibrary = try await futures(common + ["-D", "FACTOR=7", "-lm"] + sources)
        #expect(noLibrary.exitCode == 1 && noLibrary.error.contains("bonus"), "\(noLibrary.error)")
        let missingLibrary = try await futures(common + ["-D", "FACTOR=7", "-l", "nosuchlibrary"] + libraries + sources)
        #expect(missingLibrary.exitCode == 1 && missingLibrary.error.contains("nosuchlibrary"), "\(missingLibrary.error)")
        // With a 64 KiB stack, main's frame runs off the bottom of memory (the stack is placed
        // first); the default for WASI programs, 1 MiB, holds it.
        let smallStack = try await futures(
            common + ["-D", "FACTOR=7", "-L", "\(directory)/lib", "-l", "bonus", "--stack-size", "65536"] + sources)
        #expect(smallStack.exitCode == 0, "\(smallStack.error)")
        let overflow = try await futures(["run", program])
        #expect(overflow.exitCode == 134 && overflow.error.contains("memoryOutOfBounds"), "\(overflow.error)")
        let defaultStack = try await futures(common + ["-D", "FACTOR=7", "-L", "\(directory)/lib", "-l", "bonus"] + sources)
        #expect(defaultStack.exitCode == 0, "\(defaultStack.error)")
        #expect(try await futures(["run", program]).exitCode == 0)
        let badLevel = try await futures(common + ["-O", "9"] + sources)
        #expect(badLevel.exitCode == 64 && badLevel.error.contains("-O takes 0, 1, 2, 3, s or z"), "\(badLevel.error)")
    }

    /// cf.h's `cf_trap()` links in a WASI reactor built by the tool, and a call that reaches it
    /// fails with the `unreachable` kind while the others succeed.
    @Test func cfTrapLinksInAWASIGuestAndTraps() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        #define CF_IMPLEMENTATION
        #include "cf.h"

        CF_EXPORT("check")
        int64_t check(int64_t x) {
            if (x < 0) cf_trap();
            return x * 2;
        }
        """.write(toFile: "\(directory)/check.c", atomically: false, encoding: .utf8)
        let built = try await futures(["build-guest", "--wasi", "reactor", "\(directory)/check.c", "-o", "\(directory)/check.wasm"])
        #expect(built.exitCode == 0, "\(built.error)")
        let mapped = try await futures(["map", "--quiet", "--workers", "1", "\(directory)/check.wasm", "check"], input: "21\n-1\n")
        #expect(mapped.exitCode == 1)
        #expect(mapped.allOutputLines == ["42", #"{"line":2,"error":"unreachable in check: unreachable"}"#], "\(mapped.output)")
    }
}
