import Foundation
import Subprocess
import Testing

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// The worked plugin of docs/guests.md (Examples/Plugins): its C and Embedded Swift plugins call
/// the host's `env.log` and `env.kv_get` on every executor and both engines, and print what the
/// example's comment shows.
@Suite("Plugin example")
struct PluginExampleTests {
    /// The example, built next to the test bundle.
    static let path = URL(fileURLWithPath: futuresPath).deletingLastPathComponent().appendingPathComponent("Plugins").path

    /// The lines it prints for `executors`, in its order.
    static func expected(executors: [String]) -> [String] {
        let engines = compiledEngineAvailable ? ["wasmkit", "compiled"] : ["wasmkit"]
        var lines: [String] = []
        for language in ["c", "swift"] {
            lines.append("\(language) thread: Hi, Ada!")
            for engine in engines {
                for executor in executors { lines.append("\(language) \(executor) \(engine): Hi, Ada!") }
            }
        }
        return lines
    }

    @Test func pluginsRunOnTheThreadInterpreterAndProcessPools() async throws {
        let result = try await run(
            .path(FilePath(Self.path)), arguments: [], output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let output = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(result.terminationStatus == .exited(0), "\result.standardError")
        #expect(Array(output.prefix(output.count - 1)) == Self.expected(executors: ["interpreter", "process"]))
        #expect(output.last == "mpi: not under mpiexec (mpiexec -n 3 .build/debug/Plugins)")
        // Each call logged through the host's env.log, the process pool's from its workers.
        let logged = result.standardError.split(separator: "\n").filter { $0.hasPrefix("[plugin info, interpreter ") }
        #expect(logged.count == Self.expected(executors: ["interpreter", "process"]).count)
    }

    /// Under `mpiexec -n 3`, the worker ranks register the same host functions and serve the
    /// plugins too. Runs where MPICH is installed (CI installs it).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpiexec")))
    func pluginsRunOnTheMPIPool() async throws {
        // Under ThreadSanitizer, UCX's memory hooks crash a sanitized process as MPI starts.
        let sanitizerOptions = ProcessInfo.processInfo.environment["TSAN_OPTIONS"] != nil ? ["-genv", "UCX_MEM_EVENTS", "no"] : []
        let result = try await run(
            .path("/usr/bin/timeout"), arguments: Arguments(["300", "mpiexec"] + sanitizerOptions + ["-n", "3", Self.path]),
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let output = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(result.terminationStatus == .exited(0), "\result.standardError")
        #expect(output == Self.expected(executors: ["interpreter", "process", "mpi"]))
    }
}
