import Futures
import RemoteCalls
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's side of MPI: it feeds what happens (messages from the ranks, heartbeats, submitted
/// calls, sessions, exit) to ``MPIRouterState``, which holds the rules, and performs the actions
/// that come out, outside its lock: messages are encoded there, in parallel, and handed to MPI in
/// the state's order by an ``MPISendSequencer``.
///
/// Every worker rank reports once when it starts (its cores, process id and host). From then
/// on rank 0 pings each rank every half second; any message from a rank counts as a sign of
/// life, and a rank silent for longer than the heartbeat timeout of the pools using it is lost:
/// the replies awaited from it fail with ``Futures/ExecutorError`` `.brokenMPIPool`, and every
/// open session that uses it is told, which breaks its pool.
final class MPIRootRouter: MPIEndpoint, @unchecked Sendable {
    /// Where one awaited reply is delivered.
    final class ReplySlot: @unchecked Sendable {
        private let lock = ConditionLock()
        private var outcome: Result<[ShareableValue], ExecutorError>?

        func resolve(_ outcome: Result<[ShareableValue], ExecutorError>) {
            lock.withLock {
                if self.outcome == nil { self.outcome = outcome }
                lock.broadcast()
            }
        }

        func wait() -> Result<[ShareableValue], ExecutorError> {
            lock.withLock {
                while outcome == nil { _ = lock.wait(until: nil) }
                return outcome!
            }
        }
    }

    /// How long rank 0's exit waits for worker ranks that have not reported yet.
    static let exitReportTimeout: Duration = .seconds(10)

    let runtime: MPIRuntime
    let size: Int
    private let sequencer: MPISendSequencer

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var state: MPIRouterState
    private var slots: [UInt64: ReplySlot] = [:]
    private var listeners: [Int64: @Sendable (ExecutorError, String) -> Void] = [:]

    init(runtime: MPIRuntime, size: Int) {
        self.runtime = runtime
        self.size = size
        state = MPIRouterState(size: size)
        sequencer = MPISendSequencer { runtime.send(bytes: $0.bytes, to: $0.destination, isWork: $0.isWork) }
    }

    // MARK: Performing actions

    /// Performs `actions` in order, outside the lock: sends are encoded and posted; deliveries
    /// resolve their slots; losses (break sessions, fail replies) run on a thread of their own,
    /// since breaking fails queued futures, whose callbacks must not run on (and could block) the
    /// MPI thread.
    private func perform(_ actions: [MPIRouterState.Action]) {
        var losses: [@Sendable () -> Void] = []
        for action in actions {
            switch action {
            case .send(let message, let rank, let ticket):
                sequencer.post(ticket, .init(destination: rank, bytes: MPIRuntime.encode(message.wire), isWork: message.isWork))
            case .deliver(let request, let outcomes):
                take([request]).first?.resolve(.success(outcomes))
            case .fail(let requests, let error):
                let slots = take(requests)
                losses.append { for slot in slots { slot.resolve(.failure(error)) } }
            case .breakSessions(let sessions, let error):
                let tell = lock.withLock { sessions.compactMap { listeners[$0] } }
                losses.append { for listener in tell { listener(error, Self.lostRankPrefix) } }
            case .end(let rank):
                Self.end(rank)
            case .ping(let rank):
                runtime.send(MPIRouterState.Message.ping.wire, to: rank, isWork: false)
            }
        }
        guard !losses.isEmpty else { return }
        let tell: @Sendable () -> Void = { [losses] in for loss in losses { loss() } }
        do {
            try DetachedThread.start(name: "cf-mpi-lost", pool: nil, tell)
        } catch {
            tell()
        }
    }

    /// Removes and returns the slots of `requests`.
    private func take(_ requests: [UInt64]) -> [ReplySlot] {
        lock.withLock { requests.compactMap { slots.removeValue(forKey: $0) } }
    }

    /// Runs `input` on the state under the lock, then performs its actions.
    private func update(_ input: (inout MPIRouterState) -> [MPIRouterState.Action]) {
        perform(lock.withLock { input(&state) })
    }

    // MARK: Ranks

    /// Waits until every worker rank reported (a rank lost since counts as reported), or
    /// `deadline`; returns the ranks that reported and are alive, and how many reported.
    func waitForRanks(until deadline: Deadline?) -> (live: [MPIRouterState.Rank], reported: Int) {
        lock.withLock {
            while !state.allReported {
                if !lock.wait(until: deadline), !state.allReported { break }
            }
            return (state.liveRanks, state.reportedCount)
        }
    }

    /// The error of a lost rank among `ranks`, if one is lost.
    func lostError(among ranks: some Sequence<Int>) -> ExecutorError? {
        lock.withLock { state.lostError(among: ranks) }
    }

    /// How many module messages rank 0 has sent (each module goes to each rank once).
    var modulesSent: Int { lock.withLock { state.modulesSent } }

    /// The ranks lost so far, with why.
    var lostRanks: [(rank: Int, reason: String)] { lock.withLock { state.lostRanks } }

    // MARK: Sessions

    /// Opens a session (one executor) on every live rank, with the module of a guest
    /// `initializer` first; `slots` gives the calls each rank the session uses may run at once
    /// (a rank it does not use gets one). ``watch(_:_:)`` says whom to tell when it breaks.
    func openSession(_ configuration: WorkerConfiguration, heartbeatTimeout: Duration, slots: [Int: Int], initializer: RemoteCall?) -> Int64 {
        let (id, actions) = lock.withLock {
            state.openSession(configuration, heartbeatTimeout: heartbeatTimeout, slots: slots, initializer: initializer)
        }
        perform(actions)
        return id
    }

    /// Tells `listener` when session `id` breaks: one of its ranks is lost (told at once when
    /// one already is), or ``breakSession(_:_:logPrefix:)`` is called.
    func watch(_ id: Int64, _ listener: @escaping @Sendable (ExecutorError, String) -> Void) {
        let lost: ExecutorError? = lock.withLock {
            listeners[id] = listener
            return state.lostError(inSession: id)
        }
        if let lost { listener(lost, Self.lostRankPrefix) }
    }

    /// Breaks session `id`'s pool with `error`, logged after `logPrefix`.
    func breakSession(_ id: Int64, _ error: ExecutorError, logPrefix: String) {
        lock.withLock { listeners[id] }?(error, logPrefix)
    }

    /// How a lost rank's error is logged.
    static let lostRankPrefix = "MPI rank lost"

    /// Closes a session on every live rank: its pools there stop once their work is done.
    func closeSession(_ id: Int64) {
        update { state in
            listeners[id] = nil
            return state.closeSession(id)
        }
    }

    /// Asks the ranks a session uses to answer its calls that have not started as not started.
    func cancelSession(_ id: Int64) {
        update { $0.cancelSession(id) }
    }

    /// Sends `calls` of `session` to `rank` (with the modules it does not have yet) and waits
    /// for their outcomes.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.brokenMPIPool` when the rank is lost, before or
    ///   while it runs them.
    func run(_ calls: [RemoteCall], session: Int64, on rank: Int) throws(ExecutorError) -> [Result<ShareableValue, any Error>] {
        let slot = ReplySlot()
        let (request, actions) = try lock.withLock { () throws(ExecutorError) in
            let (request, actions) = try state.submit(calls, session: session, to: rank)
            slots[request] = slot
            return (request, actions)
        }
        var tooLarge: Int?
        for action in actions {
            guard case .send(let message, _, let ticket) = action, case .calls = message else {
                perform([action])
                continue
            }
            let bytes = MPIRuntime.encode(message.wire)
            if bytes.count > RemoteWire.maximumMessageBytes {
                tooLarge = bytes.count
                sequencer.post(ticket, nil)
            } else {
                sequencer.post(ticket, .init(destination: rank, bytes: bytes, isWork: true))
            }
        }
        if let tooLarge {
            lock.withLock {
                state.withdraw(request)
                slots[request] = nil
            }
            let error = NotShareableError(
                "\(calls.count) calls of \(tooLarge) bytes in all cannot travel in one MPI message (the limit is "
                    + "\(RemoteWire.maximumMessageBytes) bytes): send fewer or smaller arguments per chunk")
            return calls.map { _ in .failure(error) }
        }
        let outcomes = try slot.wait().get()
        guard outcomes.count == calls.count else {
            update { $0.rankFailed(rank, "it answered \(calls.count) calls with \(outcomes.count) outcomes") }
            throw ExecutorError(.brokenMPIPool, "MPI rank \(rank) broke the protocol")
        }
        return outcomes.map { outcome in
            (try? CallOutcome(wire: outcome).result) ?? .failure(RemoteError(.jobFailed, "MPI rank \(rank) sent an unreadable outcome"))
        }
    }

    // MARK: End

    /// Tells every worker rank to end and ends MPI here; called once, as the program exits,
    /// after the pools were joined.
    func endWorkers() {
        // Ranks still starting (a program that returns at once) are waited for, up to a bound:
        // MPI_Finalize needs every rank, and ending without it makes the launcher kill them all.
        _ = waitForRanks(until: Deadline.after(Self.exitReportTimeout))
        let (actions, finalize) = lock.withLock { state.exit() }
        perform(actions)
        // A message still being encoded elsewhere (a close from a detached thread) holds the exit
        // messages behind it in the sequencer: they reach MPI before it finishes, up to a bound.
        let last = actions.compactMap { if case .send(_, _, let ticket) = $0 { ticket } else { nil } }.max()
        if let last { sequencer.waitUntilHandedOver(through: last, until: Deadline.after(.seconds(5))) }
        runtime.finish(finalize: finalize, timeout: .seconds(5))
        // Nothing answers from here on: whatever still waits fails rather than waiting for ever.
        update { $0.exited() }
    }

    /// Ends `rank`'s process with SIGKILL when it is on this host and still this launch's program
    /// (the same executable, checked through `/proc`, and never rank 0 itself, whatever pid the
    /// rank reported); one on another host cannot be reached.
    private static func end(_ rank: MPIRouterState.Rank) {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        guard rank.pid > 0, pid_t(rank.pid) != getpid(), rank.host == cText(host), let theirs = executable(of: "/proc/\(rank.pid)/exe"),
            theirs == executable(of: "/proc/self/exe")
        else { return }
        kill(pid_t(rank.pid), SIGKILL)
        futuresLogger.warning("MPI rank \(rank.rank) (pid \(rank.pid)) was lost for its silence and is still running: ended")
    }

    /// The target of the `/proc` link `path`, or `nil`.
    private static func executable(of path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }

    // MARK: MPIEndpoint

    func received(_ message: ShareableValue, from source: Int) -> Bool {
        guard let (tag, fields) = MPIMessage.parse(message) else { return false }
        let now = Deadline.now
        switch tag {
        case MPIMessage.ready:
            guard fields.count == 5, case .int(let cores) = fields[1], case .int(let pid) = fields[2],
                case .string(let host) = fields[3], case .int(let version) = fields[4]
            else { return false }
            update { state in
                defer { lock.broadcast() }
                return state.rankReported(source, cores: Int(cores), pid: Int(pid), host: host, version: version, now: now)
            }
            return false
        case MPIMessage.reply:
            guard fields.count == 3, case .int(let id) = fields[1], case .array(let outcomes) = fields[2] else { return false }
            update { $0.replied(source, request: UInt64(bitPattern: id), outcomes: outcomes, now: now) }
            return true
        default:
            lock.withLock { state.heard(from: source, now: now) }
            return false
        }
    }

    func sendFailed(to destination: Int, _ reason: String) {
        update { $0.rankFailed(destination, reason) }
    }

    func receivedUnreadable(from source: Int, _ reason: String) {
        update { $0.rankFailed(source, "it sent \(reason)") }
    }

    func tick(now: Deadline) {
        update { $0.tick(now: now) }
    }

    var isBusy: Bool { lock.withLock { !state.pending.isEmpty } }
}
