import ArgumentParser
import CFuturesShims
import ConcurrentFutures
import Dispatch
@preconcurrency import Foundation

/// Which executor `futures map` uses.
enum ExecutorChoice: String, ExpressibleByArgument, CaseIterable {
    case interpreter, thread, process
}

/// `futures map`: runs a guest function over input lines on an executor.
struct MapCommand: FuturesSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "map",
        abstract: "Run a guest function over inputs (one per line) on an executor; results in input order.",
        discussion: """
            Each input line is one JSON value (null, true, 42, 1.5, "text", [1, "two"]); a line that does \
            not start like JSON is a bare string. Results are written one JSON value per line. A failing \
            input is reported on standard error with its line number and the map goes on; the exit \
            status is 1 when any input failed, 130 when interrupted. Ctrl-C cancels the queued inputs, \
            lets running calls end, and reports what was done.
            """)

    @Argument(help: "A .wasm or .wat file (or a bundled module: Tasks.wasm, Examples.wasm, faults.wasm).")
    var module: String

    @Argument(help: "The exported function to call.")
    var function: String

    @Option(name: .shortAndLong, help: "Read inputs from this file instead of standard input.")
    var input: String?

    @Option(help: "The executor: interpreter, thread or process.")
    var executor: ExecutorChoice = .interpreter

    @Option(help: "The number of workers (default: one per CPU).")
    var workers: Int?

    @Flag(help: "Write results as they complete, each prefixed with its input's line number and a tab.")
    var unordered = false

    @Option(help: "A fuel budget per call (about one unit per WebAssembly instruction).")
    var fuel: UInt64?

    @Option(help: "A time limit per call, in seconds.")
    var timeout: Double?

    @Flag(help: "Stop at the first failing input.")
    var failFast = false

    @Flag(help: "Pass the elements of an array input as separate arguments.")
    var spread = false

    @Flag(help: "Do not show the progress bar.")
    var quiet = false

    mutating func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
        if let input, input != "-", !FileManager.default.isReadableFile(atPath: input) {
            throw ValidationError("cannot read input file \(input)")
        }
    }

    func execute() async throws {
        let guest = try ModuleLoading.module(module)
        let call: GuestFunction<Value>
        do {
            call = try guest.function(function, returning: Value.self)
        } catch {
            throw CommandFailure(error.message)
        }
        let limits = InterpreterLimits(fuel: fuel, timeLimit: timeout.map { .nanoseconds(Int64($0 * 1e9)) })
        let workers = self.workers ?? ProcessorCount.available
        let outcome: MapOutcome
        switch executor {
        case .interpreter:
            outcome = try run(on: InterpreterPoolExecutor(maxWorkers: workers, modules: [guest], limits: limits), call)
        case .thread:
            outcome = try run(on: ThreadPoolExecutor(maxWorkers: workers), call.withFuel(fuel))
        case .process:
            outcome = try run(on: ProcessPoolExecutor(maxWorkers: workers, workerExecutable: WorkerProgram.path, limits: limits), call)
        }
        if outcome.interrupted {
            writeError("interrupted: \(outcome.succeeded + outcome.failed) of \(outcome.read) inputs done, "
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

    /// Streams the inputs through `pool`, a window of them in flight at a time.
    private func run<E: Executor>(on pool: E, _ function: GuestFunction<Value>) throws -> MapOutcome {
        let lines = try LineReader(path: input)
        let total = lines.countIfFile()
        let interruption = Interruption { pool.shutdown(wait: false, cancelFutures: true) }
        defer { interruption.stop() }
        let progress = Progress(total: total, enabled: !quiet && isatty(2) == 1)
        var outcome = MapOutcome()
        var pending: [(line: Int, future: Future<Value>)] = []
        var lineNumber = 0
        var exhausted = false
        let window = Swift.max(8, (workers ?? ProcessorCount.available) * 8)
        var stop = false

        func report(_ line: Int, _ result: Result<Value, any Error>) {
            switch result {
            case .success(let value):
                outcome.succeeded += 1
                writeOutput(unordered ? "\(line)\t\(ValueJSON.render(value))" : ValueJSON.render(value))
            case .failure(let error as ExecutorError) where error.code == .cancelled:
                break
            case .failure(let error):
                outcome.failed += 1
                progress.clear()
                writeError("line \(line): \(describe(error))")
                if failFast { stop = true }
            }
            progress.update(done: outcome.succeeded + outcome.failed)
        }

        while !stop, !interruption.happened {
            while !exhausted, !stop, pending.count < window, !interruption.happened {
                guard let text = lines.next() else {
                    exhausted = true
                    break
                }
                lineNumber += 1
                if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                outcome.read += 1
                let value: Value
                do {
                    value = try ValueJSON.parse(line: text)
                } catch {
                    // Reported in its turn, so that errors come in input order too.
                    let failed = Future<Value>()
                    failed.complete(.failure(CommandFailure("cannot parse the input: \(error)")))
                    pending.append((lineNumber, failed))
                    continue
                }
                let arguments: [Value]
                if spread, case .array(let elements) = value { arguments = elements } else { arguments = [value] }
                do {
                    pending.append((lineNumber, try pool.submit(function.call(arguments: arguments))))
                } catch {
                    report(lineNumber, .failure(error))
                    exhausted = true
                }
            }
            if pending.isEmpty { break }
            if unordered {
                let done = wait(pending.map(\.future), returnWhen: .firstCompleted).done
                let (finished, rest) = (pending.filter { done.contains($0.future) }, pending.filter { !done.contains($0.future) })
                pending = rest
                for (line, future) in finished.sorted(by: { $0.line < $1.line }) { report(line, result(of: future)) }
            } else {
                let (line, future) = pending.removeFirst()
                report(line, result(of: future))
            }
        }
        if stop {
            for entry in pending { entry.future.cancel() }
        }
        pool.shutdown(wait: true, cancelFutures: true)
        for (line, future) in pending where future.done && !future.cancelled && !stop { report(line, result(of: future)) }
        progress.clear()
        outcome.interrupted = interruption.happened
        return outcome
    }

    private func result(of future: Future<Value>) -> Result<Value, any Error> {
        Result { try future.result() }
    }

    private func describe(_ error: any Error) -> String {
        switch error {
        case let error as ExecutionFailed: "\(error.kind) in \(error.function): \(error.message)"
        case let error as ExecutorError: error.message
        default: String(describing: error)
        }
    }
}

extension GuestFunction {
    /// Binds the function to a list of dynamic arguments.
    func call(arguments: [Value]) -> Call<Result> {
        switch arguments.count {
        case 0: call()
        case 1: call(arguments[0])
        case 2: call(arguments[0], arguments[1])
        case 3: call(arguments[0], arguments[1], arguments[2])
        case 4: call(arguments[0], arguments[1], arguments[2], arguments[3])
        default: call(Value.array(arguments))
        }
    }
}

/// Reads lines from a file or standard input, one at a time.
final class LineReader {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String?

    init(path: String?) throws {
        self.path = path == "-" ? nil : path
        if let path = self.path {
            guard let file = fopen(path, "r") else { throw CommandFailure("cannot read input file \(path)") }
            self.file = file
        } else {
            file = stdin
        }
    }

    deinit { if path != nil { fclose(file) } }

    func next() -> String? {
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let length = getline(&line, &capacity, file)
        guard length >= 0, let line else { return nil }
        var text = String(cString: line)
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// The number of non-empty lines, when reading a file.
    func countIfFile() -> Int? {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
    }
}

/// Ctrl-C handling: the first SIGINT runs `onInterrupt` (cancelling the queued work); the map
/// then stops reading, lets running calls end, and reports.
///
/// A signal handler writes to a pipe that a thread of its own reads. The handler is in place when
/// `init` returns, so a Ctrl-C that comes later is never lost; a Dispatch signal source registers
/// asynchronously, and a signal that came before it was dropped.
final class Interruption: @unchecked Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32
    private let flag = NSLock()
    private var interrupted = false

    init(onInterrupt: @escaping @Sendable () -> Void) {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            ends.forEach(cf_set_cloexec)
        } else {
            ends = [-1, -1]
        }
        (readEnd, writeEnd) = (ends[0], ends[1])
        guard readEnd >= 0 else { return }  // no pipe: Ctrl-C keeps its default action
        _ = cf_interrupt_pipe_install(writeEnd)
        Thread.detachNewThread { [self] in
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0, errno == EINTR { continue }
                guard count == 1 else { break }
                let first = flag.withLock {
                    defer { interrupted = true }
                    return !interrupted
                }
                if first { onInterrupt() }
            }
            close(readEnd)
        }
    }

    var happened: Bool { flag.withLock { interrupted } }

    /// Restores Ctrl-C's default action and ends the reading thread.
    func stop() {
        guard writeEnd >= 0 else { return }
        cf_interrupt_pipe_remove()
        close(writeEnd)
    }
}

/// A progress bar with rate and ETA on standard error.
final class Progress {
    private let total: Int?
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast

    init(total: Int?, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func update(done: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var line = "\r\(done)"
        if let total, total > 0 {
            let fraction = Swift.min(1, Double(done) / Double(total))
            let filled = Int(fraction * 30)
            let eta = rate > 0 ? Double(total - done) / rate : 0
            line = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                + "] \(done)/\(total)  \(Int(rate))/s  ETA \(Int(eta) / 60):" + String(format: "%02d", Int(eta) % 60)
        } else {
            line += " done  \(Int(rate))/s"
        }
        writeStandardErrorRaw(line + "\u{1B}[K")
    }

    func clear() {
        if enabled { writeStandardErrorRaw("\r\u{1B}[K") }
    }
}

func writeOutput(_ line: String) {
    print(line)
}

func writeError(_ line: String) {
    writeStandardErrorRaw(line + "\n")
}

func writeStandardErrorRaw(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
