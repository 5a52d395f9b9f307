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
            for line in lines(output.stdout) { logger.info("\(line)", metadata: metadata) }
            for line in lines(output.stderr) { logger.warning("\(line)", metadata: metadata) }
        case .handler(let handler):
            handler(
                GuestOutputRecord(module: module.name, function: function, stdout: output.stdout, stderr: output.stderr, failed: failed))
        case .discard, .inherit:
            break
        }
    }

    private static func lines(_ bytes: [UInt8]) -> [String] {
        guard !bytes.isEmpty else { return [] }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
