import Logging

/// Sends a call's captured output where its module's ``WASIOptions/output`` says.
enum GuestOutputRouting {
    /// The `concurrent.futures.guest` logger.
    static let logger = Logger(label: "concurrent.futures.guest")

    /// Delivers one call's output; nothing happens when both streams are empty.
    static func deliver(_ output: (stdout: [UInt8], stderr: [UInt8]), module: GuestModule, function: String, failed: Bool) {
        guard !output.stdout.isEmpty || !output.stderr.isEmpty else { return }
        switch module.wasi.output {
        case .log:
            let metadata: Logger.Metadata = ["module": "\(module.name)", "function": "\(function)"]
            let (stdout, moreStdout) = lines(output.stdout)
            for line in stdout { logger.info("\(line)", metadata: metadata) }
            if moreStdout > 0 { logger.info("(\(moreStdout) more lines of standard output not logged)", metadata: metadata) }
            let (stderr, moreStderr) = lines(output.stderr)
            for line in stderr { logger.warning("\(line)", metadata: metadata) }
            if moreStderr > 0 { logger.warning("(\(moreStderr) more lines of standard error not logged)", metadata: metadata) }
        case .handler(let handler):
            handler(
                GuestOutputRecord(module: module.name, function: function, stdout: output.stdout, stderr: output.stderr, failed: failed))
        case .discard, .inherit:
            break
        }
    }

    /// The most lines logged per stream and call: a guest printing a flood of short lines must
    /// not keep its worker busy logging long after its call ended.
    static let maxLoggedLines = 100

    /// The first ``maxLoggedLines`` lines of `bytes`, and how many more there are.
    static func lines(_ bytes: [UInt8]) -> (lines: [String], more: Int) {
        var lines: [String] = []
        var start = 0
        var more = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            if lines.count < maxLoggedLines {
                lines.append(String(decoding: bytes[start..<index], as: UTF8.self))
            } else {
                more += 1
            }
            start = index + 1
        }
        if start < bytes.count {
            if lines.count < maxLoggedLines { lines.append(String(decoding: bytes[start...], as: UTF8.self)) } else { more += 1 }
        }
        return (lines, more)
    }
}
