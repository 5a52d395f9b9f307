import ArgumentParser

/// The `futures` command: `bench` (the article's benchmarks), `map` (a guest function over input
/// lines), `inspect` (a module's exports and imports) and `build-guest` (Swift or C to a module).
struct FuturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "futures",
        abstract: "Python's concurrent.futures and PEP 734 interpreters, in Swift.",
        subcommands: [BenchCommand.self, MapCommand.self, InspectCommand.self, BuildGuestCommand.self])
}

/// A subcommand, run by `main.swift` (which also enters process-worker mode first).
protocol FuturesSubcommand: ParsableCommand {
    mutating func execute() async throws
}
