import Futures
import RemoteCalls
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's side of MPI: which worker ranks are alive, the replies awaited from them, the modules
/// each has, and the heartbeats that notice a rank that died or stopped answering.
///
/// Every worker rank reports once when it starts (its cores, process id and host). From then
/// on rank 0 pings each rank every ``pingInterval``; any message from a rank counts as a sign of
/// life, and a rank silent for longer than the heartbeat timeout of the pools using it is lost:
/// the replies awaited from it fail with ``Futures/ExecutorError`` `.brokenMPIPool`, and every
/// open session is told, which breaks its pool.
final class MPIRootRouter: MPIEndpoint, @unchecked Sendable {
    /// A worker rank, as it reported itself.
    struct Rank: Sendable {
        let rank: Int
        let cores: Int
        let pid: Int
        let host: String
        var lastHeard: Deadline
        var lastPing: Deadline
        var lost: String?
        /// Whether it was lost for its silence (stopped or hung), not for ending.
        var silent = false
    }

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

    /// What the router keeps of an open session.
    private struct SessionEntry {
        let heartbeatTimeout: Duration
        /// The ranks the session uses: only their loss concerns it.
        let ranks: Set<Int>
        let lost: @Sendable (ExecutorError) -> Void
    }

    static let pingInterval: Duration = .milliseconds(500)
    /// How long rank 0's exit waits for worker ranks that have not reported yet.
    static let exitReportTimeout: Duration = .seconds(10)
    /// How long a silent rank is tolerated when no session is open.
    static let defaultHeartbeatTimeout: Duration = .seconds(10)

    let runtime: MPIRuntime
    let size: Int

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var ranks: [Int: Rank] = [:]
    private var pending: [UInt64: (rank: Int, slot: ReplySlot)] = [:]
    private var nextRequest: UInt64 = 1
    private var nextSession: Int64 = 1
    private var sessions: [Int64: SessionEntry] = [:]
    private var sentModules: [Int: Set<String>] = [:]
    /// Content keys already given to modules: a key names one byte string only.
    private var keyedModules: [String: [UInt8]] = [:]
    private var moduleKeys: [Int: String] = [:]
    private var ending = false
    private var lastTick: Deadline?
    /// Module messages sent so far, over all ranks.
    private var modulesSentCount = 0

    init(runtime: MPIRuntime, size: Int) {
        self.runtime = runtime
        self.size = size
    }

    // MARK: Ranks

    /// Waits until every worker rank reported (a rank lost since counts as reported), or
    /// `deadline`; returns the ranks that reported and are alive, and how many reported.
    func waitForRanks(until deadline: Deadline?) -> (live: [Rank], reported: Int) {
        lock.withLock {
            while ranks.count < size - 1 {
                if !lock.wait(until: deadline), ranks.count < size - 1 { break }
            }
            return (ranks.values.filter { $0.lost == nil }.sorted { $0.rank < $1.rank }, ranks.count)
        }
    }

    /// The error of a lost rank among `ranks`, if one is lost.
    func lostError(among ranks: [Int]) -> ExecutorError? {
        lock.withLock {
            for rank in ranks {
                if let entry = self.ranks[rank], let reason = entry.lost { return Self.lostError(entry, reason) }
            }
            return nil
        }
    }

    private static func lostError(_ entry: Rank, _ reason: String) -> ExecutorError {
        ExecutorError(.brokenMPIPool, "MPI rank \(entry.rank) (pid \(entry.pid) on \(entry.host)) was lost: \(reason)")
    }

    /// How many module messages rank 0 has sent (each module goes to each rank once).
    var modulesSent: Int { lock.withLock { modulesSentCount } }

    /// The ranks lost so far, with why.
    var lostRanks: [(rank: Int, reason: String)] {
        lock.withLock { ranks.values.compactMap { rank in rank.lost.map { (rank.rank, $0) } }.sorted { $0.rank < $1.rank } }
    }

    /// Declares `rank` lost: tells the sessions that use it, then fails its awaited replies, on a
    /// thread of its own: breaking fails queued futures, whose callbacks must not run on (and
    /// could block) the MPI thread. The pools break first, so that whoever sees a future fail with
    /// `.brokenMPIPool` finds its pool broken too.
    private func lose(_ rank: Int, _ reason: String) {
        let (slots, listeners, error): ([ReplySlot], [@Sendable (ExecutorError) -> Void], ExecutorError?) = lock.withLock {
            guard var entry = ranks[rank], entry.lost == nil, !ending else { return ([], [], nil) }
            entry.lost = reason
            ranks[rank] = entry
            let error = Self.lostError(entry, reason)
            let slots = pending.filter { $0.value.rank == rank }.map(\.value.slot)
            pending = pending.filter { $0.value.rank != rank }
            return (slots, sessions.values.filter { $0.ranks.contains(rank) }.map(\.lost), error)
        }
        guard let error else { return }
        let tell = { @Sendable in
            for listener in listeners { listener(error) }
            for slot in slots { slot.resolve(.failure(error)) }
        }
        do {
            try DetachedThread.start(name: "cf-mpi-lost", pool: nil, tell)
        } catch {
            tell()
        }
    }

    // MARK: Sessions

    /// Opens a session (one executor) on every live rank, with the module of a guest
    /// `initializer` first; `slots` gives the calls each rank the session uses may run at once
    /// (a rank it does not use gets one); `lost` is told when one of those ranks is.
    func openSession(
        limits: InterpreterLimits, engine: GuestEngine, heartbeatTimeout: Duration, slots: [Int: Int], initializer: RemoteCall?,
        lost: @escaping @Sendable (ExecutorError) -> Void
    ) -> Int64 {
        let used = Set(slots.keys)
        return lock.withLock {
            let id = nextSession
            nextSession += 1
            sessions[id] = SessionEntry(heartbeatTimeout: heartbeatTimeout, ranks: used, lost: lost)
            let initial = initializer.map { call in MPIMessage.request(for: call) { key(for: $0) } }
            let fields = [.int(MPIMessage.open), .int(id)] + WorkerConfiguration(limits: limits, engine: engine).wire
                + [initial ?? ShareableValue.none]
            for rank in ranks.values where rank.lost == nil {
                if let module = initializer?.guestInvocation?.module { sendModule(module, session: id, to: rank.rank) }
                runtime.send(bytes: MPIRuntime.encode(.array(fields + [.int(Int64(slots[rank.rank] ?? 1))])), to: rank.rank)
            }
            return id
        }
    }

    /// Sends `module` to `rank` unless it has it. Called with `lock` held, so that a module always
    /// precedes the first message that needs it.
    private func sendModule(_ module: GuestModule, session: Int64, to rank: Int) {
        guard sentModules[rank, default: []].insert(key(for: module)).inserted else { return }
        modulesSentCount += 1
        runtime.send(
            [
                .int(MPIMessage.module), .string(key(for: module)), .string(module.name), .bytes(module.wasmBytes), .int(session),
                module.wasiKind == nil ? .none : module.wasi.wireValue,
            ],
            to: rank)
    }

    /// Closes a session on every live rank: its pools there stop once their work is done.
    func closeSession(_ id: Int64) {
        lock.withLock {
            guard sessions.removeValue(forKey: id) != nil else { return }
            for rank in ranks.values where rank.lost == nil { runtime.send([.int(MPIMessage.close), .int(id)], to: rank.rank) }
        }
    }

    /// Sends `calls` of `session` to `rank` (with the modules it does not have yet) and waits
    /// for their outcomes.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.brokenMPIPool` when the rank is lost, before or
    ///   while it runs them.
    func run(_ calls: [RemoteCall], session: Int64, on rank: Int) throws(ExecutorError) -> [Result<ShareableValue, any Error>] {
        let modules = calls.compactMap { $0.guestInvocation?.module }
        let slot = ReplySlot()
        var tooLarge: Int?
        try lock.withLock { () throws(ExecutorError) in
            guard let entry = ranks[rank] else { throw ExecutorError(.brokenMPIPool, "MPI rank \(rank) is not serving") }
            if let reason = entry.lost { throw Self.lostError(entry, reason) }
            if ending { throw ExecutorError.exitingError }
            let id = nextRequest
            nextRequest += 1
            pending[id] = (rank, slot)
            for module in modules { sendModule(module, session: session, to: rank) }
            let requests = calls.map { call in MPIMessage.request(for: call) { key(for: $0) } }
            let message = MPIRuntime.encode([.int(MPIMessage.calls), .int(session), .int(Int64(bitPattern: id)), .array(requests)])
            guard message.count <= RemoteWire.maximumMessageBytes else {
                pending[id] = nil
                tooLarge = message.count
                return
            }
            runtime.send(bytes: message, to: rank)
        }
        if let tooLarge {
            let error = NotShareableError(
                "\(calls.count) calls of \(tooLarge) bytes in all cannot travel in one MPI message (the limit is "
                    + "\(RemoteWire.maximumMessageBytes) bytes): send fewer or smaller arguments per chunk")
            return calls.map { _ in .failure(error) }
        }
        let outcomes = try slot.wait().get()
        guard outcomes.count == calls.count else {
            lose(rank, "it answered \(calls.count) calls with \(outcomes.count) outcomes")
            throw ExecutorError(.brokenMPIPool, "MPI rank \(rank) broke the protocol")
        }
        return outcomes.map { outcome in
            (try? CallOutcome(wire: outcome).result) ?? .failure(RemoteError(.jobFailed, "MPI rank \(rank) sent an unreadable outcome"))
        }
    }

    /// The content key of `module`: its digest and length, made unique should two different
    /// modules share both. Called with `lock` held.
    private func key(for module: GuestModule) -> String {
        if let key = moduleKeys[module.id] { return key }
        var key = "\(module.digest)-\(module.wasmBytes.count)"
        // A WASI module's options (its capabilities) are part of what it is.
        if module.wasiKind != nil { key += "-wasi\(module.id)" }
        if let bytes = keyedModules[key], bytes != module.wasmBytes { key += "-\(module.id)" }
        keyedModules[key] = module.wasmBytes
        moduleKeys[module.id] = key
        return key
    }

    // MARK: End

    /// Tells every worker rank to end and ends MPI here; called once, as the program exits,
    /// after the pools were joined.
    func endWorkers() {
        // Ranks still starting (a program that returns at once) are waited for, up to a bound:
        // MPI_Finalize needs every rank, and ending without it makes the launcher kill them all.
        _ = waitForRanks(until: Deadline.after(Self.exitReportTimeout))
        let (allServing, silent) = lock.withLock {
            ending = true
            return (ranks.count == size - 1 && ranks.values.allSatisfy { $0.lost == nil }, ranks.values.filter { $0.lost != nil && $0.silent })
        }
        // A rank lost for its silence may still be alive, stopped or hung: the launcher would wait
        // for it for ever when it waits for every process (`mpiexec -disable-auto-cleanup`).
        for rank in silent { Self.end(rank) }
        // Every rank, reported or not: one that reports later is answered the same way. MPI_Finalize
        // waits for every rank, so it is called only when all of them are known to be serving.
        for rank in 1..<max(size, 1) { runtime.send([.int(MPIMessage.exit), .bool(allServing)], to: rank) }
        runtime.finish(finalize: allServing, timeout: .seconds(5))
        // Nothing answers from here on: whatever still waits fails rather than waiting for ever.
        let slots = lock.withLock {
            defer { pending.removeAll() }
            return pending.values.map(\.slot)
        }
        for slot in slots { slot.resolve(.failure(ExecutorError.exitingError)) }
    }

    /// Ends `rank`'s process with SIGKILL when it is on this host and still this launch's program
    /// (the same executable, checked through `/proc`, and never rank 0 itself, whatever pid the
    /// rank reported); one on another host cannot be reached.
    private static func end(_ rank: Rank) {
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
            let late = lock.withLock { ending }
            if late {
                runtime.send([.int(MPIMessage.exit), .bool(false)], to: source)
                return false
            }
            lock.withLock {
                ranks[source] = Rank(
                    rank: source, cores: max(1, Int(cores)), pid: Int(pid), host: host, lastHeard: now, lastPing: now,
                    lost: version == MPIMessage.protocolVersion
                        ? nil : "it speaks protocol version \(version), this program \(MPIMessage.protocolVersion)")
                lock.broadcast()
            }
            return false
        case MPIMessage.reply:
            guard fields.count == 3, case .int(let id) = fields[1], case .array(let outcomes) = fields[2] else { return false }
            let slot: ReplySlot? = lock.withLock {
                ranks[source]?.lastHeard = now
                guard let entry = pending[UInt64(bitPattern: id)], entry.rank == source else { return nil }
                pending[UInt64(bitPattern: id)] = nil
                return entry.slot
            }
            slot?.resolve(.success(outcomes))
            return true
        default:
            lock.withLock { ranks[source]?.lastHeard = now }
            return false
        }
    }

    func sendFailed(to destination: Int, _ reason: String) {
        lose(destination, reason)
    }

    func receivedUnreadable(from source: Int, _ reason: String) {
        lose(source, "it sent \(reason)")
    }

    func tick(now: Deadline) {
        var silent: [(Int, String)] = []
        lock.withLock {
            guard !ending else { return }
            // When this thread itself was held up (a stalled machine, a debugger), the ranks'
            // silence is not theirs: their clocks start again.
            if let lastTick, now.nanoseconds &- lastTick.nanoseconds > 1_000_000_000 {
                for rank in ranks.keys { ranks[rank]?.lastHeard = now }
            }
            lastTick = now
            let timeout = sessions.values.map(\.heartbeatTimeout).min() ?? Self.defaultHeartbeatTimeout
            for (rank, var entry) in ranks where entry.lost == nil {
                let quiet = Duration.nanoseconds(Int64(truncatingIfNeeded: now.nanoseconds &- entry.lastHeard.nanoseconds))
                if quiet > timeout {
                    entry.silent = true
                    ranks[rank] = entry
                    silent.append((rank, "it sent nothing for \(quiet) (the heartbeat timeout is \(timeout))"))
                } else if Duration.nanoseconds(Int64(truncatingIfNeeded: now.nanoseconds &- entry.lastPing.nanoseconds)) >= Self.pingInterval {
                    entry.lastPing = now
                    ranks[rank] = entry
                    runtime.send([.int(MPIMessage.ping)], to: rank, isWork: false)
                }
            }
        }
        for (rank, reason) in silent { lose(rank, reason) }
    }

    var isBusy: Bool { lock.withLock { !pending.isEmpty } }
}
