import ArgumentParser

/// The `futures` command: `bench` (the article's benchmarks), `map` (a guest function over input
/// lines), `inspect` (a module's exports and imports) and `build-guest` (Swift or C to a module).
struct FuturesCommand: AsyncParsableCommand {
    /// The package's version, which `futures --version` prints.
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "futures",
        abstract: "Python's concurrent.futures and PEP 734 interpreters, in Swift.",
        version: version,
        subcommands: [BenchCommand.self, MapCommand.self, RunCommand.self, InspectCommand.self, BuildGuestCommand.self])
}
