import Foundation
import Testing
import WasmInterpreters

/// What the examples say they print is what they print: their modules are loaded here as the
/// examples load them, and the output their comments and Examples/README.md show is checked.
@Suite("Examples' documented output")
struct ExampleOutputTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Examples")

    /// MissingImports names every import the host does not provide, and only those (the example
    /// showed `wasi_snapshot_preview1.fd_write` as missing after WASI came).
    @Test func missingImportsShowsWhatIsMissing() throws {
        let source = try String(contentsOf: Self.examples.appendingPathComponent("MissingImports/main.swift"), encoding: .utf8)
        let readme = try String(contentsOf: Self.examples.appendingPathComponent("README.md"), encoding: .utf8)
        // The module text between the example's triple quotes.
        let parts = source.components(separatedBy: "\"\"\"")
        try #require(parts.count >= 3)
        let wat = parts[1]
        let error = #expect(throws: ModuleError.self) { try GuestModule(wat: wat, name: "numpy.wasm") }
        let missing = try #require(error).missingImports
        #expect(error?.code == .missingImports)
        let printed = "missing: \(missing)"
        #expect(source.contains("//     " + printed), "the example's comment does not show \(printed)")
        #expect(readme.contains(printed), "Examples/README.md does not show \(printed)")
        #expect(source.contains("//     " + (error?.message ?? "?")), "the example's comment does not show \(error?.message ?? "")")
    }
}
