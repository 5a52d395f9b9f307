import BenchJobs
import BundledGuests
import ConcurrentFutures
import Foundation

/// The sizes of the article's benchmarks.
struct BenchSizes {
    var workers: Int
    var tasks: Int
    var iterations: Int
    var items: Int
}

/// One measured benchmark row.
struct BenchRow {
    var benchmark: String
    var executor: String
    var guest: String
    /// The guest engine: `wasmkit` or `compiled` for WebAssembly guests, `native` for Swift code.
    var engine: String
    var workers: Int
    var seconds: [Double]
    var extra: [String: Double] = [:]
    var note: String = ""

    var median: Double {
        let sorted = seconds.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { seconds.min() ?? 0 }
    var max: Double { seconds.max() ?? 0 }
}

/// The benchmark's CPU-bound function, natively: Python's `cpu_bound(n)`.
func cpuBound(_ n: Int) -> Int { BenchJobs.cpuBound(n) }

/// A failed self-check: a benchmark whose results are wrong reports no time.
struct BenchCheckFailed: Error, CustomStringConvertible {
    let description: String
}

/// One executor and guest kind the benchmarks run on. Each closure runs one whole measured span:
/// creating the executor, the work, checking the results, and `shutdown` returning.
struct BenchTarget {
    let executor: String
    let guest: String
    let engine: String
    let cpu: (_ workers: Int, _ tasks: Int, _ expected: Int) throws -> Void
    let startup: (_ workers: Int) throws -> Void
    let transfer: (_ workers: Int, _ inputs: [Int], _ expected: [Int]) throws -> Void
    /// `count` no-op calls one after another, each waited for: the per-task round trip.
    let roundTrip: (_ workers: Int, _ count: Int) throws -> Void
    /// The transfer's map sent 100 inputs per request (`map(chunkSize: 100)`), on the executors
    /// that send work to other processes.
    let chunked: ((_ workers: Int, _ inputs: [Int], _ expected: [Int]) throws -> Void)?

    /// A target whose code is specialized for the concrete executor type `E`, as a program
    /// that names its executor is.
    static func make<E: PoolExecutor>(
        _ executor: String, _ guest: String, engine: String? = nil, _ make: @escaping (Int) throws -> E,
        cpu: Call<Int>, noop: Call<Int>, double: @escaping @Sendable (Int) -> Call<Int>,
        transfer: ((E, [Int]) throws -> [Int])? = nil, chunked: ((E, [Int]) throws -> [Int])? = nil
    ) -> BenchTarget {
        func scoped(_ workers: Int, _ body: (E) throws -> Void) throws {
            let pool = try make(workers)
            defer { pool.shutdown(wait: true, cancelFutures: true) }
            try body(pool)
        }
        return BenchTarget(
            executor: executor, guest: guest, engine: engine ?? (guest == "native" ? "native" : "wasmkit"),
            cpu: { workers, tasks, expected in
                try scoped(workers) { pool in
                    let futures = try pool.submit(contentsOf: Array(repeating: cpu, count: tasks))
                    try check(futures.map { try $0.result() }, equals: Array(repeating: expected, count: tasks))
                }
            },
            startup: { workers in
                try scoped(workers) { pool in
                    for future in try pool.submit(contentsOf: Array(repeating: noop, count: workers)) { _ = try future.result() }
                }
            },
            transfer: { workers, inputs, expected in
                try scoped(workers) { pool in
                    let results = try transfer?(pool, inputs) ?? pool.map(inputs, call: double).collect()
                    try check(results, equals: expected)
                }
            },
            roundTrip: { workers, count in
                try scoped(workers) { pool in
                    for _ in 0..<count { _ = try pool.submit(noop).result() }
                }
            },
            chunked: chunked.map { chunked in
                { workers, inputs, expected in try scoped(workers) { pool in try check(chunked(pool, inputs), equals: expected) } }
            })
    }
}

/// Runs every benchmark on every executor and guest kind.
struct BenchSuite {
    let sizes: BenchSizes
    let runs: Int
    /// The benchmarks to run (`cpu`, `startup`, `transfer`, `memory`; also `chunked`, `roundtrip`, `load`).
    var benchmarks: Set<String> = ["cpu", "startup", "transfer", "memory"]
    /// The executors to run on.
    var executors: Set<String> = ["thread", "interpreter", "process"]
    /// The engines WebAssembly guests run on in the interpreter and process pools.
    var engines: Set<GuestEngine> = [.wasmKit]
    /// Whether each transfer row is measured twice, side by side: with no metrics backend
    /// (`PoolObservability.disabled`) and with the one bootstrapped (`futures bench --metrics`).
    var compareMetrics = false

    func targets(observability: PoolObservability = PoolObservability()) throws -> [BenchTarget] {
        let tasks = BundledGuests.tasks
        let cpuGuest = try tasks.function("cpu_bound", returning: Int.self)
        let doubleGuest = try tasks.function("double", returning: Int.self)
        let noopGuest = try tasks.function("noop", returning: ShareableValue.self)
        let iterations = sizes.iterations
        let cpuWasm = cpuGuest.call(iterations)
        let noopWasm = noopGuest.call().map { _ in 0 }
        let doubleWasm = { @Sendable (x: Int) in doubleGuest.call(x) }
        let thread = { (workers: Int) in try ThreadPoolExecutor(maxWorkers: workers, observability: observability) }
        let interpreter = { (workers: Int) in
            try InterpreterPoolExecutor(maxWorkers: workers, modules: [tasks], observability: observability)
        }
        let process = { (workers: Int) in
            try ProcessPoolExecutor(maxWorkers: workers, workerExecutable: WorkerProgram.path, observability: observability)
        }
        let mpi = { (workers: Int) in try MPIPoolExecutor(maxWorkers: workers, observability: observability) }
        let compiledInterpreter = { (workers: Int) in
            try InterpreterPoolExecutor(maxWorkers: workers, modules: [tasks], engine: .compiled, observability: observability)
        }
        // The same guest built as a WASI reactor (`Guests/Tasks.swift`, `--wasi reactor`): each call
        // takes the WASI path (per-call arguments, captured output), which must cost next to nothing.
        let wasiTasks = BundledGuests.tasksWASI
        let cpuWASI = try wasiTasks.function("cpu_bound", returning: Int.self).call(iterations)
        let noopWASIGuest = try wasiTasks.function("noop", returning: ShareableValue.self)
        let noopWASI = noopWASIGuest.call().map { _ in 0 }
        let doubleWASIGuest = try wasiTasks.function("double", returning: Int.self)
        let doubleWASI = { @Sendable (x: Int) in doubleWASIGuest.call(x) }
        let wasiInterpreter = { (workers: Int) in
            try InterpreterPoolExecutor(maxWorkers: workers, modules: [wasiTasks], observability: observability)
        }
        let compiledProcess = { (workers: Int) in
            try ProcessPoolExecutor(
                maxWorkers: workers, workerExecutable: WorkerProgram.path, engine: .compiled, observability: observability)
        }
        let all = [
            BenchTarget.make(
                "thread", "native", thread, cpu: Call { cpuBound(iterations) }, noop: Call { 0 },
                double: { x in Call { x * 2 } }, transfer: { pool, inputs in try pool.map(inputs) { $0 * 2 }.collect() }),
            BenchTarget.make("thread", "wasm", thread, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
            BenchTarget.make("interpreter", "wasm", interpreter, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
            BenchTarget.make("interpreter", "wasi", wasiInterpreter, cpu: cpuWASI, noop: noopWASI, double: doubleWASI),
            BenchTarget.make(
                "interpreter", "wasm", engine: "compiled", compiledInterpreter, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
            BenchTarget.make(
                "process", "native", process, cpu: BenchJobs.cpuBound.call(iterations), noop: BenchJobs.noop.call(0),
                double: { x in BenchJobs.double.call(x) },
                chunked: { pool, inputs in try pool.map(BenchJobs.double, inputs, chunkSize: 100).collect() }),
            BenchTarget.make("process", "wasm", process, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
            BenchTarget.make(
                "process", "wasm", engine: "compiled", compiledProcess, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
            BenchTarget.make(
                "mpi", "native", mpi, cpu: BenchJobs.cpuBound.call(iterations), noop: BenchJobs.noop.call(0),
                double: { x in BenchJobs.double.call(x) },
                chunked: { pool, inputs in try pool.map(BenchJobs.double, inputs, chunkSize: 100).collect() }),
            BenchTarget.make("mpi", "wasm", mpi, cpu: cpuWasm, noop: noopWasm, double: doubleWasm),
        ]
        let engineNames = Set(engines.map(\.rawValue) + ["native"])
        return all.filter { executors.contains($0.executor) && engineNames.contains($0.engine) }
    }

    func runAll() throws -> [BenchRow] {
        var rows: [BenchRow] = []
        let expected = cpuBound(sizes.iterations)
        let inputs = Array(0..<sizes.items)
        let doubled = inputs.map { $0 * 2 }
        let wantsCPU = benchmarks.contains("cpu")
        let native = wantsCPU ? measureSingle { blackHole(cpuBound(opaque(sizes.iterations))) } : 0
        var wasm: [String: Double] = [:]
        if wantsCPU { for engine in engines { wasm[engine.rawValue] = try singleWasmTask(engine: engine) } }
        let plainTargets = try targets(observability: compareMetrics ? .disabled : PoolObservability())
        let meteredTargets = compareMetrics ? try targets() : []
        for (index, target) in plainTargets.enumerated() {
            if wantsCPU {
                let single = target.guest == "native" ? native : wasm[target.engine] ?? 0
                var row = try measure("cpu", target) { try target.cpu($0, sizes.tasks, expected) }
                annotateCPU(&row, single: single)
                rows.append(row)
                if target.executor == "interpreter", target.guest != "wasi" {
                    var one = try measure("cpu", target, workers: 1) { try target.cpu($0, sizes.tasks, expected) }
                    one.note = "the same work on 1 worker"
                    rows[rows.count - 1].extra["speedup_over_1_worker"] = one.median / rows[rows.count - 1].median
                    rows.append(one)
                }
            }
            if benchmarks.contains("startup") {
                rows.append(try measure("startup", target) { try target.startup($0) })
            }
            if benchmarks.contains("transfer") {
                if compareMetrics {
                    let metered = meteredTargets[index]
                    var (plain, row) = try measurePair(
                        "transfer", target, { try target.transfer($0, inputs, doubled) }, { try metered.transfer($0, inputs, doubled) })
                    plain.note = "no metrics backend"
                    row.note = String(format: "a metrics backend bootstrapped: %.2fx the row above", row.median / plain.median)
                    row.extra["over_no_metrics"] = row.median / plain.median
                    rows.append(plain)
                    rows.append(row)
                } else {
                    rows.append(try measure("transfer", target) { try target.transfer($0, inputs, doubled) })
                }
            }
            if benchmarks.contains("chunked"), let chunked = target.chunked {
                var row = try measure("chunked", target) { try chunked($0, inputs, doubled) }
                row.note = "the transfer's map, 100 inputs per request"
                rows.append(row)
            }
            if benchmarks.contains("roundtrip") || target.executor == "mpi" {
                rows.append(try roundTrip(target))
            }
        }
        // The WASI guest against the same guest without WASI, measured in this run.
        for index in rows.indices where rows[index].guest == "wasi" {
            let wasi = rows[index]
            guard
                let plain = rows.first(where: {
                    $0.guest == "wasm" && $0.engine == wasi.engine && $0.executor == wasi.executor && $0.benchmark == wasi.benchmark
                        && $0.workers == wasi.workers
                })
            else { continue }
            rows[index].extra["over_non_wasi"] = wasi.median / plain.median
            rows[index].note += (wasi.note.isEmpty ? "" : "; ") + String(format: "%.2fx the guest without WASI", wasi.median / plain.median)
        }
        if executors.contains("mpi") { rows.append(try mpiIdle()) }
        if benchmarks.contains("load") { rows += try loadRows() }
        if benchmarks.contains("memory") {
            if executors.contains("interpreter") {
                for engine in GuestEngine.allCases where engines.contains(engine) { rows.append(try interpreterMemory(engine: engine)) }
            }
            if executors.contains("process") { rows.append(try processMemory()) }
        }
        return rows
    }

    /// What loading a module costs the first call in a new interpreter, per engine: WasmKit
    /// (instantiation); compiled with the entry in the cache but not yet loaded in the process
    /// (the checks, `dlopen`, instantiation); auto with nothing cached (WasmKit, plus looking in
    /// the cache and queueing the background build); and the checks of a warm load on their own.
    /// Each compiled sample uses a module of its own (the benchmark guest with a custom section
    /// naming the sample), so that nothing is loaded in the process already.
    func loadRows() throws -> [BenchRow] {
        let samples = Swift.max(3, runs)
        let base = BundledGuests.bytes(named: "Tasks.wasm")!
        let stamp = UInt32.random(in: 0...UInt32.max)
        func variant(_ label: String, _ index: Int) throws -> GuestModule {
            let name = Array("bench-load-\(stamp)-\(label)-\(index)".utf8)
            // A custom section: id 0, size, name length, name.
            return try GuestModule(bytes: base + [0, UInt8(name.count + 1), UInt8(name.count)] + name, name: "Tasks.wasm")
        }
        func firstCall(_ module: GuestModule, engine: GuestEngine) throws -> Double {
            let noop = try module.function("noop", returning: ShareableValue.self)
            let interpreter = Interpreters.create(engine: engine)
            defer { try? interpreter.close() }
            return try timeThrowing { _ = try interpreter.call(noop) }
        }
        var rows: [BenchRow] = []
        var wasmKit: [Double] = []
        for index in 0..<samples { wasmKit.append(try firstCall(try variant("wasmkit", index), engine: .wasmKit)) }
        var row = BenchRow(benchmark: "load", executor: "interpreter", guest: "wasm", engine: "wasmkit", workers: 1, seconds: wasmKit)
        row.note = "first call in a new interpreter: instantiation of Tasks.wasm"
        rows.append(row)
        guard engines.contains(.compiled) else { return rows }
        var compiled: [Double] = []
        for index in 0..<samples {
            let module = try variant("compiled", index)
            try CompiledEngine.build(module)
            compiled.append(try firstCall(module, engine: .compiled))
        }
        row = BenchRow(benchmark: "load", executor: "interpreter", guest: "wasm", engine: "compiled", workers: 1, seconds: compiled)
        row.note = "first call in a new interpreter, the module in the cache but not loaded: checks, dlopen, instantiation"
        rows.append(row)
        var auto: [Double] = []
        for index in 0..<samples {
            let module = try variant("auto", index)
            auto.append(try firstCall(module, engine: .auto))
            // The background build ends before the next sample.
            for _ in 0..<6000 where !CompiledEngine.isLoaded(module) { usleep(10_000) }
        }
        row = BenchRow(benchmark: "load", executor: "interpreter", guest: "wasm", engine: "auto", workers: 1, seconds: auto)
        row.note = "first call in a new interpreter, nothing cached: WasmKit, plus the cache lookup and the background build queued"
        rows.append(row)
        let checks = try CompiledEngine.measureChecks(of: try variant("checks", 0), repetitions: 200)
        func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
        row = BenchRow(benchmark: "load", executor: "checks", guest: "wasm", engine: "compiled", workers: 1, seconds: [seconds(checks.entry)])
        row.extra["directory_checks_s"] = seconds(checks.directory)
        row.extra["entry_bytes"] = Double(checks.entryBytes)
        row.note = String(
            format:
                "checks of a warm load: the entry (descriptor, record, SHA-256 of its %d KiB); the cache directory and its ancestors, once per process: %.1f µs",
            checks.entryBytes >> 10, seconds(checks.directory) * 1e6)
        rows.append(row)
        return rows
    }

    /// The time of one call waited for before the next is submitted, from a run of 200 (the
    /// pool's creation and shutdown included, spread over them).
    func roundTrip(_ target: BenchTarget) throws -> BenchRow {
        let count = 200
        var row = try measure("roundtrip", target, workers: 1) { try target.roundTrip($0, count) }
        row.seconds = row.seconds.map { $0 / Double(count) }
        row.note = "one no-op call at a time, submitted and waited for; time per call"
        return row
    }

    /// What idle worker ranks cost: the CPU time the worker ranks on this host use over two
    /// seconds with an open, idle pool, as a share of one core.
    func mpiIdle() throws -> BenchRow {
        let pool = try MPIPoolExecutor(maxWorkers: sizes.workers)
        defer { pool.shutdown() }
        _ = try pool.submit(BenchJobs.noop.call(0)).result()
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let local = pool.ranks.filter { $0.host == String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        let before = local.map { cpuSeconds(pid: $0.processID) }
        let span = 2.0
        Thread.sleep(forTimeInterval: span)
        let after = local.map { cpuSeconds(pid: $0.processID) }
        let shares = zip(before, after).map { ($1 - $0) / span }
        var row = BenchRow(benchmark: "idle", executor: "mpi", guest: "native", engine: "native", workers: local.count, seconds: [span])
        row.extra["core_share_per_rank"] = shares.max() ?? 0
        row.note =
            "share of one core used by an idle worker rank over \(Int(span)) s (the busiest of \(local.count) on this host): "
            + shares.map { String(format: "%.2f %%", $0 * 100) }.joined(separator: ", ")
        return row
    }

    /// The single-task time of the cpu benchmark in a WebAssembly interpreter.
    func singleWasmTask(engine: GuestEngine) throws -> Double {
        let interpreter = Interpreters.create(engine: engine)
        defer { try? interpreter.close() }
        try interpreter.exec(BundledGuests.tasks)
        var failure: (any Error)?
        let seconds = measureSingle {
            do { _ = try interpreter.call("cpu_bound", [.int(Int64(sizes.iterations))]) } catch { failure = error }
        }
        if let failure { throw failure }
        return seconds
    }

    /// Resident memory of an idle interpreter with the benchmark module loaded: the growth of
    /// this process's resident set over 64 such interpreters, divided by 64 (their linear
    /// memories included, as far as they are touched).
    func interpreterMemory(engine: GuestEngine) throws -> BenchRow {
        let count = 64
        var samples: [Double] = []
        var bytes: [Double] = []
        // One interpreter first, outside the measure, so that one-time costs (loading the module,
        // the code pages of the call path) are not divided among the 64.
        let warm = Interpreters.create(engine: engine)
        try warm.exec(BundledGuests.tasks)
        _ = try warm.call("noop")
        try warm.close()
        for _ in 0..<Swift.max(1, runs) {
            let before = residentBytes()
            var interpreters: [Interpreter] = []
            let seconds = try timeThrowing {
                for _ in 0..<count {
                    let interpreter = Interpreters.create(engine: engine)
                    try interpreter.exec(BundledGuests.tasks)
                    _ = try interpreter.call("noop")
                    interpreters.append(interpreter)
                }
            }
            bytes.append(Double(residentBytes() - before) / Double(count))
            samples.append(seconds / Double(count))
            for interpreter in interpreters { try interpreter.close() }
        }
        var row = BenchRow(
            benchmark: "memory", executor: "interpreter", guest: "wasm", engine: engine.rawValue, workers: count, seconds: samples)
        row.extra["bytes_per_worker"] = bytes.sorted()[bytes.count / 2]
        row.note =
            "per idle interpreter with Tasks.wasm loaded (its 64 KiB linear memory as far as touched); "
            + "time is per interpreter created"
        return row
    }

    /// Resident memory of an idle worker process (its whole resident set).
    func processMemory() throws -> BenchRow {
        let pool = try ProcessPoolExecutor(maxWorkers: 1, workerExecutable: WorkerProgram.path)
        defer { pool.shutdown() }
        var samples: [Double] = []
        let seconds = try timeThrowing { _ = try pool.submit(BenchJobs.noop, 0).result() }
        samples.append(seconds)
        let pid = pool.workerProcessIDs.first ?? 0
        var row = BenchRow(benchmark: "memory", executor: "process", guest: "native", engine: "native", workers: 1, seconds: samples)
        row.extra["bytes_per_worker"] = Double(residentBytes(pid: pid))
        row.note = "whole resident set of one idle worker process; time is its first task"
        return row
    }

    /// The single-task time of the cpu benchmark: the best of three sequential runs.
    func measureSingle(_ body: () -> Void) -> Double {
        (0..<3).map { _ in time(body) }.min()!
    }

    func annotateCPU(_ row: inout BenchRow, single: Double) {
        let parallel = row.executor == "thread" && row.guest == "wasm" ? 1 : Swift.min(row.workers, ProcessorCount.available)
        let ideal = Double(sizes.tasks) * single / Double(parallel)
        row.extra["single_task_s"] = single
        row.extra["ideal_s"] = ideal
        row.extra["overhead_ratio"] = row.median / ideal
    }

    /// Times `body` (one whole span, from creating the executor to `shutdown` returning): one
    /// untimed run first (warm-up and self-check), then `runs` timed ones.
    func measure(
        _ benchmark: String, _ target: BenchTarget, workers: Int? = nil, _ body: (Int) throws -> Void
    ) throws -> BenchRow {
        let workers = workers ?? sizes.workers
        try body(workers)
        var seconds: [Double] = []
        for _ in 0..<runs { seconds.append(try timeThrowing { try body(workers) }) }
        return BenchRow(
            benchmark: benchmark, executor: target.executor, guest: target.guest, engine: target.engine, workers: workers,
            seconds: seconds)
    }
}

extension BenchSuite {
    /// Times two variants of the same benchmark side by side: one untimed run of each, then
    /// `runs` rounds that run `first` and `second` one after the other, so that a change in the
    /// machine's load between them weighs on both alike.
    func measurePair(
        _ benchmark: String, _ target: BenchTarget, _ first: (Int) throws -> Void, _ second: (Int) throws -> Void
    ) throws -> (BenchRow, BenchRow) {
        let workers = sizes.workers
        try first(workers)
        try second(workers)
        var seconds: ([Double], [Double]) = ([], [])
        for _ in 0..<runs {
            seconds.0.append(try timeThrowing { try first(workers) })
            seconds.1.append(try timeThrowing { try second(workers) })
        }
        func row(_ seconds: [Double]) -> BenchRow {
            BenchRow(
                benchmark: benchmark, executor: target.executor, guest: target.guest, engine: target.engine, workers: workers,
                seconds: seconds)
        }
        return (row(seconds.0), row(seconds.1))
    }
}

/// Returns `value` through a function the optimizer cannot see into, so that work computed
/// from it is not merged with earlier identical work.
@inline(never) @_optimize(none)
func opaque<T>(_ value: T) -> T { value }

/// Keeps a value alive so the optimizer cannot drop the work that produced it.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

func timeThrowing(_ body: () throws -> Void) throws -> Double {
    var failure: (any Error)?
    let seconds = time { do { try body() } catch { failure = error } }
    if let failure { throw failure }
    return seconds
}

/// This process's resident set size in bytes (or that of `pid`).
func residentBytes(pid: Int32 = 0) -> Int {
    let path = pid == 0 ? "/proc/self/statm" : "/proc/\(pid)/statm"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The CPU time (user and system) process `pid` has used, in seconds.
func cpuSeconds(pid: Int32) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let end = text.lastIndex(of: ")")
    else { return 0 }
    // After the command name: state is field 3, utime and stime are fields 14 and 15.
    let fields = text[text.index(after: end)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func time(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func check<T: Equatable>(_ actual: T, equals expected: T) throws {
    guard actual == expected else { throw BenchCheckFailed(description: "wrong result: \(actual) != \(expected)") }
}
