import ArgumentParser
import ConcurrentFutures

/// What a WASI program may reach, as `futures run` and `futures map` grant it: environment
/// variables, directories, and capabilities beyond the default ones.
struct WASIGrantOptions: ParsableArguments {
    @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable in the program's environment.", valueName: "NAME=VALUE"))
    var environment: [String] = []

    @Option(
        name: .customLong("dir"),
        help: ArgumentHelp("Let the program read a directory, seen at GUEST (default: the same path).", valueName: "HOST[:GUEST]"))
    var directories: [String] = []

    @Option(name: .customLong("writable-dir"), help: ArgumentHelp("Let the program read and change a directory.", valueName: "HOST[:GUEST]"))
    var writableDirectories: [String] = []

    @Option(
        name: .customLong("allow"),
        help: ArgumentHelp(
            "Grant a capability beyond clocks, random bytes, the standard streams and exit: poll (poll_oneoff: sleep, wait).",
            valueName: "CAPABILITY"))
    var allowed: [Capability] = []

    /// A capability `--allow` grants.
    enum Capability: String, ExpressibleByArgument, CaseIterable {
        case poll
    }

    mutating func validate() throws {
        for entry in environment where !entry.contains("=") {
            throw ValidationError("--env takes NAME=VALUE, got '\(entry)'")
        }
    }

    /// `options` with these grants added.
    func apply(to options: inout WASIOptions) {
        for entry in environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            options.environment[String(parts[0])] = String(parts[1])
        }
        options.preopens += directories.map { Self.preopen($0, writable: false) } + writableDirectories.map { Self.preopen($0, writable: true) }
        for capability in allowed {
            switch capability {
            case .poll: options.capabilities.insert(.poll)
            }
        }
    }

    /// `HOST[:GUEST]` as a preopen; the guest path defaults to the host path.
    private static func preopen(_ text: String, writable: Bool) -> WASIOptions.Preopen {
        let parts = text.split(separator: ":", maxSplits: 1)
        let host = String(parts.first ?? "")
        let guest = parts.count > 1 ? String(parts[1]) : host
        return WASIOptions.Preopen(hostPath: host, guestPath: guest.hasPrefix("/") || guest == "." ? guest : "/" + guest, isWritable: writable)
    }
}
