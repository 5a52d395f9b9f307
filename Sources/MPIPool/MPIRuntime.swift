import CFuturesShims
import Futures
import RemoteCalls

#if canImport(Glibc)
import Glibc
#endif

/// The side of the program that the MPI thread serves: rank 0's router, or a worker rank's
/// server. Its methods run on the MPI thread.
protocol MPIEndpoint: AnyObject, Sendable {
    /// A message from `source`. Returns whether it was work (calls or their replies), after which
    /// more is likely soon; heartbeats are not.
    func received(_ message: ShareableValue, from source: Int) -> Bool
    /// A message to `destination` could not be sent.
    func sendFailed(to destination: Int, _ reason: String)
    /// A message from `source` could not be read (corrupt, or over the size limit).
    func receivedUnreadable(from source: Int, _ reason: String)
    /// Called every few milliseconds, for heartbeats.
    func tick(now: Deadline)
    /// Whether replies are awaited: the thread then polls more often.
    var isBusy: Bool { get }
}

/// This process's MPI: the library, loaded at run time, and the one thread that makes every MPI
/// call (`MPI_THREAD_FUNNELED`: it is also the thread that initialized MPI).
///
/// Other threads hand it encoded messages; it posts them with `MPI_Isend`, polls with
/// `MPI_Iprobe` for what arrives, and passes each message to its endpoint. When rounds find
/// nothing to do it backs off by how long it has been quiet: it yields for the first 0.2 ms (a
/// reply to a short call is usually that close), sleeps 30 µs at a time up to 3 ms, then 0.2 ms at
/// a time while replies are awaited, and 2 ms when idle. Only work (calls, replies) makes it
/// attentive again; heartbeats do not. A message handed to it cuts a sleep short. So a stream of
/// calls gets round trips of about 0.1 ms on one host, and an idle rank costs about 500 probes a
/// second (1-2 % of a core), not a spinning core.
final class MPIRuntime: @unchecked Sendable {
    /// The MPI tag of every message.
    static let tag: Int32 = 0x4346
    /// How long after its last message the thread only yields between rounds.
    static let spinNanoseconds: UInt64 = 200_000
    /// How long after its last message it sleeps only 30 µs between rounds.
    static let hotNanoseconds: UInt64 = 3_000_000

    /// Who this process is in `MPI_COMM_WORLD`.
    struct Identity: Sendable {
        let rank: Int
        let size: Int
        /// The thread level MPI provided.
        let threadLevel: Int32
    }

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var identity: Identity?
    private var startError: MPIError?
    private var outbox: [Outgoing] = []
    private var endpoint: (any MPIEndpoint)?
    private var finishBy: Deadline?
    private var finalizes = true
    private var finished = false

    private init() {}

    /// Loads the MPI library, starts the MPI thread and initializes MPI on it.
    ///
    /// - Throws: ``MPIError`` `.unavailable` when no MPICH-ABI library loads, `.callFailed` when
    ///   `MPI_Init_thread` fails or provides less than `MPI_THREAD_FUNNELED`.
    static func start() throws(MPIError) -> (MPIRuntime, Identity) {
        var error = [CChar](repeating: 0, count: 1024)
        let path = getenv("CONCURRENT_FUTURES_MPI_LIBRARY")
        if cf_mpi_load(path, &error, error.count) != 0 {
            let reason = cText(error)
            throw MPIError(
                .unavailable,
                "cannot load an MPI library (\(reason)); install MPICH (apt-get install mpich) or set "
                    + "CONCURRENT_FUTURES_MPI_LIBRARY to an MPICH-ABI libmpi")
        }
        let runtime = MPIRuntime()
        do {
            try DetachedThread.start(name: "cf-mpi", pool: nil) { runtime.serve() }
        } catch {
            throw MPIError(.callFailed, "cannot start the MPI thread: \(error)")
        }
        return try runtime.lock.withLock { () throws(MPIError) -> (MPIRuntime, Identity) in
            while runtime.identity == nil && runtime.startError == nil { _ = runtime.lock.wait(until: nil) }
            if let error = runtime.startError { throw error }
            return (runtime, runtime.identity!)
        }
    }

    /// Sets the endpoint that receives messages; the thread probes only once there is one.
    func attach(_ endpoint: any MPIEndpoint) {
        lock.withLock {
            self.endpoint = endpoint
            lock.broadcast()
        }
    }

    /// Encodes `message` for ``send(bytes:to:)``.
    static func encode(_ message: ShareableValue) -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(message)
        return writer.bytes
    }

    /// A message handed to the MPI thread.
    private struct Outgoing {
        let destination: Int
        let bytes: [UInt8]
        /// Whether it is work (calls, replies) rather than a heartbeat.
        let isWork: Bool
    }

    /// Hands `message` to the MPI thread for `destination`; `isWork` is `false` for heartbeats.
    func send(_ message: ShareableValue, to destination: Int, isWork: Bool = true) {
        send(bytes: Self.encode(message), to: destination, isWork: isWork)
    }

    /// Hands encoded bytes to the MPI thread for `destination`; messages to one destination
    /// arrive in the order they were handed over (MPI does not overtake).
    func send(bytes: [UInt8], to destination: Int, isWork: Bool = true) {
        lock.withLock {
            outbox.append(Outgoing(destination: destination, bytes: bytes, isWork: isWork))
            lock.broadcast()
        }
    }

    /// Asks the thread to post what is queued and end: with `MPI_Finalize` when `finalize`
    /// (every rank is alive to take part), without it otherwise. Returns when it ended, or after
    /// `timeout`.
    func finish(finalize: Bool, timeout: Duration) {
        let deadline = Deadline.after(timeout)
        let giveUp = Deadline.after(timeout + .seconds(2))
        lock.withLock {
            finalizes = finalize
            finishBy = deadline
            lock.broadcast()
            while !finished {
                if !lock.wait(until: giveUp), !finished { break }
            }
        }
    }

    /// Asks the thread to end as ``finish(finalize:timeout:)`` does, without waiting.
    func requestFinish(finalize: Bool, timeout: Duration) {
        lock.withLock {
            finalizes = finalize
            finishBy = Deadline.after(timeout)
            lock.broadcast()
        }
    }

    /// Blocks until the thread ended.
    func waitUntilFinished() {
        lock.withLock {
            while !finished { _ = lock.wait(until: nil) }
        }
    }

    /// A send that MPI still owns: its bytes live until `MPI_Test` says it completed.
    private struct PostedSend {
        var request: Int32
        let buffer: UnsafeMutableRawBufferPointer
        let destination: Int
    }

    /// The MPI thread: it initializes MPI, then runs rounds (post what was handed over, complete
    /// posted sends, receive, tick) until asked to finish, pausing between quiet rounds, and
    /// finalizes when asked to.
    private func serve() {
        guard initialize() else { return }
        var posted: [PostedSend] = []
        var lastActive = Deadline.now
        var nextTick = Deadline.now
        while true {
            let (messages, endpoint, finishBy) = lock.withLock {
                defer { outbox.removeAll(keepingCapacity: true) }
                return (outbox, self.endpoint, self.finishBy)
            }
            var active = messages.contains { $0.isWork }
            post(messages, into: &posted, endpoint: endpoint)
            completeSends(&posted, endpoint: endpoint)
            if let endpoint {
                if receiveWaiting(into: endpoint) { active = true }
                let now = Deadline.now
                if now >= nextTick {
                    endpoint.tick(now: now)
                    nextTick = Deadline(nanoseconds: now.nanoseconds + 20_000_000)
                }
            }
            if let finishBy {
                let drained = lock.withLock { outbox.isEmpty }
                if (posted.isEmpty && drained) || Deadline.now >= finishBy { break }
            }
            if active {
                lastActive = .now
            } else {
                pause(quietSince: lastActive, busy: endpoint?.isBusy == true)
            }
        }
        let finalize = lock.withLock { finalizes }
        if finalize { _ = cf_mpi_finalize() }
        lock.withLock {
            finished = true
            lock.broadcast()
        }
    }

    /// Initializes MPI and records who this process is, or why it cannot serve; returns whether
    /// it can.
    private func initialize() -> Bool {
        var provided: Int32 = 0
        var status = cf_mpi_init(1, &provided)  // MPI_THREAD_FUNNELED
        var rank: Int32 = 0
        var size: Int32 = 0
        if status == 0 { status = cf_mpi_rank_and_size(&rank, &size) }
        return lock.withLock {
            defer { lock.broadcast() }
            if status != 0 {
                startError = MPIError(.callFailed, "MPI_Init_thread failed: \(Self.describe(status))")
            } else if provided < 1 {
                startError = MPIError(.callFailed, "MPI provides thread level \(provided); MPI_THREAD_FUNNELED (1) is needed")
            } else {
                identity = Identity(rank: Int(rank), size: Int(size), threadLevel: provided)
            }
            return startError == nil
        }
    }

    /// Posts `messages` with `MPI_Isend`, each from a buffer of its own that lives until the
    /// send completes; one over the size limit or refused is reported to the endpoint.
    private func post(_ messages: [Outgoing], into posted: inout [PostedSend], endpoint: (any MPIEndpoint)?) {
        for message in messages {
            guard message.bytes.count <= RemoteWire.maximumMessageBytes else {
                endpoint?.sendFailed(to: message.destination, "a message of \(message.bytes.count) bytes is over the limit")
                continue
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, message.bytes.count), alignment: 8)
            message.bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            var request: Int32 = 0
            let result = cf_mpi_isend(buffer.baseAddress, Int32(message.bytes.count), Int32(message.destination), Self.tag, &request)
            if result == 0 {
                posted.append(PostedSend(request: request, buffer: buffer, destination: message.destination))
            } else {
                buffer.deallocate()
                endpoint?.sendFailed(to: message.destination, "MPI_Isend failed: \(Self.describe(result))")
            }
        }
    }

    /// Frees the buffers of the sends that completed; a send that failed (its peer died) is
    /// reported, and its buffer leaked, since MPI may still hold it.
    private func completeSends(_ posted: inout [PostedSend], endpoint: (any MPIEndpoint)?) {
        posted.removeAll { send in
            var done: Int32 = 0
            var request = send.request
            let status = cf_mpi_test(&request, &done)
            if status != 0 {
                endpoint?.sendFailed(to: send.destination, "MPI_Test failed: \(Self.describe(status))")
                return true
            }
            if done != 0 { send.buffer.deallocate() }
            return done != 0
        }
    }

    /// Passes up to 64 waiting messages to `endpoint`; returns whether one of them was work.
    private func receiveWaiting(into endpoint: any MPIEndpoint) -> Bool {
        var active = false
        for _ in 0..<64 {
            guard let (source, message) = receive() else { break }
            switch message {
            case .success(let message): if endpoint.received(message, from: source) { active = true }
            case .failure(let reason): endpoint.receivedUnreadable(from: source, reason.description)
            }
        }
        return active
    }

    /// Backs off after a quiet round, by how long it has been quiet (see the type's
    /// documentation); a message handed over or a request to finish cuts a sleep short.
    private func pause(quietSince lastActive: Deadline, busy: Bool) {
        let now = Deadline.now
        let quiet = now.nanoseconds &- lastActive.nanoseconds
        if quiet < Self.spinNanoseconds {
            sched_yield()
            return
        }
        let pause: UInt64 = quiet < Self.hotNanoseconds ? 30_000 : busy ? 200_000 : 2_000_000
        lock.withLock {
            if outbox.isEmpty && finishBy == nil {
                _ = lock.wait(until: Deadline(nanoseconds: now.nanoseconds + pause))
            }
        }
    }

    /// Why a received message could not be used.
    struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    /// Receives one message if one is waiting: its source, and the value or why it could not be
    /// read. `nil` when none is waiting or the probe failed.
    private func receive() -> (Int, Result<ShareableValue, Unreadable>)? {
        var found: Int32 = 0
        var source: Int32 = 0
        var count: Int32 = 0
        guard cf_mpi_iprobe(Self.tag, &found, &source, &count) == 0, found != 0 else { return nil }
        // Senders of this protocol never exceed the frame limit (1 GiB, below MPI's int counts);
        // a count MPI cannot express is received as nothing, to take the message off the queue.
        let length = count > 0 ? Int(count) : 0
        var bytes = [UInt8](repeating: 0, count: max(length, 1))
        let status = bytes.withUnsafeMutableBytes { cf_mpi_recv($0.baseAddress, Int32(length), source, Self.tag) }
        guard status == 0, length > 0, length <= RemoteWire.maximumMessageBytes else {
            return (Int(source), .failure(Unreadable(description: "a message of \(count) bytes could not be received")))
        }
        do {
            return (Int(source), .success(try ShareableValue(decoding: bytes[0..<length])))
        } catch {
            return (Int(source), .failure(Unreadable(description: "a malformed message: \(error)")))
        }
    }

    /// MPI's text for an error code.
    static func describe(_ code: Int32) -> String {
        var text = [CChar](repeating: 0, count: 1024)
        cf_mpi_error_string(code, &text, text.count)
        return cText(text)
    }
}

/// The text of a NUL-terminated C buffer.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
