package import Futures
package import RemoteCalls
package import WasmInterpreters

/// Rank 0's routing rules as a value, as ``Futures/WorkerPoolState`` holds the pool's: which
/// worker ranks are alive, the replies awaited from them, the modules each has, the open sessions
/// and the heartbeats. Inputs go in (a rank reported, a message or reply arrived, a heartbeat is
/// due, a rank failed, a session opened, calls were submitted, shutdown, exit); ``Action``s come
/// out (send, deliver, fail replies, break sessions, end a process, finish MPI) for
/// ``MPIRootRouter`` to perform outside its lock. Nothing here encodes, sends or blocks, so
/// every rule is tested without MPI.
///
/// Every send gets a ticket, in the order the sends were decided; the router hands them to MPI
/// in ticket order (``MPISendSequencer``), so a module always precedes the calls that need it,
/// though messages are encoded outside the lock and in parallel.
package struct MPIRouterState: Sendable {
    /// A worker rank, as it reported itself.
    package struct Rank: Sendable, Equatable {
        package let rank: Int
        package let cores: Int
        package let pid: Int
        package let host: String
        var lastHeard: Deadline
        var lastPing: Deadline
        /// Why it was lost, once it is.
        package var lost: String?
        /// Whether it was lost for its silence (stopped or hung), not for ending.
        package var silent = false
    }

    /// What a message to a worker rank says; ``MPIRootRouter`` writes it out (``wire``).
    package enum Message: Sendable {
        case open(session: Int64, WorkerConfiguration, initializer: RemoteCall?, keys: [Int: String], slots: Int)
        case module(key: String, GuestModule, session: Int64)
        case calls(session: Int64, request: UInt64, [RemoteCall], keys: [Int: String])
        case close(session: Int64)
        case cancel(session: Int64)
        case ping
        case exit(finalize: Bool)

        /// The message as sent (docs/wire.md): calls and configuration as ``RemoteCalls`` writes
        /// them, a guest call's module named by its content key.
        package var wire: ShareableValue {
            switch self {
            case .open(let session, let configuration, let initializer, let keys, let slots):
                let initial = initializer.map { MPIMessage.request(for: $0, keys: keys) } ?? ShareableValue.none
                return .array([.int(MPIMessage.open), .int(session)] + configuration.wire + [initial, .int(Int64(slots))])
            case .module(let key, let module, let session):
                return [
                    .int(MPIMessage.module), .string(key), .string(module.name), .bytes(module.wasmBytes), .int(session),
                    module.wasiKind == nil ? .none : module.wasi.wireValue,
                ]
            case .calls(let session, let request, let calls, let keys):
                let requests = calls.map { MPIMessage.request(for: $0, keys: keys) }
                return [.int(MPIMessage.calls), .int(session), .int(Int64(bitPattern: request)), .array(requests)]
            case .close(let session): return [.int(MPIMessage.close), .int(session)]
            case .cancel(let session): return [.int(MPIMessage.cancel), .int(session)]
            case .ping: return [.int(MPIMessage.ping)]
            case .exit(let finalize): return [.int(MPIMessage.exit), .bool(finalize)]
            }
        }

        /// Whether it is work (calls and what they need), after which replies are likely soon;
        /// heartbeats are not.
        package var isWork: Bool {
            if case .ping = self { false } else { true }
        }
    }

    /// What the router does after an input, in order.
    package enum Action: Sendable {
        /// Sends `message` to `rank`: handed to MPI in `ticket` order.
        case send(Message, to: Int, ticket: UInt64)
        /// Delivers the outcomes of a request to the thread that awaits them.
        case deliver(request: UInt64, outcomes: [ShareableValue])
        /// Fails awaited requests.
        case fail(requests: [UInt64], ExecutorError)
        /// Breaks the pools of these sessions (before the requests of the same loss fail, so that
        /// whoever sees a future fail with `.brokenMPIPool` finds its pool broken too).
        case breakSessions([Int64], ExecutorError)
        /// Ends a rank that was lost for its silence and may still be running (stopped or hung).
        case end(Rank)
        /// Pings a rank: outside the ticket order (a ping's place among other messages does not
        /// matter), so that a slow encoding of a large message cannot hold heartbeats back until
        /// idle ranks look lost.
        case ping(Int)
    }

    /// What the router keeps of an open session.
    struct Session: Sendable {
        let heartbeatTimeout: Duration
        /// The ranks the session uses: only their loss concerns it.
        let ranks: Set<Int>
    }

    /// How often a rank is pinged.
    package static let pingInterval: Duration = .milliseconds(500)
    /// How long a silent rank is tolerated when no session is open.
    package static let defaultHeartbeatTimeout: Duration = .seconds(10)
    /// A gap between ticks longer than this means rank 0 itself was held up.
    static let stallNanoseconds: UInt64 = 1_000_000_000

    /// The launch's size: rank 0 and its worker ranks.
    package let size: Int
    package private(set) var ranks: [Int: Rank] = [:]
    /// The requests awaited, and the rank each was sent to.
    package private(set) var pending: [UInt64: Int] = [:]
    private var nextRequest: UInt64 = 1
    private var nextSession: Int64 = 1
    private var nextTicket: UInt64 = 0
    private(set) var sessions: [Int64: Session] = [:]
    private var sentModules: [Int: Set<String>] = [:]
    /// Content keys already given to modules: a key names one byte string only.
    private var keyedModules: [String: [UInt8]] = [:]
    private var moduleKeys: [Int: String] = [:]
    /// Whether rank 0 is exiting: nothing new is sent.
    package private(set) var ending = false
    private var lastTick: Deadline?
    /// Module messages sent so far, over all ranks.
    package private(set) var modulesSent = 0

    package init(size: Int) { self.size = size }

    // MARK: Ranks

    /// How many worker ranks reported (a rank lost since counts).
    package var reportedCount: Int { ranks.count }

    /// Whether every worker rank reported.
    package var allReported: Bool { ranks.count >= size - 1 }

    /// The ranks that reported and are alive, in rank order.
    package var liveRanks: [Rank] { ranks.values.filter { $0.lost == nil }.sorted { $0.rank < $1.rank } }

    /// The ranks lost so far, with why, in rank order.
    package var lostRanks: [(rank: Int, reason: String)] {
        ranks.values.compactMap { rank in rank.lost.map { (rank.rank, $0) } }.sorted { $0.rank < $1.rank }
    }

    /// The error of a lost rank among `ranks`, if one is lost.
    package func lostError(among ranks: some Sequence<Int>) -> ExecutorError? {
        for rank in ranks {
            if let entry = self.ranks[rank], let reason = entry.lost { return Self.lostError(entry, reason) }
        }
        return nil
    }

    /// The error of a lost rank that session `id` uses, if one is lost.
    package func lostError(inSession id: Int64) -> ExecutorError? {
        sessions[id].flatMap { lostError(among: $0.ranks.sorted()) }
    }

    static func lostError(_ entry: Rank, _ reason: String) -> ExecutorError {
        ExecutorError(.brokenMPIPool, "MPI rank \(entry.rank) (pid \(entry.pid) on \(entry.host)) was lost: \(reason)")
    }

    /// `source` reported itself. One that speaks another protocol version is lost from the start;
    /// one that reports while rank 0 is exiting is told to end.
    package mutating func rankReported(_ source: Int, cores: Int, pid: Int, host: String, version: Int64, now: Deadline) -> [Action] {
        if ending { return [send(.exit(finalize: false), to: source)] }
        ranks[source] = Rank(
            rank: source, cores: max(1, cores), pid: pid, host: host, lastHeard: now, lastPing: now,
            lost: version == MPIMessage.protocolVersion
                ? nil : "it speaks protocol version \(version), this program \(MPIMessage.protocolVersion)")
        return []
    }

    /// A message from `source` arrived: a sign of life.
    package mutating func heard(from source: Int, now: Deadline) {
        ranks[source]?.lastHeard = now
    }

    /// `source` answered `request`. A reply from a rank the request was not sent to is ignored.
    package mutating func replied(_ source: Int, request: UInt64, outcomes: [ShareableValue], now: Deadline) -> [Action] {
        heard(from: source, now: now)
        guard pending[request] == source else { return [] }
        pending[request] = nil
        return [.deliver(request: request, outcomes: outcomes)]
    }

    /// Declares `rank` lost for `reason`: the sessions that use it break, then its awaited
    /// requests fail. Nothing happens for a rank lost before, or once rank 0 is exiting.
    package mutating func rankFailed(_ rank: Int, _ reason: String, silent: Bool = false) -> [Action] {
        guard var entry = ranks[rank], entry.lost == nil, !ending else { return [] }
        entry.lost = reason
        entry.silent = silent
        ranks[rank] = entry
        let error = Self.lostError(entry, reason)
        let requests = pending.filter { $0.value == rank }.map(\.key).sorted()
        for request in requests { pending[request] = nil }
        let broken = sessions.filter { $0.value.ranks.contains(rank) }.map(\.key).sorted()
        var actions: [Action] = []
        if !broken.isEmpty { actions.append(.breakSessions(broken, error)) }
        if !requests.isEmpty { actions.append(.fail(requests: requests, error)) }
        return actions
    }

    /// A heartbeat is due: pings every live rank not pinged for ``pingInterval``, and loses every
    /// rank silent for longer than the shortest heartbeat timeout of the open sessions. When the
    /// ticks themselves were held up (a stalled machine, a debugger), the silence is not the
    /// ranks': their clocks start again.
    package mutating func tick(now: Deadline) -> [Action] {
        guard !ending else { return [] }
        if let lastTick, now.nanoseconds &- lastTick.nanoseconds > Self.stallNanoseconds {
            for rank in ranks.keys { ranks[rank]?.lastHeard = now }
        }
        lastTick = now
        let timeout = sessions.values.map(\.heartbeatTimeout).min() ?? Self.defaultHeartbeatTimeout
        var actions: [Action] = []
        for rank in ranks.keys.sorted() {
            guard var entry = ranks[rank], entry.lost == nil else { continue }
            let quiet = Duration.nanoseconds(Int64(truncatingIfNeeded: now.nanoseconds &- entry.lastHeard.nanoseconds))
            if quiet > timeout {
                actions += rankFailed(rank, "it sent nothing for \(quiet) (the heartbeat timeout is \(timeout))", silent: true)
            } else if Duration.nanoseconds(Int64(truncatingIfNeeded: now.nanoseconds &- entry.lastPing.nanoseconds)) >= Self.pingInterval {
                entry.lastPing = now
                ranks[rank] = entry
                actions.append(.ping(rank))
            }
        }
        return actions
    }

    // MARK: Sessions

    /// Opens a session (one executor) on every live rank, with the module of a guest
    /// `initializer` first; `slots` gives the calls each rank the session uses may run at once
    /// (a rank it does not use gets one).
    package mutating func openSession(
        _ configuration: WorkerConfiguration, heartbeatTimeout: Duration, slots: [Int: Int], initializer: RemoteCall?
    ) -> (id: Int64, actions: [Action]) {
        let id = nextSession
        nextSession += 1
        sessions[id] = Session(heartbeatTimeout: heartbeatTimeout, ranks: Set(slots.keys))
        var actions: [Action] = []
        for rank in liveRanks {
            let modules = initializer?.guestInvocation.map { [$0.module] } ?? []
            actions += sendModules(modules, session: id, to: rank.rank)
            let open = Message.open(
                session: id, configuration, initializer: initializer, keys: keys(for: modules), slots: slots[rank.rank] ?? 1)
            actions.append(send(open, to: rank.rank))
        }
        return (id, actions)
    }

    /// Closes a session on every live rank: its pools there stop once their work is done.
    package mutating func closeSession(_ id: Int64) -> [Action] {
        guard sessions.removeValue(forKey: id) != nil, !ending else { return [] }
        return liveRanks.map { send(.close(session: id), to: $0.rank) }
    }

    /// Tells the ranks a session uses to drop its calls that have not started: each is answered
    /// as not started (``RemoteCalls/RemoteError`` `.notStarted`), and its future is cancelled.
    package mutating func cancelSession(_ id: Int64) -> [Action] {
        guard let session = sessions[id], !ending else { return [] }
        return liveRanks.filter { session.ranks.contains($0.rank) }.map { send(.cancel(session: id), to: $0.rank) }
    }

    /// Sends `calls` of `session` to `rank`, each module it does not have first; returns the
    /// request whose reply ``replied(_:request:outcomes:now:)`` delivers.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.brokenMPIPool` for a lost or unknown rank,
    ///   `.shutdown` (rank 0 exiting) once ``exit()`` began.
    package mutating func submit(
        _ calls: [RemoteCall], session: Int64, to rank: Int
    ) throws(ExecutorError) -> (request: UInt64, actions: [Action]) {
        guard let entry = ranks[rank] else { throw ExecutorError(.brokenMPIPool, "MPI rank \(rank) is not serving") }
        if let reason = entry.lost { throw Self.lostError(entry, reason) }
        if ending { throw ExecutorError.exitingError }
        let request = nextRequest
        nextRequest += 1
        pending[request] = rank
        let modules = calls.compactMap { $0.guestInvocation?.module }
        var actions = sendModules(modules, session: session, to: rank)
        actions.append(send(.calls(session: session, request: request, calls, keys: keys(for: modules)), to: rank))
        return (request, actions)
    }

    /// Forgets `request`, whose message was never sent (too large to travel).
    package mutating func withdraw(_ request: UInt64) {
        pending[request] = nil
    }

    // MARK: Exit

    /// Rank 0 is exiting: every worker rank (reported or not) is told to end, with
    /// `MPI_Finalize` only when all of them are serving (it needs every rank); a rank lost for its
    /// silence is ended first, as the launcher would otherwise wait for it for ever
    /// (`mpiexec -disable-auto-cleanup`). Returns the actions and whether MPI finalizes.
    package mutating func exit() -> (actions: [Action], finalize: Bool) {
        guard !ending else { return ([], false) }
        let finalize = allReported && ranks.values.allSatisfy { $0.lost == nil }
        var actions = ranks.values.filter { $0.lost != nil && $0.silent }.sorted { $0.rank < $1.rank }.map { Action.end($0) }
        for rank in 1..<max(size, 1) { actions.append(send(.exit(finalize: finalize), to: rank)) }
        ending = true
        return (actions, finalize)
    }

    /// MPI ended: whatever is still awaited fails, since nothing answers from here on.
    package mutating func exited() -> [Action] {
        let requests = pending.keys.sorted()
        pending.removeAll()
        return requests.isEmpty ? [] : [.fail(requests: requests, ExecutorError.exitingError)]
    }

    // MARK: Helpers

    private mutating func send(_ message: Message, to rank: Int) -> Action {
        defer { nextTicket += 1 }
        return .send(message, to: rank, ticket: nextTicket)
    }

    /// Sends each of `modules` that `rank` does not have yet.
    private mutating func sendModules(_ modules: [GuestModule], session: Int64, to rank: Int) -> [Action] {
        var actions: [Action] = []
        for module in modules {
            let key = key(for: module)
            guard sentModules[rank, default: []].insert(key).inserted else { continue }
            modulesSent += 1
            actions.append(send(.module(key: key, module, session: session), to: rank))
        }
        return actions
    }

    private mutating func keys(for modules: [GuestModule]) -> [Int: String] {
        var keys: [Int: String] = [:]
        for module in modules { keys[module.id] = key(for: module) }
        return keys
    }

    /// The content key of `module`: its digest and length, made unique should two different
    /// modules share both.
    mutating func key(for module: GuestModule) -> String {
        if let key = moduleKeys[module.id] { return key }
        var key = "\(module.digest)-\(module.wasmBytes.count)"
        // A WASI module's options (its capabilities) are part of what it is.
        if module.wasiKind != nil { key += "-wasi\(module.id)" }
        if let bytes = keyedModules[key], bytes != module.wasmBytes { key += "-\(module.id)" }
        keyedModules[key] = module.wasmBytes
        moduleKeys[module.id] = key
        return key
    }
}
