import ArgumentParser

/// The `futures` command: benchmarks, mapping guest functions over inputs, inspecting modules
/// and building guests.
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
