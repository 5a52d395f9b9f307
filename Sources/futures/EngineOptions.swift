import ArgumentParser
import ConcurrentFutures

/// Which guest engine a command uses.
enum EngineChoice: String, ExpressibleByArgument, CaseIterable {
    case wasmkit, compiled, auto

    var engine: GuestEngine {
        switch self {
        case .wasmkit: .wasmKit
        case .compiled: .compiled
        case .auto: .auto
        }
    }
}

/// The options of the compiled engine's builds, shared by the commands that build: how long and
/// how much memory a build may take (``CompiledEngine/BuildBudget``).
struct BuildOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The most wall-clock and CPU time one build of a module for the compiled engine may take (default 300).", valueName: "SECONDS"))
    var buildTimeout: Double?

    @Option(help: ArgumentHelp("The most memory each build tool (wasm2c, clang) may map (default 4096).", valueName: "MiB"))
    var buildMemory: Int?

    mutating func validate() throws {
        if let buildTimeout, !(buildTimeout > 0) || buildTimeout > 1e7 {
            throw ValidationError("--build-timeout must be a positive number of seconds")
        }
        if let buildMemory, buildMemory < 64 { throw ValidationError("--build-memory must be at least 64 MiB") }
    }

    /// Sets the process's build budget from the options, and makes a signal or exit end running
    /// builds' tools and remove their directories.
    func apply() {
        var budget = CompiledEngine.budget
        if let buildTimeout {
            budget.wallTime = .nanoseconds(Int64(buildTimeout * 1e9))
            budget.cpuTime = budget.wallTime
        }
        if let buildMemory { budget.memoryBytes = buildMemory << 20 }
        CompiledEngine.budget = budget
        CompiledEngine.installBuildCleanup()
    }
}
