// A plugin host: two plugins (one in C, one in Embedded Swift, Guests/plugin/) call functions
// this program gives them, `env.log(level, text)` and `env.kv_get(key)`, on every executor and
// both engines (docs/guests.md, "A worked plugin"):
//
//     $ swift run Plugins
//     c thread: Hi, Ada!
//     c interpreter wasmkit: Hi, Ada!
//     ...
//     mpi: not under mpiexec (mpiexec -n 3 .build/debug/Plugins)
//
// The plugins' log lines go to standard error.

import BundledGuests
import ConcurrentFutures

#if canImport(Glibc)
import Glibc
#endif

/// The host API plugins import: what a server would give its customers' code.
enum PluginAPI {
    /// Settings the plugins may read.
    static let store = ["greeting": "Hi", "language": "Swift"]

    static let log = HostFunction(module: "env", name: "log", parameters: [.i32, .i32, .i32]) { call in
        let levels = ["debug", "info", "warning"]
        let level = call.arguments[0].int32.flatMap { levels.indices.contains(Int($0)) ? levels[Int($0)] : nil } ?? "info"
        let line = "[plugin \(level), interpreter \(call.interpreterID)] \(try call.string(1))\n"
        _ = line.withCString { write(2, $0, strlen($0)) }
        return []
    }

    static let kvGet = HostFunction(module: "env", name: "kv_get", parameters: [.i32, .i32], results: [.i64]) { call in
        guard let value = store[try call.string(0)] else { return [.i64(0)] }
        return [try call.returning(string: value)]
    }

    static let functions = [log, kvGet]
}

// First in main: a worker process or MPI worker rank serves here, with the same host API.
ProcessWorker.runIfRequested(hostFunctions: PluginAPI.functions)
MPIWorker.runIfRequested(hostFunctions: PluginAPI.functions)

let linker = Linker(PluginAPI.functions)
let plugins = try [("c", "plugin-c.wasm"), ("swift", "plugin-swift.wasm")].map { language, file in
    (language, try GuestModule(bytes: BundledGuests.bytes(named: file)!, name: file, linker: linker))
}
let engines: [GuestEngine] = CompiledEngine.canCompile ? [.wasmKit, .compiled] : [.wasmKit]

for (language, plugin) in plugins {
    let greet = try plugin.function("greet", returning: String.self)
    let threads = try ThreadPoolExecutor(maxWorkers: 2).run { pool in try pool.submit(greet, "Ada").result() }
    print("\(language) thread: \(threads)")
    for engine in engines {
        let interpreters = try InterpreterPoolExecutor(maxWorkers: 2, engine: engine).run { pool in
            try pool.submit(greet, "Ada").result()
        }
        print("\(language) interpreter \(engine): \(interpreters)")
        let processes = try ProcessPoolExecutor(maxWorkers: 1, engine: engine).run { pool in try pool.submit(greet, "Ada").result() }
        print("\(language) process \(engine): \(processes)")
        if MPIWorker.isLaunched {
            let ranks = try MPIPoolExecutor(engine: engine).run { pool in try pool.submit(greet, "Ada").result() }
            print("\(language) mpi \(engine): \(ranks)")
        }
    }
}
if !CompiledEngine.canCompile { print("compiled: needs wasm2c and clang (apt-get install wabt)") }
if !MPIWorker.isLaunched { print("mpi: not under mpiexec (mpiexec -n 3 .build/debug/Plugins)") }
