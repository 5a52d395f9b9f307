import ArgumentParser
import ConcurrentFutures

/// `futures inspect`: what a module exports and imports, and whether it can load.
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a module's exports, imports and memories, and whether it can load in an interpreter.")

    @Argument(
        help: "A .wasm or .wat file (or a bundled module: Tasks.wasm, Examples.wasm, faults.wasm, probe.wasm, wordstat.wasm, wordstat-reactor.wasm).")
    var module: String

    func run() async throws {
        let (bytes, name) = try ModuleLoading.bytes(module)
        let report: ModuleReport
        do {
            report = try GuestModule.report(bytes: bytes, name: name)
        } catch {
            throw CommandFailure(error.message)
        }
        var lines = ["\(report.name): \(report.byteCount) bytes, digest \(report.digest)", "", "exports:"]
        lines += report.functions.isEmpty ? ["  (no functions)"] : report.functions.map { "  \($0)" }
        lines += ["", "imports:"]
        lines +=
            report.imports.isEmpty
            ? ["  (none)"]
            : report.imports.map { "  \($0)\($0.isProvided ? "" : "  <- not provided by the host")" }
        lines += ["", "memories:"]
        lines +=
            report.memories.isEmpty
            ? ["  (none)"]
            : report.memories.map { memory in
                let maximum = memory.maximumPages.map { "\($0) pages (\($0 * 64) KiB)" } ?? "none"
                return "  \(memory.isImported ? "imported" : "defined"): initial \(memory.minimumPages) pages "
                    + "(\(memory.minimumPages * 64) KiB), maximum \(maximum)"
            }
        lines += ["", "wasi:"]
        if let kind = report.wasiKind {
            lines.append("  a WASI \(kind.rawValue) (wasi_snapshot_preview1)\(kind == .command ? ": run it with futures run" : "")")
            if !report.wasiNeeds.isEmpty { lines.append("  imports functions for: \(report.wasiNeeds.joined(separator: ", "))") }
            let granted = ["arguments", "clocks", "random", "stdio", "process"]
            let notGranted = report.wasiNeeds.filter { !granted.contains($0) }.map { group in
                switch group {
                case "sockets": "sockets (never)"
                case "fileSystem": "fileSystem (with --dir)"
                default: group
                }
            }
            lines.append(
                "  granted by default: " + granted.joined(separator: ", ")
                    + (notGranted.isEmpty ? "" : "; not by default: " + notGranted.joined(separator: ", ")))
        } else {
            lines.append("  not used")
        }
        lines += [""]
        if let error = report.loadError {
            lines.append("loads in an interpreter: no")
            lines.append("  \(error.message)")
        } else {
            lines.append("loads in an interpreter: yes")
        }
        print(lines.joined(separator: "\n"))
    }
}
