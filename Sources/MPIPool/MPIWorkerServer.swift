import Futures
import RemoteCalls
import Synchronization
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// A worker rank's side of MPI: it runs the calls rank 0 sends on pools of its own (interpreters
/// for guest calls, threads for jobs), one pair per session (executor) on rank 0, each with as
/// many workers as that executor has slots on this rank, and answers pings.
///
/// Everything but the pools' completions runs on the MPI thread. A rank that hears nothing from
/// rank 0 for ``orphanTimeout`` (rank 0 pings every half second) decides it is orphaned and exits.
final class MPIWorkerServer: MPIEndpoint, @unchecked Sendable {
    /// The pools of one session, made when first needed.
    final class Session: @unchecked Sendable {
        let limits: InterpreterLimits
        let engine: GuestEngine
        /// The calls of this session that may run at once here: the slots rank 0's pool has on
        /// this rank. Each pool of the session has that many workers.
        let slots: Int
        /// The pool's initializer call, as rank 0 sent it.
        let initializer: ShareableValue?
        /// The initializer, ready for the pool of its kind, once decoded.
        var initializerCalls: Result<(guest: Call<Void>?, job: Call<Void>?), RemoteError>?
        /// Whether rank 0 shut the pool down with `cancelFutures`: calls not started are answered
        /// as not started (read by the pools' threads, between calls).
        let cancelled = Atomic<Bool>(false)
        private var interpreters: InterpreterPoolExecutor?
        private var threads: ThreadPoolExecutor?

        init(limits: InterpreterLimits, engine: GuestEngine, slots: Int, initializer: ShareableValue?) {
            self.limits = limits
            self.engine = engine
            self.slots = slots
            self.initializer = initializer
        }

        func interpreterPool(initializer: Call<Void>?) throws -> InterpreterPoolExecutor {
            if let interpreters { return interpreters }
            let pool = try InterpreterPoolExecutor(maxWorkers: slots, limits: limits, engine: engine, initializer: initializer)
            interpreters = pool
            return pool
        }

        func threadPool(initializer: Call<Void>?) throws -> ThreadPoolExecutor {
            if let threads { return threads }
            let pool = try ThreadPoolExecutor(maxWorkers: slots, initializer: initializer)
            threads = pool
            return pool
        }

        /// Answers every call not started as not started, from now on: the pools' queues are
        /// cancelled, and a run of calls not started yet will not start.
        func cancel() {
            cancelled.store(true, ordering: .releasing)
            close(cancel: true)
        }

        /// Stops the pools: queued work is cancelled when `cancel`, running work finishes.
        func close(cancel: Bool) {
            interpreters?.shutdown(wait: false, cancelFutures: cancel)
            threads?.shutdown(wait: false, cancelFutures: cancel)
        }
    }

    /// How long a worker rank waits to hear from rank 0 before it exits.
    static let orphanTimeout: Duration = .seconds(60)

    let runtime: MPIRuntime
    let jobs: [String: any AnyJob]
    /// The host functions the program registered, for every module loaded here.
    let linker: Linker
    let cores: Int
    // Used on the MPI thread only.
    private var modules: [String: LoadedModule] = [:]
    private var sessions: [Int64: Session] = [:]
    private var lastHeard = Deadline.now
    /// A module as rank 0 sent it, and what loading it under some limits gave.
    private struct LoadedModule {
        let name: String
        let bytes: [UInt8]
        let wasi: WASIOptions
        var limits: InterpreterLimits
        var result: Result<GuestModule, ModuleError>

        init(name: String, bytes: [UInt8], wasi: WASIOptions, limits: InterpreterLimits, linker: Linker) {
            self.name = name
            self.bytes = bytes
            self.wasi = wasi
            self.limits = limits
            result = Result { () throws(ModuleError) in try GuestModule(bytes: bytes, name: name, limits: limits, wasi: wasi, linker: linker) }
        }
    }

    /// Calls started and not yet answered (read by the MPI thread for its back-off).
    private let running = Atomic<Int>(0)

    init(runtime: MPIRuntime, jobs: [any AnyJob], linker: Linker) {
        self.linker = linker
        self.runtime = runtime
        var registry: [String: any AnyJob] = [:]
        for job in jobs where registry[job.name] == nil { registry[job.name] = job }
        self.jobs = registry
        cores = ProcessorCount.available
    }

    /// Reports this rank to rank 0.
    func announce() {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        runtime.send(
            [
                .int(MPIMessage.ready), .int(Int64(cores)), .int(Int64(getpid())), .string(cText(host)),
                .int(MPIMessage.protocolVersion),
            ], to: 0)
    }

    func received(_ message: ShareableValue, from source: Int) -> Bool {
        guard source == 0, let (tag, fields) = MPIMessage.parse(message) else { return false }
        lastHeard = Deadline.now
        handle(tag, fields)
        return tag == MPIMessage.calls || tag == MPIMessage.module
    }

    private func handle(_ tag: Int64, _ fields: [ShareableValue]) {
        switch tag {
        case MPIMessage.open:
            guard fields.count == 12, case .int(let id) = fields[1], case .int(let slots) = fields[11], slots >= 1 else { return }
            let configuration = (try? WorkerConfiguration(wire: fields[2..<10])) ?? WorkerConfiguration(limits: .default, engine: .wasmKit)
            sessions[id] = Session(
                limits: configuration.limits, engine: configuration.engine, slots: Int(slots),
                initializer: fields[10] == ShareableValue.none ? ShareableValue?.none : .some(fields[10]))
        case MPIMessage.module:
            guard fields.count == 6, case .string(let key) = fields[1], case .string(let name) = fields[2],
                case .bytes(let bytes) = fields[3], case .int(let session) = fields[4], modules[key] == nil
            else { return }
            modules[key] = LoadedModule(
                name: name, bytes: bytes, wasi: WASIOptions(wireValue: fields[5]) ?? .default,
                limits: sessions[session]?.limits ?? .default, linker: linker)
        case MPIMessage.calls:
            guard fields.count == 4, case .int(let session) = fields[1], case .int(let id) = fields[2],
                case .array(let calls) = fields[3]
            else { return }
            run(calls, session: sessions[session], request: id)
        case MPIMessage.close:
            guard fields.count == 2, case .int(let id) = fields[1] else { return }
            sessions.removeValue(forKey: id)?.close(cancel: false)
        case MPIMessage.cancel:
            guard fields.count == 2, case .int(let id) = fields[1] else { return }
            sessions[id]?.cancel()
        case MPIMessage.ping:
            runtime.send([.int(MPIMessage.pong)], to: 0, isWork: false)
        case MPIMessage.exit:
            end(finalize: fields.count < 2 || fields[1] == .bool(true))
        default:
            break
        }
    }

    /// Runs the calls of one request on the session's pools, one after another (``OrderedCalls``);
    /// the reply goes out when the last of them is done.
    private func run(_ calls: [ShareableValue], session: Session?, request: Int64) {
        let reply = ReplyCollector(count: calls.count) { [self] outcomes in
            running.subtract(calls.count, ordering: .relaxed)
            var message = MPIRuntime.encode([.int(MPIMessage.reply), .int(request), .array(outcomes.map { CallOutcome($0).wire })])
            if message.count > RemoteWire.maximumMessageBytes {
                // Results too large for one message: each call fails instead, and none is lost.
                let error = NotShareableError(
                    "the results of \(calls.count) calls, \(message.count) bytes in all, cannot travel in one MPI message "
                        + "(the limit is \(RemoteWire.maximumMessageBytes) bytes)")
                message = MPIRuntime.encode(
                    [.int(MPIMessage.reply), .int(request), .array(calls.map { _ in CallOutcome(.failure(error)).wire })])
            }
            runtime.send(bytes: message, to: 0)
        }
        running.add(calls.count, ordering: .relaxed)
        if calls.isEmpty { reply.finish() }
        guard let session else {
            for index in calls.indices { reply.set(index, .failure(RemoteError(.jobFailed, "the MPI pool's session is closed on this rank"))) }
            return
        }
        var entries: [OrderedCalls.Entry] = []
        for (index, call) in calls.enumerated() {
            do {
                switch try prepare(call, limits: session.limits) {
                case .guest(let call): entries.append(.init(index: index, call: call, isGuest: true))
                case .job(let call): entries.append(.init(index: index, call: call, isGuest: false))
                }
            } catch {
                reply.set(index, .failure(error))
            }
        }
        let initializers: (guest: Call<Void>?, job: Call<Void>?)
        do {
            initializers = try initializerCalls(for: session)
        } catch {
            for entry in entries { reply.set(entry.index, .failure(error)) }
            return
        }
        // The pools are made here, on the MPI thread, which alone touches the session.
        let guestPool =
            entries.contains(where: \.isGuest)
            ? Result<any PoolExecutor, any Error> { try session.interpreterPool(initializer: initializers.guest) } : nil
        let jobPool =
            entries.contains(where: { !$0.isGuest })
            ? Result<any PoolExecutor, any Error> { try session.threadPool(initializer: initializers.job) } : nil
        OrderedCalls(entries: entries, session: session, guestPool: guestPool, jobPool: jobPool, reply: reply).start(at: 0)
    }

    /// The session's initializer, decoded once, for the pool of its kind.
    ///
    /// - Throws: ``RemoteCalls/RemoteError`` `.initializerFailed` when it cannot run here (an
    ///   unknown job, a module this rank refused).
    private func initializerCalls(for session: Session) throws(RemoteError) -> (guest: Call<Void>?, job: Call<Void>?) {
        if let decoded = session.initializerCalls { return try decoded.get() }
        var decoded: Result<(guest: Call<Void>?, job: Call<Void>?), RemoteError> = .success((nil, nil))
        if let initializer = session.initializer {
            do {
                switch try prepare(initializer, limits: session.limits) {
                case .guest(let call): decoded = .success((call.discardingResult(), nil))
                case .job(let call): decoded = .success((nil, call.discardingResult()))
                }
            } catch {
                decoded = .failure(RemoteError(.initializerFailed, "the initializer cannot run on this rank: \(error)"))
            }
        }
        session.initializerCalls = decoded
        return try decoded.get()
    }

    /// An outcome as rank 0 should see it: a pool of this rank broken by its initializer is
    /// ``RemoteCalls/RemoteError`` `.initializerFailed`, which breaks rank 0's pool. (A call the
    /// session's pools cancelled before it started is answered with ``notStarted`` where that is
    /// known: from its future's state, not from an error a job may throw itself.)
    static func remote(_ outcome: Result<ShareableValue, any Error>) -> Result<ShareableValue, any Error> {
        guard case .failure(let error as ExecutorError) = outcome, error.code.isBrokenExecutor else { return outcome }
        return .failure(RemoteError(.initializerFailed, error.message))
    }

    /// The outcome of a call dropped before it started.
    static let notStarted = RemoteError(.notStarted, "the MPI pool was shut down with cancelFutures before the call started")

    /// A call ready for the pool that runs its kind.
    private enum Prepared {
        case guest(Call<ShareableValue>)
        case job(Call<ShareableValue>)
    }

    /// Decodes one call.
    ///
    /// - Throws: ``RemoteCalls/RemoteError`` for an unreadable call or an unknown job; the
    ///   ``WasmInterpreters/ModuleError`` its module failed to load with.
    private func prepare(_ call: ShareableValue, limits: InterpreterLimits) throws -> Prepared {
        switch try CallRequest(wire: call).body {
        case .job(let name, let argument):
            guard let job = jobs[name] else {
                let known = jobs.keys.sorted().joined(separator: ", ")
                throw RemoteError(
                    .unknownJob,
                    "the worker program registers no job named '\(name)' (it registers: \(known.isEmpty ? "none" : known)); "
                        + "pass it to MPIWorker.runIfRequested(jobs:)")
            }
            return .job(Call { try job.invoke(encoded: argument) })
        case .guest(let call):
            guard case .key(let key) = call.module else { throw RemoteError(.jobFailed, "a guest call names its module by a process id") }
            guard var loaded = modules[key] else { throw RemoteError(.jobFailed, "this rank has no module \(key)") }
            if case .failure = loaded.result, loaded.limits != limits {
                // Refused under another pool's limits: this pool's may allow it.
                loaded = LoadedModule(name: loaded.name, bytes: loaded.bytes, wasi: loaded.wasi, limits: limits, linker: linker)
                modules[key] = loaded
            }
            let module = try loaded.result.get()
            let guest = GuestFunction<ShareableValue>(
                module: module, name: call.function, fuel: call.fuel, timeLimit: call.timeLimit, wasi: call.wasi)
            return .guest(guest.call(arguments: call.arguments))
        }
    }

    /// Ends this rank: the pools stop (queued work cancelled), MPI finalizes, the process exits.
    private func end(finalize: Bool) {
        for session in sessions.values { session.close(cancel: true) }
        sessions.removeAll()
        runtime.requestFinish(finalize: finalize, timeout: .seconds(5))
    }

    func receivedUnreadable(from source: Int, _ reason: String) {
        // Nothing to answer: the request id is unreadable too. Rank 0 checks the size of what it
        // sends and MPI delivers bytes intact, so this is not a message of this protocol.
    }

    func sendFailed(to destination: Int, _ reason: String) {
        // Rank 0 is gone: nothing is left to serve, and no one to finalize with.
        end(finalize: false)
    }

    func tick(now: Deadline) {
        let quiet = Duration.nanoseconds(Int64(truncatingIfNeeded: now.nanoseconds &- lastHeard.nanoseconds))
        if quiet > Self.orphanTimeout {
            lastHeard = now
            end(finalize: false)
        }
    }

    var isBusy: Bool { running.load(ordering: .relaxed) > 0 }
}

/// Collects the outcomes of one request's calls, and sends the reply when the last arrives.
private final class ReplyCollector: @unchecked Sendable {
    private let lock = ConditionLock()
    private var outcomes: [Result<ShareableValue, any Error>?]
    private var remaining: Int
    private let send: @Sendable ([Result<ShareableValue, any Error>]) -> Void

    init(count: Int, send: @escaping @Sendable ([Result<ShareableValue, any Error>]) -> Void) {
        outcomes = Array(repeating: nil, count: count)
        remaining = count
        self.send = send
    }

    func set(_ index: Int, _ outcome: Result<ShareableValue, any Error>) {
        let complete: [Result<ShareableValue, any Error>]? = lock.withLock {
            guard outcomes[index] == nil else { return nil }
            outcomes[index] = outcome
            remaining -= 1
            return remaining == 0 ? outcomes.map { $0! } : nil
        }
        if let complete { send(complete) }
    }

    func finish() { send([]) }
}

/// The calls of one request, by runs of one kind, one run after another: a run of jobs is one
/// task of the session's thread pool (its calls in turn), a run of guest calls is submitted to the
/// session's interpreter pool at once. Both pools have as many workers as rank 0's pool has slots
/// here, so a pool's `maxWorkers` is the most of its calls running at once on the ranks, however
/// they are chunked or batched.
private final class OrderedCalls: Sendable {
    struct Entry: Sendable {
        let index: Int
        let call: Call<ShareableValue>
        let isGuest: Bool
    }

    typealias Outcomes = [Result<ShareableValue, any Error>]

    let entries: [Entry]
    let session: MPIWorkerServer.Session
    let guestPool: Result<any PoolExecutor, any Error>?
    let jobPool: Result<any PoolExecutor, any Error>?
    let reply: ReplyCollector

    init(
        entries: [Entry], session: MPIWorkerServer.Session, guestPool: Result<any PoolExecutor, any Error>?,
        jobPool: Result<any PoolExecutor, any Error>?, reply: ReplyCollector
    ) {
        self.entries = entries
        self.session = session
        self.guestPool = guestPool
        self.jobPool = jobPool
        self.reply = reply
    }

    /// Runs the entries from `position` on: a run that finishes at once is taken in this loop,
    /// one that does not continues from its future's callback.
    func start(at position: Int) {
        var position = position
        while position < entries.count {
            let isGuest = entries[position].isGuest
            let end = entries[position...].firstIndex { $0.isGuest != isGuest } ?? entries.count
            let group = Array(entries[position..<end])
            position = end
            if session.cancelled.load(ordering: .acquiring) {
                for entry in group { reply.set(entry.index, .failure(MPIWorkerServer.notStarted)) }
                continue
            }
            let future: Future<Outcomes>
            do {
                future = try submit(group)
            } catch {
                // The session cancelled between the check above and the submission: not started.
                let cancelled = session.cancelled.load(ordering: .acquiring)
                for entry in group {
                    reply.set(entry.index, cancelled ? .failure(MPIWorkerServer.notStarted) : MPIWorkerServer.remote(.failure(error)))
                }
                continue
            }
            let next = position
            guard future.isDone else {
                future.addDoneCallback { [self] future in
                    deliver(group, future)
                    start(at: next)
                }
                return
            }
            deliver(group, future)
        }
    }

    /// The tasks of `group`, as one future of their outcomes in order.
    private func submit(_ group: [Entry]) throws -> Future<Outcomes> {
        if !group[0].isGuest {
            let bodies = group.map { $0.call.localBody! }
            let session = session
            return try jobPool!.get().submit(
                Call {
                    bodies.map { body in
                        session.cancelled.load(ordering: .acquiring) ? .failure(MPIWorkerServer.notStarted) : Result { try body() }
                    }
                })
        }
        let futures = try guestPool!.get().submit(contentsOf: group.map(\.call))
        let all = Future<Outcomes>()
        let remaining = Atomic<Int>(futures.count)
        for future in futures {
            future.addDoneCallback { _ in
                guard remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
                all.complete(
                    .success(
                        futures.map { future in
                            // Cancelled by the session's cancel before it started.
                            future.state == .cancelled ? .failure(MPIWorkerServer.notStarted) : Result { try future.result() }
                        }))
            }
        }
        return all
    }

    private func deliver(_ group: [Entry], _ future: Future<Outcomes>) {
        // A run of jobs whose task the session's cancel took off the queue: none started.
        let outcomes: Result<Outcomes, any Error> =
            future.state == .cancelled ? .failure(MPIWorkerServer.notStarted) : Result { try future.result() }
        for (offset, entry) in group.enumerated() {
            switch outcomes {
            case .success(let results): reply.set(entry.index, MPIWorkerServer.remote(results[offset]))
            case .failure(let error): reply.set(entry.index, MPIWorkerServer.remote(.failure(error)))
            }
        }
    }
}
