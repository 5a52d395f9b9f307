import ArgumentParser
import ConcurrentFutures
import CoreMetrics
import Foundation

/// `futures bench`: the article's benchmarks for every executor and guest kind.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the article's benchmarks (cpu, startup, transfer, memory) on every executor.")

    @Option(help: "Timed runs per benchmark; the table reports their median, min and max.")
    var runs = 5

    @Option(help: "Workers per executor (the article uses 4).")
    var workers = 4

    @Option(help: "Tasks in the cpu benchmark (the article uses 8).")
    var tasks = 8

    @Option(help: "Loop iterations per cpu task (the article uses 5,000,000).")
    var iterations = 5_000_000

    @Option(help: "Items mapped in the transfer benchmark (the article uses 10,000).")
    var items = 10_000

    @Flag(help: "Print one JSON array instead of a table.")
    var json = false

    @Option(help: "Benchmarks to run, comma-separated (cpu,startup,transfer,memory,roundtrip,load,chunked; mpi always adds roundtrip and idle).")
    var benchmark = "cpu,startup,transfer,memory"

    @Option(help: "Executors to run on, comma-separated (thread,interpreter,process,mpi; mpi needs mpiexec -n N futures bench).")
    var executor = "thread,interpreter,process"

    @Option(
        help:
            "Guest engines for the interpreter and process pools, comma-separated (wasmkit,compiled; default: both when wasm2c and clang are installed)."
    )
    var engine: String?

    @Flag(
        help:
            "Bootstrap a metrics backend (in-process, atomic counters and timers) and measure each transfer row twice, side by side: with no backend and with it."
    )
    var metrics = false

    @Option(help: "Also write the results as an SVG bar chart to this file.")
    var svg: String?

    @Option(help: "Also run the article's Python programs with this interpreter, and show our time over Python's.")
    var python: String?

    mutating func validate() throws {
        guard runs > 0 else { throw ValidationError("--runs must be at least 1") }
        guard workers > 0 else { throw ValidationError("--workers must be at least 1") }
        guard tasks > 0 else { throw ValidationError("--tasks must be at least 1") }
        guard iterations >= 0 else { throw ValidationError("--iterations must not be negative") }
        guard items > 0 else { throw ValidationError("--items must be at least 1") }
    }

    func run() async throws {
        let sizes = BenchSizes(workers: workers, tasks: tasks, iterations: iterations, items: items)
        var suite = BenchSuite(sizes: sizes, runs: runs)
        suite.benchmarks = Set(benchmark.split(separator: ",").map(String.init))
        suite.executors = Set(executor.split(separator: ",").map(String.init))
        if metrics {
            MetricsSystem.bootstrap(BenchMetrics())
            suite.compareMetrics = true
        }
        let unknownBenchmarks = suite.benchmarks.subtracting(["cpu", "startup", "transfer", "memory", "roundtrip", "load", "chunked"])
        let unknownExecutors = suite.executors.subtracting(["thread", "interpreter", "process", "mpi"])
        if !unknownBenchmarks.isEmpty { throw CommandFailure("unknown benchmark: \(unknownBenchmarks.sorted().joined(separator: ", "))") }
        if !unknownExecutors.isEmpty { throw CommandFailure("unknown executor: \(unknownExecutors.sorted().joined(separator: ", "))") }
        if let engine {
            let names = engine.split(separator: ",").map(String.init)
            let engines = names.compactMap(GuestEngine.init(rawValue:))
            guard engines.count == names.count else { throw CommandFailure("unknown engine in \(engine) (wasmkit, compiled)") }
            guard !engines.contains(.auto) else {
                throw CommandFailure(
                    "--engine auto is not measured: it runs a module on WasmKit or compiled, whichever is ready; "
                        + "measure wasmkit and compiled (the load benchmark has auto's first-call row)")
            }
            suite.engines = Set(engines)
        } else if CompiledEngine.canCompile {
            suite.engines = [.wasmKit, .compiled]
        } else {
            writeError("note: the compiled engine's rows are left out: wasm2c (apt-get install wabt) or clang is missing")
        }
        var rows: [BenchRow]
        do {
            rows = try suite.runAll()
        } catch let error as MPIError {
            throw CommandFailure(error.message)
        }
        if let python {
            let pythonRows = try await PythonComparison.run(python: python, sizes: sizes, runs: runs, benchmarks: suite.benchmarks)
            PythonComparison.annotate(&rows, with: pythonRows)
            rows += pythonRows
        }
        if let svg {
            do {
                try BenchChart.svg(rows, machine: BenchReport.machine).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw CommandFailure("cannot write \(svg): \(error.localizedDescription)")
            }
        }
        if json {
            print(BenchReport.json(rows))
        } else {
            print(BenchReport.table(rows, sizes: sizes))
        }
    }
}
