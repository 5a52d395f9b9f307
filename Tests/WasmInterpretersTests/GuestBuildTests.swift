import BundledGuests
import Foundation
import GuestBuilder
import Testing

@testable import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// The repository's root, found from this file's path.
let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

func readText(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        bytes += buffer[0..<count]
        if count < buffer.count { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A module's top-level sections, in order.
func sections(_ bytes: [UInt8]) -> [Section] {
    var reader = ByteReader(bytes, offset: 8)
    var result: [Section] = []
    while !reader.isAtEnd, let id = try? reader.readByte(), let size = try? reader.readLength(),
        let payload = try? reader.read(count: size)
    {
        result.append(Section(id: id, payload: Array(payload)))
    }
    return result
}

struct Section: Equatable {
    let id: UInt8
    let payload: [UInt8]
}

@Suite("Building guests")
struct GuestBuildTests {
    /// The benchmark guest is Swift source in the repository: building it with the documented
    /// command gives the module the tool bundles, section for section. (Only the data section
    /// differs between builds: Embedded Swift stores a fresh 16-byte module hash there.)
    @Test func theBenchmarkGuestRebuildsToTheBundledBytes() async throws {
        let output = "/tmp/futures-test-\(getpid())-Tasks.wasm"
        defer { unlink(output) }
        var options = GuestBuilder.Options()
        options.includeRuntime = false
        options.stackSize = 16_384
        try await GuestBuilder().build(sources: ["\(repositoryRoot)/Guests/Tasks.swift"], output: output, options: options)
        let built = try GuestModule(contentsOf: output).wasmBytes
        let bundled = try #require(BundledGuests.bytes(named: "Tasks.wasm"))
        #expect(sections(built).filter { $0.id != 11 } == sections(bundled).filter { $0.id != 11 })
        #expect(sections(built).map(\.id) == sections(bundled).map(\.id))
    }

    @Test func aSwiftGuestWithTheRuntimeBuildsAndRuns() async throws {
        let source = "/tmp/futures-test-\(getpid())-Greeter.swift"
        let output = "/tmp/futures-test-\(getpid())-Greeter.wasm"
        defer {
            unlink(source)
            unlink(output)
        }
        let text = """
            @_expose(wasm, "shout") @_cdecl("shout")
            public func shout(_ pointer: UnsafePointer<UInt8>?, _ count: Int32) {
                let text = String(guestBytes: pointer, count: count)
                Guest.returnString(text + "!")
            }
            """
        let file = fopen(source, "w")!
        fputs(text, file)
        fclose(file)
        try await GuestBuilder().build(sources: [source], output: output)
        let module = try GuestModule(contentsOf: output)
        let interpreter = Interpreters.create()
        defer { try? interpreter.close() }
        try interpreter.exec(module)
        #expect(try interpreter.call("shout", ["hey"]) == "hey!")
    }

    @Test func buildErrorsAreTyped() async throws {
        await #expect(throws: GuestBuildError.self) {
            try await GuestBuilder().build(sources: ["/nonexistent.swift"], output: "/tmp/never.wasm")
        }
        await #expect(throws: GuestBuildError.self) {
            try await GuestBuilder().build(
                sources: ["\(repositoryRoot)/Guests/Tasks.swift", "\(repositoryRoot)/Guests/c/faults.c"], output: "/tmp/never.wasm")
        }
        var optimized = GuestBuilder.Options()
        optimized.optimization = "9"
        await #expect(throws: GuestBuildError(.badInput, "the optimization level must be one of 0, 1, 2, 3, s, z, got '9'")) {
            try await GuestBuilder().build(sources: ["\(repositoryRoot)/Guests/c/faults.c"], output: "/tmp/never.wasm", options: optimized)
        }
        var defined = GuestBuilder.Options()
        defined.defines = ["N=1"]
        await #expect(throws: GuestBuildError.self) {
            try await GuestBuilder().build(sources: ["\(repositoryRoot)/Guests/Tasks.swift"], output: "/tmp/never.wasm", options: defined)
        }
    }

    /// `cf_trap()` (and the other helpers cf.h promises from rt.c) links in a WASI C guest, which
    /// links wasi-libc instead of rt.c, and fails the call with `GuestError.unreachable`.
    @Test(.enabled(if: wasiBuildTestsRun)) func cfTrapLinksInAWASIGuestAndTraps() async throws {
        let directory = temporaryDirectory("cf-trap")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        #define CF_IMPLEMENTATION
        #include "cf.h"

        CF_EXPORT("check")
        int64_t check(int64_t x) {
            if (x < 0) cf_trap();
            cf_flush_stdout();
            return x + cf_memory_pages() - cf_memory_grow(0);
        }
        """.write(toFile: "\(directory)/trap.c", atomically: false, encoding: .utf8)
        var options = GuestBuilder.Options()
        options.wasi = .reactor
        try await GuestBuilder().build(sources: ["\(directory)/trap.c"], output: "\(directory)/trap.wasm", options: options)
        let module = try GuestModule(contentsOf: "\(directory)/trap.wasm")
        #expect(module.wasiKind == .reactor)
        for engine in WASIGuestTests.engines {
            let interpreter = Interpreters.create(engine: engine)
            defer { try? interpreter.close() }
            try interpreter.exec(module)
            #expect(try interpreter.call("check", [41]) == 41)
            expectFailure(.unreachable) { _ = try interpreter.call("check", [-1]) }
        }
    }

    /// Include directories, macros, the optimization level, objects, library directories and
    /// libraries, and the stack size reach clang and wasm-ld, for WASI and freestanding C: a
    /// program of two C files, a header in another directory, an object and an archive.
    @Test(.enabled(if: wasiBuildTestsRun), arguments: [GuestBuilder.WASITarget.reactor, nil])
    func theCOptionsReachTheCompilerAndTheLinker(wasi: GuestBuilder.WASITarget?) async throws {
        let builder = try GuestBuilder()
        let directory = temporaryDirectory("c-options")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for folder in ["include", "src", "lib"] { mkdir("\(directory)/\(folder)", 0o700) }
        let files = [
            "include/shapes.h": """
            #include <stdint.h>
            int64_t scaled(int64_t x);   // util.c
            int64_t bonus(int64_t x);    // libbonus.a
            int64_t offset(void);        // offset.o
            """,
            "src/main.c": """
            #define CF_IMPLEMENTATION
            #include "cf.h"
            #include "shapes.h"

            CF_EXPORT("compute") int64_t compute(int64_t x) { return scaled(x) + bonus(x) + offset(); }
            // 0 at -O0, 1 at -O1 to -O3, 2 at -Os and -Oz.
            CF_EXPORT("level") int64_t level(void) {
            #if defined(__OPTIMIZE_SIZE__)
                return 2;
            #elif defined(__OPTIMIZE__)
                return 1;
            #else
                return 0;
            #endif
            }
            CF_EXPORT("frame") __attribute__((noinline)) int64_t frame(void) {
                volatile int32_t local = 0;
                return (int64_t)(uintptr_t)&local;
            }
            """,
            "src/util.c": """
            #include "shapes.h"
            int64_t scaled(int64_t x) { return x * FACTOR; }
            """,
            "lib/bonus.c": "#include <stdint.h>\nint64_t bonus(int64_t x) { return x + 1000; }\n",
            "lib/offset.c": "#include <stdint.h>\nint64_t offset(void) { return 50000; }\n",
        ]
        for (name, text) in files { try text.write(toFile: "\(directory)/\(name)", atomically: false, encoding: .utf8) }
        // The object and the archive, from the compiler that builds the guest.
        let compiler = try #require(wasi == nil ? "\(builder.toolchainBin)/clang" : GuestBuilder.wasiCompiler())
        let target = wasi == nil ? ["--target=wasm32", "-ffreestanding"] : ["--target=wasm32-wasi"]
        func runTool(_ path: String, _ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(path) \(arguments)")
        }
        for name in ["bonus", "offset"] {
            try runTool(compiler, target + ["-O2", "-c", "\(directory)/lib/\(name).c", "-o", "\(directory)/lib/\(name).o"])
        }
        try runTool("\(builder.toolchainBin)/llvm-ar", ["rcs", "\(directory)/lib/libbonus.a", "\(directory)/lib/bonus.o"])

        func build(
            factor: Int, level: String?, stackSize: Int = 64 << 10
        ) async throws -> (compute: ShareableValue, level: ShareableValue, frame: Int64) {
            var options = GuestBuilder.Options()
            options.wasi = wasi
            options.includeDirectories = ["\(directory)/include"]
            options.defines = ["FACTOR=\(factor)"]
            options.optimization = level
            options.libraryDirectories = ["\(directory)/lib"]
            options.libraries = ["bonus"]
            options.stackSize = stackSize
            let output = "\(directory)/program-\(factor)-\(level ?? "default")-\(stackSize).wasm"
            try await builder.build(
                sources: ["\(directory)/src/main.c", "\(directory)/src/util.c", "\(directory)/lib/offset.o"], output: output, options: options)
            let interpreter = Interpreters.create()
            defer { try? interpreter.close() }
            try interpreter.exec(try GuestModule(contentsOf: output))
            let frame = try interpreter.call("frame")
            guard case .int(let address) = frame else {
                Issue.record("frame returned \(frame)")
                return (.none, .none, 0)
            }
            return (try interpreter.call("compute", [5]), try interpreter.call("level"), address)
        }
        let optimized = try await build(factor: 7, level: "2")
        #expect(optimized.compute == 51_040)  // 5 * 7 + (5 + 1000) + 50000
        #expect(optimized.level == 1)
        let unoptimized = try await build(factor: 3, level: "0")
        #expect(unoptimized.compute == 51_020)
        #expect(unoptimized.level == 0)
        #expect(try await build(factor: 1, level: "z").level == 2)
        #expect(try await build(factor: 1, level: nil).level == 1)  // -O2 unless given
        // The stack is 1 MiB instead of 64 KiB: the same frame sits that much higher.
        let bigStack = try await build(factor: 7, level: "2", stackSize: 1 << 20)
        #expect(bigStack.frame - optimized.frame == (1 << 20) - (64 << 10))
    }
}

@Suite("Documentation")
struct DocumentationTests {
    /// docs/reference.md lists every public type of the package, once.
    @Test func theReferenceListsEveryPublicType() throws {
        let reference = try #require(readText("\(repositoryRoot)/docs/reference.md"))
        var declared: [String] = []
        for module in ["Futures", "FuturesLifecycle", "WasmInterpreters", "ProcessPool", "MPIPool", "GuestBuilder", "BundledGuests"] {
            let directory = "\(repositoryRoot)/Sources/\(module)"
            guard let enumerator = FileManager.default.enumerator(atPath: directory) else { continue }
            for case let path as String in enumerator where path.hasSuffix(".swift") && !path.hasPrefix("Runtime/") {
                let text = try #require(readText("\(directory)/\(path)"))
                var enclosing: [(indent: Int, name: String)] = []
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                    let indent = line.prefix { $0 == " " }.count
                    let words = line.split(separator: " ")
                    enclosing.removeAll { $0.indent >= indent && !line.trimmingCharacters(in: .whitespaces).isEmpty }
                    guard let keyword = words.firstIndex(where: { ["class", "struct", "enum", "protocol", "typealias", "extension"].contains($0) }),
                        keyword + 1 < words.count
                    else { continue }
                    let name = String(words[keyword + 1].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                    if words.prefix(keyword).contains("public"), words[keyword] != "extension" {
                        declared.append((enclosing.last.map { "\($0.name)." } ?? "") + name)
                    }
                    enclosing.append((indent, name))
                }
            }
        }
        #expect(declared.count > 50)
        for name in declared {
            let occurrences = reference.components(separatedBy: "| `\(name)` |").count - 1
            #expect(occurrences == 1, "\(name) appears \(occurrences) times in docs/reference.md")
        }
    }
}
