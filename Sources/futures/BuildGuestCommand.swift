import ArgumentParser
import GuestBuilder

/// `futures build-guest`: compiles Embedded Swift or C sources into a guest module.
struct BuildGuestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-guest",
        abstract: "Compile Embedded Swift (or C) sources into a WebAssembly guest module.",
        discussion: """
            Swift sources are compiled as one Embedded Swift module for wasm32 and linked with the \
            guest runtime (allocator, cf_alloc/cf_free, and the helpers of the guest ABI). Export \
            functions with @_expose(wasm, "name") @_cdecl("name"). See docs/guests.md.
            """)

    @Argument(help: "The source files: all .swift or all .c.")
    var sources: [String]

    @Option(name: .shortAndLong, help: "The module to write.")
    var output: String

    @Option(help: "The guest's stack size in bytes.")
    var stackSize = 64 << 10

    @Flag(help: "Do not link the guest runtime (for guests that only use numbers).")
    var noRuntime = false

    @Flag(help: "Strip function names (smaller modules, anonymous traps).")
    var stripNames = false

    func run() async throws {
        var options = GuestBuilder.Options()
        options.stackSize = stackSize
        options.includeRuntime = !noRuntime
        options.keepNames = !stripNames
        do {
            try await GuestBuilder().build(sources: sources, output: output, options: options)
        } catch {
            throw CommandFailure(error.description)
        }
    }
}

/// A failure reported to the user as one line on standard error, with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
