import ArgumentParser
import ConcurrentFutures

// Parse and run the command with ArgumentParser's own error reporting.
do {
    var command = try FuturesCommand.parseAsRoot()
    if var subcommand = command as? any FuturesSubcommand {
        try await subcommand.execute()
    } else {
        try command.run()
    }
} catch {
    FuturesCommand.exit(withError: error)
}
