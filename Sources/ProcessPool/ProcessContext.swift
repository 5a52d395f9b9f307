package import Futures
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Calls sent to a worker process together, each with the future it resolves: the process
/// pool's task.
///
/// A plain submission is a batch of one; `map(chunkSize:)` makes bigger ones. Starting the batch
/// starts every call not cancelled (as Python's process pool marks calls running when it queues
/// them for a worker); cancelling or failing it cancels or fails them all.
package final class CallBatch: WorkerTask, @unchecked Sendable {
    package typealias Output = [Result<ShareableValue, any Error>]

    package struct Element: Sendable {
        package let handle: any FutureHandle
        package let call: RemoteCall
        package let resolve: @Sendable (Result<ShareableValue, any Error>) -> Void
    }

    package let elements: [Element]
    /// The elements that started (written once, by ``start()``, before the batch runs).
    package private(set) var started: [Element] = []

    package init(_ elements: [Element]) { self.elements = elements }

    /// The element for `call`, or `nil` when the call's arguments could not be encoded (the
    /// future has then already failed).
    ///
    /// - Throws: ``Futures/NotShareableError`` for a call with no remote form.
    package static func element<Success>(_ call: Call<Success>, _ future: Future<Success>) throws -> Element? {
        switch call.remote {
        case nil:
            throw NotShareableError("\(call.summary) is host code and cannot run in a worker process")
        case .unencodable(let error)?:
            future.complete(.failure(error))
            return nil
        case .invocation(let form)? where (form as? GuestInvocation)?.arguments.contains(where: containsQueue) == true:
            throw NotShareableError("queues live in one process: \(call.summary) cannot take one to a worker process")
        case let remote?:
            let decode = call.decode
            if let forwarding = remote.guestInvocation?.forwardingOutput() {
                // A WASI call whose output goes to a destination in this process: the worker
                // returns it with the value, and it is delivered here.
                return Element(handle: future, call: .invocation(forwarding.invocation)) { outcome in
                    future.complete(outcome.flatMap { value in Result { try decode(forwarding.unwrap(value)) } })
                }
            }
            return Element(handle: future, call: remote) { outcome in
                future.complete(outcome.flatMap { value in Result { try decode(value) } })
            }
        }
    }

    /// The futures for `calls` and the batches that resolve them, `chunkSize` calls per batch.
    ///
    /// - Throws: ``Futures/NotShareableError`` for a host closure, or a call that takes a queue;
    ///   ``Futures/ExecutorError`` `.invalidArgument` for a `chunkSize` below 1.
    package static func batches<Success: Sendable>(
        for calls: [Call<Success>], chunkSize: Int
    ) throws -> (futures: [Future<Success>], batches: [CallBatch]) {
        guard chunkSize >= 1 else {
            throw ExecutorError(.invalidArgument, "chunkSize must be >= 1, got \(chunkSize)")
        }
        var futures: [Future<Success>] = []
        var elements: [Element] = []
        for call in calls {
            let future = Future<Success>()
            futures.append(future)
            if let element = try element(call, future) { elements.append(element) }
        }
        let batches = stride(from: 0, to: elements.count, by: chunkSize).map { start in
            CallBatch(Array(elements[start..<min(start + chunkSize, elements.count)]))
        }
        return (futures, batches)
    }

    /// Runs the started calls of every batch in `batch` as one request through `send`, and
    /// splits the outcomes back per batch; an error from `send` fails every batch.
    package static func run(
        _ batch: [CallBatch], send: ([RemoteCall]) throws -> [Result<ShareableValue, any Error>]
    ) -> [Result<Output, any Error>] {
        let calls = batch.flatMap { $0.started.map(\.call) }
        let results: [Result<ShareableValue, any Error>]
        do {
            results = try send(calls)
        } catch {
            return batch.map { _ in .failure(error) }
        }
        var offset = 0
        return batch.map { task in
            let count = task.started.count
            defer { offset += count }
            return .success(Array(results[offset..<offset + count]))
        }
    }

    package var isAwaited: Bool { true }

    package func start() -> Bool {
        started = elements.filter { (try? $0.handle.setRunningOrNotifyCancel()) == true }
        return !started.isEmpty
    }

    package func cancel() {
        for element in elements { element.handle.cancel() }
    }

    package func fail(_ error: ExecutorError) {
        for element in elements { try? element.handle.setError(error) }
    }

    package func finish(_ outcome: Result<Output, any Error>) {
        switch outcome {
        case .success(let results):
            for (element, result) in zip(started, results) { element.resolve(result) }
        case .failure(let error):
            for element in started { element.resolve(.failure(error)) }
        }
    }
}

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

    init(setup: Setup) { self.setup = setup }

    mutating func initialize() throws {
        process = try start()
    }

    /// Short tasks go to the worker process in batches of up to this many, one round trip each.
    var batchLimit: Int { 64 }
    static var runsBatchesTogether: Bool { true }

    mutating func run(_ task: CallBatch) throws -> CallBatch.Output {
        try send(task.started.map(\.call))
    }

    mutating func run(batch: [CallBatch]) -> [Result<CallBatch.Output, any Error>] {
        CallBatch.run(batch) { calls in try send(calls) }
    }

    /// Sends `calls` to the worker process in one request and returns their outcomes. Under the
    /// compiled engine, their modules are built here first, once, under the build budget: a
    /// module that cannot be built fails its own calls, never the pool or this process.
    private mutating func send(_ calls: [RemoteCall]) throws -> [Result<ShareableValue, any Error>] {
        guard setup.engine != .wasmKit else { return try sendBuilt(calls) }
        var refused: [Int: any Error] = [:]
        for (index, call) in calls.enumerated() {
            guard let module = call.guestInvocation?.module else { continue }
            if let error = CompiledEngine.prepareForWorkers(module, engine: setup.engine) { refused[index] = error }
        }
        guard !refused.isEmpty else { return try sendBuilt(calls) }
        let runnable = calls.indices.filter { refused[$0] == nil }
        var results = runnable.isEmpty ? [] : try sendBuilt(runnable.map { calls[$0] })[...]
        return calls.indices.map { index in
            if let error = refused[index] { return .failure(error) }
            return results.popFirst()!
        }
    }

    /// Sends `calls`, whose modules are ready, to the worker process in one request.
    private mutating func sendBuilt(_ calls: [RemoteCall]) throws -> [Result<ShareableValue, any Error>] {
        let process = try self.process ?? start()
        self.process = process
        let describe = calls.count == 1 ? describeCall(calls[0]) : "a batch of \(calls.count) calls"
        do {
            try sendModules(for: calls, to: process)
            let results: [Result<ShareableValue, any Error>]
            let deadline = replyDeadline(for: calls)
            let stopped = setup.stoppedWorkerTimeout
            if calls.count == 1 {
                results = [
                    try WireMessage.decodeOutcome(
                        process.request(WireMessage.request(for: calls[0]), deadline: deadline, stoppedTimeout: stopped))
                ]
            } else {
                let reply = try process.request(
                    [.int(WireMessage.batch), .array(calls.map(WireMessage.request))], deadline: deadline, stoppedTimeout: stopped)
                guard case .array(let fields) = reply, fields.count == 2, fields[0] == .int(WireMessage.batchResult),
                    case .array(let outcomes) = fields[1], outcomes.count == calls.count
                else { throw ChannelError.malformed("expected a batch result for \(calls.count) calls") }
                results = try outcomes.map { try WireMessage.decodeOutcome($0) }
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
        do {
            try process.post(.array([.int(WireMessage.configure)] + WireMessage.fields(of: setup.limits, engine: setup.engine)))
            if let initializer = setup.initializer {
                try sendModules(for: [initializer], to: process)
                let request: ShareableValue = [.int(WireMessage.initialize), WireMessage.request(for: initializer)]
                let reply = try process.request(
                    request, deadline: replyDeadline(for: [initializer]), stoppedTimeout: setup.stoppedWorkerTimeout)
                if case .failure(let error) = try WireMessage.decodeOutcome(reply) {
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
            message = "A worker process broke the protocol while running \(what): worker \(process.pid) sent a malformed "
                + "frame (\(detail)) and was killed; the next task starts a new worker"
        } else if case ChannelError.unresponsive(let detail) = error {
            message = "A worker process was killed while running \(what): worker \(process.pid) did not answer, \(detail); "
                + "the next task starts a new worker"
        } else {
            let how = exit.map { "\($0)" } ?? "stopped responding"
            message = "A process in the process pool was terminated abruptly while running \(what): worker \(process.pid) \(how)"
        }
        return ExecutorError(.brokenProcessPool, message, workerExit: exit)
    }
}

private func containsQueue(_ value: ShareableValue) -> Bool {
    switch value {
    case .queue: true
    case .array(let elements): elements.contains(where: containsQueue)
    default: false
    }
}

private func describeCall(_ call: RemoteCall) -> String {
    switch call {
    case .job(let name, _): "job '\(name)'"
    case .invocation(let form): "guest function '\((form as? GuestInvocation)?.function ?? "?")'"
    case .unencodable: "a call"
    }
}
