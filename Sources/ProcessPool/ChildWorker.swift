import CFuturesShims
import Futures
import RemoteCalls
import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// One child process of a pool, seen from the parent: its pid and the socket to it.
final class ChildWorker {
    let pid: pid_t
    private let channel: FrameChannel
    private var exited: ExecutorError.WorkerExit?
    /// The modules already sent to this process.
    var loadedModules: Set<Int> = []
    /// The id of the last request; each request gets the next, and its reply must carry it.
    private var lastRequestID = UInt64.random(in: 1...(UInt64.max / 2))
    /// The bytes sent to and received from the process so far, frames' headers included.
    private(set) var bytesSent = 0
    private(set) var bytesReceived = 0

    private init(pid: pid_t, fd: Int32) {
        self.pid = pid
        channel = FrameChannel(fd: fd)
    }

    deinit { close(channel.fd) }

    /// Spawns `executable` in worker mode and waits for its ready message.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.brokenProcessPool` when it cannot be spawned or does
    ///   not enter worker mode (it exits, or sends anything but the ready message).
    static func spawn(executable: String, environment: [String: String]) throws(ExecutorError) -> ChildWorker {
        var fds: [Int32] = [-1, -1]
        guard cf_socketpair(&fds) == 0 else {
            throw ExecutorError(.brokenProcessPool, "A worker process could not be started: socketpair failed (errno \(errno))")
        }
        var variables = ProcessEnvironment.current
        for (key, value) in environment { variables[key] = value }
        variables[ProcessWorker.environmentKey] = "1"
        variables[ProcessWorker.parentKey] = String(getpid())
        // A crashing worker is reported at once, instead of after Swift's backtracer has run.
        if variables["SWIFT_BACKTRACE"] == nil { variables["SWIFT_BACKTRACE"] = "enable=no" }
        let environmentLines = variables.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings([executable]) { argv in
            withCStrings(environmentLines) { envp in
                cf_spawn_worker(executable, argv, envp, fds[1], &pid)
            }
        }
        close(fds[1])
        guard status == 0 else {
            close(fds[0])
            throw ExecutorError(
                .brokenProcessPool, "A worker process could not be started: cannot spawn \(executable) (errno \(status))")
        }
        let process = ChildWorker(pid: pid, fd: fds[0])
        do {
            guard cf_wait_readable(fds[0], ChildWorker.readyTimeoutMilliseconds) == 1 else {
                throw ChannelError.malformed("no ready message within \(ChildWorker.readyTimeoutMilliseconds / 1000) s")
            }
            guard let hello = try process.channel.receive(firstMilliseconds: 0)?.message else {
                throw ChannelError.malformed("no ready message")
            }
            guard case .array(let fields) = hello, fields.first == .int(WireMessage.ready) else {
                throw ChannelError.malformed("expected the ready message, got \(hello)")
            }
            guard fields.count >= 3, fields[2] == .int(WireMessage.protocolVersion) else {
                let exit = process.stop(kill: true)
                let theirs = fields.count >= 3 ? "\(fields[2])" : "an unknown version"
                throw ExecutorError(
                    .brokenProcessPool,
                    "A worker process did not start: \(executable) speaks worker protocol version \(theirs), this library "
                        + "speaks version \(WireMessage.protocolVersion). Rebuild the worker program with the same "
                        + "ConcurrentFutures version as the program that starts it.",
                    workerExit: exit)
            }
        } catch let error as ExecutorError {
            throw error
        } catch ChannelError.malformed(let detail) where detail.hasPrefix("bytes that are not a frame") {
            let exit = process.stop(kill: true)
            throw ExecutorError(
                .brokenProcessPool,
                "A worker process did not start: \(executable) answered in another worker protocol (\(detail)); this "
                    + "library speaks version \(WireMessage.protocolVersion). Rebuild the worker program with the same "
                    + "ConcurrentFutures version as the program that starts it.",
                workerExit: exit)
        } catch {
            let exit = process.stop(kill: true)
            throw ExecutorError(
                .brokenProcessPool,
                "A worker process did not start: \(executable) \(exit.map { "\($0)" } ?? "did not answer") without entering "
                    + "worker mode. Call ProcessWorker.runIfRequested(jobs:) first thing in its main.", workerExit: exit)
        }
        return process
    }

    /// How long a new worker may take to enter worker mode.
    static let readyTimeoutMilliseconds: Int32 = 10_000

    /// Sends a request that has no reply.
    func post(_ message: ShareableValue) throws(ChannelError) {
        lastRequestID &+= 1
        bytesSent += try channel.send(message, id: lastRequestID)
    }

    /// Sends a request and waits for its reply.
    ///
    /// The wait is bounded: by `deadline` when the request has one (calls under a time limit),
    /// and by `stoppedTimeout` while the process is stopped (`SIGSTOP`, a debugger). Past either,
    /// the process is killed and the request fails with ``ChannelError/unresponsive(_:)``.
    ///
    /// - Throws: ``ChannelError``; `.malformed` for a reply that is not well formed or answers
    ///   another request (something else wrote to the channel).
    func request(_ message: ShareableValue, deadline: Deadline? = nil, stoppedTimeout: Duration) throws(ChannelError) -> ShareableValue {
        lastRequestID &+= 1
        let id = lastRequestID
        bytesSent += try channel.send(message, id: id)
        var stoppedSince: Deadline?
        while true {
            if let reply = try channel.receive(firstMilliseconds: Int32(clamping: Self.pollMilliseconds)) {
                guard reply.id == id else {
                    throw ChannelError.malformed(
                        "a reply to request \(reply.id) while request \(id) was waiting (something other than the worker "
                            + "wrote to its channel)")
                }
                bytesReceived += reply.bytes
                return reply.message
            }
            if let deadline, deadline.hasPassed {
                throw ChannelError.unresponsive("it did not answer within the calls' time limits")
            }
            if cf_process_state(pid) == CChar(UInt8(ascii: "T")) || cf_process_state(pid) == CChar(UInt8(ascii: "t")) {
                let since = stoppedSince ?? Deadline.now
                stoppedSince = since
                if Deadline.now.nanoseconds &- since.nanoseconds >= UInt64(RemoteWire.nanoseconds(stoppedTimeout)) {
                    throw ChannelError.unresponsive("it was stopped (SIGSTOP or a debugger) for more than \(stoppedTimeout)")
                }
            } else {
                stoppedSince = nil
            }
        }
    }

    /// How often a waiting request checks its deadline and whether the process is stopped.
    static let pollMilliseconds = 200

    /// Ends the process: closes the channel (the worker exits on end of file), waits a moment,
    /// then kills it. With `kill`, kills at once. Reaps it and returns how it ended.
    @discardableResult
    func stop(kill: Bool = false, graceMilliseconds: Int32 = 2_000) -> ExecutorError.WorkerExit? {
        if let exited { return exited }
        shutdown(channel.fd, Int32(SHUT_RDWR))
        if kill { Glibc.kill(pid, SIGKILL) }
        var status: Int32 = 0
        var reaped = cf_wait_for_exit(pid, kill ? -1 : graceMilliseconds, &status)
        if reaped == 0 {
            Glibc.kill(pid, SIGKILL)
            reaped = cf_wait_for_exit(pid, -1, &status)
        }
        guard reaped == 1 else { return nil }
        var value: Int32 = 0
        switch cf_decode_status(status, &value) {
        case 1: exited = .exited(value)
        case 2: exited = .signaled(value)
        default: exited = nil
        }
        return exited
    }

    /// After the channel failed: waits for the process to end (killing it if it lingers) and
    /// returns how it ended.
    func reapAfterFailure() -> ExecutorError.WorkerExit? {
        stop(kill: false, graceMilliseconds: 500)
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
