import ArgumentParser
import CFuturesShims
import ConcurrentFutures
@preconcurrency import Foundation

/// `futures map`: runs a guest function over input lines on an executor.
struct MapCommand: AsyncParsableCommand {
    private static let engineHelp =
        "The guest engine of the interpreter, process and MPI pools: wasmkit (default), compiled (wasm2c and clang), or auto "
        + "(compiled once built, wasmkit until then); the thread pool's shared interpreter is always wasmkit."
    static let configuration = CommandConfiguration(
        commandName: "map",
        abstract: "Run a guest function over inputs (one per line) on an executor; results in input order.",
        discussion: """
            Each input line is one JSON value (null, true, 42, 1.5, "text", [1, "two"]); a line that does \
            not start like JSON is a bare string. Output line N is input line N's result, as one JSON value; \
            an input that fails gives {"line": N, "error": "..."} instead (a result is never a JSON object with an "error" key), \
            and a blank input line gives a blank output line. Failures are also reported on standard error \
            with their line numbers, and the map goes on; the exit status is 1 when any input failed, 130 \
            when interrupted. Results are written as they come, line by line, even into a pipe. What guests \
            and workers print goes to standard error, never among the results. Ctrl-C cancels the queued \
            inputs, lets running calls end, and reports what was done; a second Ctrl-C stops at once, \
            workers included.
            """)

    @Argument(
        help: "A .wasm or .wat file (or a bundled module: Tasks.wasm, Examples.wasm, faults.wasm, probe.wasm, wordstat.wasm, wordstat-reactor.wasm).")
    var module: String

    @Argument(help: "The exported function to call.")
    var function: String

    @Option(name: .shortAndLong, help: "Read inputs from this file instead of standard input.")
    var input: String?

    @Option(help: "The executor: interpreter, thread, process or mpi (run under mpiexec -n N; ranks 1 to N-1 serve).")
    var executor: ExecutorChoice = .interpreter

    @Option(help: ArgumentHelp(Self.engineHelp))
    var engine: EngineChoice = .wasmkit

    @OptionGroup var build: BuildOptions

    @OptionGroup(title: "What a WASI guest may reach") var grants: WASIGrantOptions

    @Option(help: "The number of workers (default: one per CPU).")
    var workers: Int?

    @Flag(help: "Write results as they complete, each prefixed with its input's line number and a tab.")
    var unordered = false

    @Option(help: "A fuel budget per call (about one unit per WebAssembly instruction).")
    var fuel: UInt64?

    @Option(help: "A time limit per call, in seconds (on every executor).")
    var timeout: Double?

    @Flag(help: "Stop at the first failing input.")
    var failFast = false

    @Flag(help: "Pass the elements of an array input as separate arguments.")
    var spread = false

    @Flag(help: "Do not show the progress bar.")
    var quiet = false

    @Flag(
        help: """
            Add each call's captured standard output and error (of a WASI guest) to its line: \
            {"value": result, "stdout": "...", "stderr": "..."}; output that is not UTF-8 text comes as \
            {"bytes": "<base64>"} instead of a string, every byte kept. Without it, what WASI guests print goes \
            to standard error as they print it.
            """)
    var output = false

    mutating func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let timeout, !(timeout > 0) || timeout > 1e9 {
            throw ValidationError("--timeout must be a positive number of seconds")
        }
        if let input, input != "-", !FileManager.default.isReadableFile(atPath: input) {
            throw ValidationError("cannot read input file \(input)")
        }
    }

    func run() async throws {
        var wasi = WASIOptions.default
        grants.apply(to: &wasi)
        // What a guest prints goes to standard error as it printed it, one call's output in one
        // write, as `futures run` and Wasmtime show it (a log line per printed line was noise).
        wasi.output = .handler { record in FileHandle.standardError.write(Data(record.stdout + record.stderr)) }
        let guest = try ModuleLoading.module(module, wasi: wasi)
        let engine = self.engine.engine
        build.apply()
        if engine == .compiled {
            // Build (or find) the native code once, before any worker needs it; load it here only
            // where the workers are this process's threads.
            do {
                switch executor {
                case .interpreter, .thread: try CompiledEngine.prepare(guest)
                case .process, .mpi: try CompiledEngine.build(guest)
                }
            } catch {
                throw CommandFailure(error.message)
            }
        }
        var call: GuestFunction<ShareableValue>
        do {
            call = try guest.function(function, returning: ShareableValue.self)
        } catch {
            throw CommandFailure(error.message)
        }
        let timeLimit = timeout.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        let limits = InterpreterLimits(fuel: fuel, timeLimit: timeLimit)
        // The thread pool runs guests in the shared main interpreter: the limits go with each call.
        call = call.withFuel(fuel).withTimeLimit(timeLimit)
        if output { call = call.capturingOutput().returning(ShareableValue.self) }
        let workers = self.workers ?? ProcessorCount.available
        let results = try ResultWriter()
        let outcome: MapOutcome
        switch executor {
        case .interpreter:
            outcome = try run(
                on: InterpreterPoolExecutor(maxWorkers: workers, modules: [guest], limits: limits, engine: engine), call, results)
        case .thread:
            outcome = try run(on: ThreadPoolExecutor(maxWorkers: workers), call, results)
        case .process:
            let pool = try ProcessPoolExecutor(
                maxWorkers: workers, workerExecutable: WorkerProgram.path, limits: limits, engine: engine)
            outcome = try run(on: pool, call, results) { for pid in pool.workerProcessIDs { kill(pid, SIGKILL) } }
        case .mpi:
            do {
                outcome = try run(on: MPIPoolExecutor(maxWorkers: self.workers, limits: limits, engine: engine), call, results)
            } catch let error as MPIError {
                throw CommandFailure(error.message)
            }
        }
        if outcome.interrupted {
            writeError(
                "interrupted: \(outcome.succeeded + outcome.failed) of \(outcome.read) inputs done, "
                    + "\(outcome.failed) failed")
            throw ExitCode(130)
        }
        if outcome.failed > 0 {
            writeError("\(outcome.failed) of \(outcome.read) inputs failed")
            throw ExitCode(1)
        }
    }

    struct MapOutcome {
        var read = 0
        var succeeded = 0
        var failed = 0
        var interrupted = false
    }

    /// Streams the inputs through `pool`: a thread of its own reads, parses and submits lines
    /// (a window of them in flight at a time), while this one writes each result as soon as it
    /// is its turn, so that neither waits for the other. `stopWorkers` kills worker processes on
    /// a second Ctrl-C.
    private func run<E: PoolExecutor>(
        on pool: E, _ function: GuestFunction<ShareableValue>, _ results: ResultWriter, stopWorkers: @escaping @Sendable () -> Void = {}
    ) throws -> MapOutcome {
        let lines = try LineReader(path: input)
        let progress = Progress(enabled: !quiet && isatty(2) == 1)
        if progress.enabled, let path = lines.path { progress.countLines(of: path) }
        let intake = Intake(window: Swift.max(8, (workers ?? ProcessorCount.available) * 8))
        let interruption = Interruption(
            onInterrupt: {
                intake.stop()
                pool.shutdown(wait: false, cancelFutures: true)
            },
            onSecondInterrupt: {
                writeError("\ninterrupted again: stopping now")
                stopWorkers()
                // `_exit` runs no exit handler: end the builds and remove the private cache here.
                cf_builds_cleanup()
                _exit(130)
            })
        defer { interruption.stop() }
        let spread = self.spread
        Thread.detachNewThread {
            Self.feed(lines, to: intake, pool: pool, function: function, spread: spread)
        }

        var outcome = MapOutcome()
        var stop = false
        func report(_ entry: Intake.Entry, _ result: Result<ShareableValue, any Error>?) {
            let prefix = unordered ? "\(entry.line)\t" : ""
            switch result {
            case nil:
                results.write(prefix)
            case .success(let value)?:
                outcome.succeeded += 1
                results.write(prefix + (output ? Self.renderWithOutput(value) : ValueJSON.render(value)))
            case .failure(let error as ExecutorError)? where error.code == .cancelled:
                break
            case .failure(let error)?:
                outcome.failed += 1
                let message = describe(error)
                progress.clear()
                writeError("line \(entry.line): \(message)")
                results.write(prefix + "{\"line\":\(entry.line),\"error\":\(ValueJSON.quote(message))}")
                if failFast { stop = true }
            }
            intake.completed()
            progress.update(done: outcome.succeeded + outcome.failed)
        }

        var pending: [Intake.Entry] = []
        while !stop, !interruption.happened {
            if unordered {
                pending += pending.isEmpty ? intake.next().map { [$0] } ?? [] : intake.available()
                if pending.isEmpty { break }
                let done = wait(pending.compactMap(\.future), timeout: .milliseconds(100), returnWhen: .firstCompleted).done
                let finished = pending.filter { $0.future.map(done.contains) ?? true }
                pending.removeAll { $0.future.map(done.contains) ?? true }
                for entry in finished.sorted(by: { $0.line < $1.line }) { report(entry, entry.future.map(result)) }
            } else {
                guard let entry = intake.next() else { break }
                report(entry, entry.future.map(result))
            }
        }
        intake.stop()
        pool.shutdown(wait: true, cancelFutures: true)
        // After Ctrl-C: what finished is still reported, in order, up to the first line that did not.
        if !stop {
            for entry in pending + intake.available() {
                if let future = entry.future, !future.isDone || future.isCancelled { break }
                report(entry, entry.future.map(result))
            }
        }
        progress.clear()
        outcome.read = intake.read
        outcome.interrupted = interruption.happened
        return outcome
    }

    /// Reads, parses and submits the lines until the input ends or the intake stops.
    private static func feed<E: PoolExecutor>(
        _ lines: LineReader, to intake: Intake, pool: E, function: GuestFunction<ShareableValue>, spread: Bool
    ) {
        var lineNumber = 0
        while let next = lines.next() {
            lineNumber += 1
            var future: Future<ShareableValue>?
            do {
                if let value = try ValueJSON.parse(line: next.get()) {
                    let arguments: [ShareableValue]
                    if spread, case .array(let elements) = value { arguments = elements } else { arguments = [value] }
                    do {
                        future = try pool.submit(function.call(arguments: arguments))
                    } catch {
                        future = Future<ShareableValue>()
                        future?.complete(.failure(error))
                        _ = intake.push(Intake.Entry(line: lineNumber, future: future), counted: true)
                        break
                    }
                }
            } catch {
                // Reported in its turn, so that output and errors stay in input order.
                future = Future<ShareableValue>()
                future?.complete(.failure(CommandFailure("cannot parse the input: \(error)")))
            }
            guard intake.push(Intake.Entry(line: lineNumber, future: future), counted: future != nil) else { break }
        }
        intake.finish()
    }

    /// `{"value": ..., "stdout": "...", "stderr": "..."}` for a result with its output.
    static func renderWithOutput(_ value: ShareableValue) -> String {
        guard let captured = try? GuestOutput<ShareableValue>(shareableValue: value) else { return ValueJSON.render(value) }
        return "{\"value\":\(ValueJSON.render(captured.value)),\"stdout\":\(ValueJSON.output(captured.stdout)),"
            + "\"stderr\":\(ValueJSON.output(captured.stderr))}"
    }

    private func result(of future: Future<ShareableValue>) -> Result<ShareableValue, any Error> {
        Result { try future.result() }
    }
}
