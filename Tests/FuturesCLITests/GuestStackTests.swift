import Foundation
import Testing

/// A WASI program that overflows its stack traps, instead of overwriting its own data: the stack
/// `build-guest` gives is placed first in linear memory (below it there is no memory), and WASI
/// programs get 1 MiB by default (lz4 -d needed more than wasm-ld's 64 KiB).
@Suite("Guest stacks", .enabled(if: wasiToolchainAvailable))
struct GuestStackTests {
    /// Recursion whose frames live in linear memory, beside 256 KiB of static data that the
    /// program checks after: `deep N` uses about N KiB of stack.
    static let program = """
        #include <stdio.h>
        #include <stdlib.h>
        static char table[256 * 1024] = {1};
        char *volatile seen;
        __attribute__((noinline)) static int deep(int n) {
            char frame[1024];
            frame[0] = (char)n;
            seen = frame;
            return n == 0 ? frame[0] : deep(n - 1) + frame[0];
        }
        int main(int argc, char **argv) {
            int depth = argc > 1 ? atoi(argv[1]) : 10;
            for (size_t i = 0; i < sizeof table; i++) table[i] = (char)(i % 7);
            int result = deep(depth);
            for (size_t i = 0; i < sizeof table; i++) {
                if (table[i] != (char)(i % 7)) {
                    printf("corrupted at %zu\\n", i);
                    return 3;
                }
            }
            printf("ok %d\\n", result);
            return 0;
        }
        """

    /// An overflow of a 64 KiB stack traps (it went unnoticed: the stack sat above the data and
    /// ran into it, and the program read back corrupted data with exit status 0 from the host's
    /// point of view); the default WASI stack holds the same depth.
    @Test func anOverflowTrapsAndTheDefaultStackHoldsWhatLz4Needs() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.program.write(toFile: "\(directory)/deep.c", atomically: true, encoding: .utf8)
        let small = "\(directory)/small.wasm"
        let build = try await futures(["build-guest", "--wasi", "command", "--stack-size", "65536", "\(directory)/deep.c", "-o", small])
        #expect(build.exitCode == 0, "\(build.error)")
        #expect(try await futures(["run", small, "10"]).output == "ok 55\n")
        let overflow = try await futures(["run", small, "200"])
        #expect(overflow.exitCode == 134, "\(overflow.output) \(overflow.error)")
        #expect(overflow.error.contains("memoryOutOfBounds"), "\(overflow.error)")
        #expect(!overflow.output.contains("corrupted"))
        let roomy = "\(directory)/default.wasm"
        #expect(try await futures(["build-guest", "--wasi", "command", "\(directory)/deep.c", "-o", roomy]).exitCode == 0)
        let fits = try await futures(["run", roomy, "200"])
        #expect(fits.exitCode == 0 && fits.output.hasPrefix("ok "), "\(fits.output) \(fits.error)")
    }
}
