import Futures
import RemoteCalls
import Tracing
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The process pool's worker context: one child process per worker thread, started when the
/// worker starts, replaced when it dies or has run `maxTasksPerChild` tasks, stopped at the end.
struct ProcessContext: WorkerContext {
    struct Setup: Sendable {
        let executable: String
        let environment: [String: String]
        let maxTasksPerChild: Int?
        let limits: InterpreterLimits
        let engine: GuestEngine
        let initializer: RemoteCall?
        let registry: WorkerRegistry
        /// How long a worker may stay stopped while it owes replies before it is killed.
        let stoppedWorkerTimeout: Duration
    }

    /// Added to the sum of the calls' time limits before a silent worker is killed: the worker
    /// enforces the limits itself, and this only catches one that cannot (blocked outside guest
    /// code).
    static let timeLimitGrace: Duration = .seconds(5)

    let setup: Setup
    private var process: ChildWorker?
    private var tasksRun = 0
    /// The pool's metrics and tracer, when it has either (bytes, round trips, replacements; the
    /// trace context sent with each call).
    private var instruments: PoolInstruments?
    /// Whether a worker process was started before: the next start replaces one.
    private var startedBefore = false

    init(setup: Setup) { self.setup = setup }

    static var recordsSpans: Bool { false }

    mutating func instrument(with instruments: PoolInstruments) { self.instruments = instruments }

    mutating func initialize() throws {
        process = try start()
    }

    /// Short tasks go to the worker process in batches of up to this many, one round trip each.
    var batchLimit: Int { 64 }
    static var runsBatchesTogether: Bool { true }

    mutating func run(_ task: CallBatch) throws -> CallBatch.Output {
        let carrier = task.traceCarrier(tracer: instruments?.tracer)
        return try send(task.started.map(\.call), traces: carrier == nil ? [] : Array(repeating: carrier, count: task.started.count))
    }

    mutating func run(batch: [CallBatch]) -> [Result<CallBatch.Output, any Error>] {
        CallBatch.run(batch, tracer: instruments?.tracer) { calls, traces in try send(calls, traces: traces) }
    }

    /// Sends `calls` to the worker process in one request and returns their outcomes. Under the
    /// compiled engine, their modules are built here first, once, under the build budget: a
    /// module that cannot be built fails its own calls, never the pool or this process.
    private mutating func send(_ calls: [RemoteCall], traces: [[String: String]?]) throws -> [Result<ShareableValue, any Error>] {
        guard setup.engine != .wasmKit else { return try sendBuilt(calls, traces: traces) }
        var refused: [Int: any Error] = [:]
        for (index, call) in calls.enumerated() {
            guard let module = call.guestInvocation?.module else { continue }
            if let error = CompiledEngine.prepareForWorkers(module, engine: setup.engine) { refused[index] = error }
        }
        guard !refused.isEmpty else { return try sendBuilt(calls, traces: traces) }
        let runnable = calls.indices.filter { refused[$0] == nil }
        var results =
            runnable.isEmpty ? [] : try sendBuilt(runnable.map { calls[$0] }, traces: traces.isEmpty ? [] : runnable.map { traces[$0] })[...]
        return calls.indices.map { index in
            if let error = refused[index] { return .failure(error) }
            return results.popFirst()!
        }
    }

    /// Sends `calls`, whose modules are ready, to the worker process in one request.
    private mutating func sendBuilt(_ calls: [RemoteCall], traces: [[String: String]?]) throws -> [Result<ShareableValue, any Error>] {
        let process = try self.process ?? start()
        self.process = process
        let describe = calls.count == 1 ? describeCall(calls[0]) : "a batch of \(calls.count) calls"
        func request(_ index: Int) -> ShareableValue { WireMessage.request(for: calls[index], trace: traces.isEmpty ? nil : traces[index]) }
        let metrics = instruments?.metrics
        let sentBefore = process.bytesSent
        let receivedBefore = process.bytesReceived
        let sentAt = metrics == nil ? 0 : Deadline.now.nanoseconds
        defer {
            if let metrics {
                metrics.roundTrip?.recordNanoseconds(Int64(clamping: Deadline.now.nanoseconds &- sentAt))
                metrics.bytesSent?.increment(by: process.bytesSent - sentBefore)
                metrics.bytesReceived?.increment(by: process.bytesReceived - receivedBefore)
            }
        }
        do {
            try sendModules(for: calls, to: process)
            let results: [Result<ShareableValue, any Error>]
            let deadline = replyDeadline(for: calls)
            let stopped = setup.stoppedWorkerTimeout
            if calls.count == 1 {
                results = [
                    try CallOutcome(
                        wire: process.request(request(0), deadline: deadline, stoppedTimeout: stopped)
                    ).result
                ]
            } else {
                let reply = try process.request(
                    [.int(WireMessage.batch), .array(calls.indices.map(request))], deadline: deadline, stoppedTimeout: stopped)
                guard case .array(let fields) = reply, fields.count == 2, fields[0] == .int(WireMessage.batchResult),
                    case .array(let outcomes) = fields[1], outcomes.count == calls.count
                else { throw ChannelError.malformed("expected a batch result for \(calls.count) calls") }
                results = try outcomes.map { try CallOutcome(wire: $0).result }
            }
            tasksRun += calls.count
            if let limit = setup.maxTasksPerChild, tasksRun >= limit { retire() }
            return results
        } catch {
            throw died(process, while: describe, because: error)
        }
    }

    mutating func finalize() {
        retire()
    }

    /// When the replies to `calls` are overdue: the sum of their time limits plus a grace, or
    /// `nil` when a call has no limit (a job, or a guest call without a time limit).
    private func replyDeadline(for calls: [RemoteCall]) -> Deadline? {
        var total = Self.timeLimitGrace
        for call in calls {
            guard let invocation = call.guestInvocation, let limit = invocation.timeLimit ?? setup.limits.timeLimit else {
                return nil
            }
            total += limit
        }
        return Deadline.after(total)
    }

    /// Starts a worker process, configures it and runs the initializer.
    private mutating func start() throws -> ChildWorker {
        var environment = setup.environment
        if setup.engine != .wasmKit {
            // A private cache (no HOME) is shared with the workers, which load what this process builds.
            environment.merge(CompiledEngine.environmentForWorkers) { mine, _ in mine }
        }
        let process = try ChildWorker.spawn(executable: setup.executable, environment: environment)
        setup.registry.insert(process.pid)
        if startedBefore { instruments?.metrics?.workerReplacements.increment() }
        startedBefore = true
        do {
            try process.post(.array([.int(WireMessage.configure)] + WorkerConfiguration(limits: setup.limits, engine: setup.engine).wire))
            if let initializer = setup.initializer {
                try sendModules(for: [initializer], to: process)
                let request: ShareableValue = [.int(WireMessage.initialize), WireMessage.request(for: initializer)]
                let reply = try process.request(
                    request, deadline: replyDeadline(for: [initializer]), stoppedTimeout: setup.stoppedWorkerTimeout)
                if case .failure(let error) = try CallOutcome(wire: reply).result {
                    process.stop()
                    setup.registry.remove(process.pid)
                    throw error
                }
            }
        } catch let error as ChannelError {
            throw died(process, while: "its initializer", because: error)
        }
        return process
    }

    /// Sends the modules `calls` need that the process does not have yet.
    private func sendModules(for calls: [RemoteCall], to process: ChildWorker) throws(ChannelError) {
        for call in calls {
            guard let module = call.guestInvocation?.module, !process.loadedModules.contains(module.id) else { continue }
            try process.post([
                .int(WireMessage.loadModule), .int(Int64(module.id)), .string(module.name), .bytes(module.wasmBytes),
                module.wasiKind == nil ? .none : module.wasi.wireValue,
            ])
            process.loadedModules.insert(module.id)
        }
    }

    /// Stops the current process gracefully.
    private mutating func retire() {
        guard let process else { return }
        process.stop()
        setup.registry.remove(process.pid)
        self.process = nil
        tasksRun = 0
    }

    /// The error for a process that failed while running `what`: it is reaped and forgotten, so
    /// the next task starts a new one.
    private mutating func died(_ process: ChildWorker, while what: String, because error: any Error) -> ExecutorError {
        var killed = false
        switch error {
        case ChannelError.malformed, ChannelError.unresponsive: killed = true
        default: break
        }
        let exit = killed ? process.stop(kill: true) : process.reapAfterFailure()
        setup.registry.remove(process.pid)
        if self.process === process { self.process = nil }
        tasksRun = 0
        if let forced = setup.registry.forcedShutdown {
            return ExecutorError(
                .brokenProcessPool, "worker process \(process.pid) was stopped by \(forced) while running \(what)",
                workerExit: exit)
        }
        let message: String
        if case ChannelError.malformed(let detail) = error {
            message =
                "A worker process broke the protocol while running \(what): worker \(process.pid) sent a malformed "
                + "frame (\(detail)) and was killed; the next task starts a new worker"
        } else if case ChannelError.unresponsive(let detail) = error {
            message =
                "A worker process was killed while running \(what): worker \(process.pid) did not answer, \(detail); "
                + "the next task starts a new worker"
        } else {
            let how = exit.map { "\($0)" } ?? "stopped responding"
            message = "A process in the process pool was terminated abruptly while running \(what): worker \(process.pid) \(how)"
        }
        return ExecutorError(.brokenProcessPool, message, workerExit: exit)
    }
}

private func describeCall(_ call: RemoteCall) -> String {
    switch call {
    case .job(let name, _): "job '\(name)'"
    case .invocation(let form): "guest function '\((form as? GuestInvocation)?.function ?? "?")'"
    case .unencodable: "a call"
    }
}
