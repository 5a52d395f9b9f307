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
            try await GuestBuilder().build(sources: ["\(repositoryRoot)/Guests/Tasks.swift", "\(repositoryRoot)/Guests/c/faults.c"], output: "/tmp/never.wasm")
        }
    }
}

@Suite("Documentation")
struct DocumentationTests {
    /// docs/reference.md lists every public type of the package, once.
    @Test func theReferenceListsEveryPublicType() throws {
        let reference = try #require(readText("\(repositoryRoot)/docs/reference.md"))
        var declared: [String] = []
        for module in ["Futures", "WasmInterpreters", "ProcessPool", "MPIPool", "GuestBuilder", "BundledGuests"] {
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
