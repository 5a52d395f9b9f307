import Futures

/// A WASI command kept running between calls (``GuestModule/residentCommand()``): one run of
/// its `_start` on a thread of its own, fed one request at a time through standard input.
///
/// The program runs in a runtime of its own (its instances, WASI host and resource account),
/// because between exchanges it is suspended inside a host call, and the interpreter's other
/// calls must not run on the engine state it is suspended in. Exactly one of the two threads
/// runs at a time: the caller hands a request over and waits; the program's thread runs until
/// it reads standard input with the request used up (``awaitRequest(_:)``), which hands the
/// output back and waits for the next request. Every handover goes through ``lock``.
///
/// Limits apply per exchange: the caller sets the program runtime's fuel and host-wait deadline
/// while the program waits, and arms the watchdog on its engine for the exchange.
final class ResidentProgram: @unchecked Sendable {
    let module: GuestModule
    /// The `argv[1...]` and environment the program was started with (`nil`: the module's).
    let arguments: [String]?
    let environment: [String: String]?

    private let runtime: GuestRuntime
    private let interpreterID: Int
    private let lock = ConditionLock()

    /// What the program's thread hands back at the end of an exchange.
    private enum Reply {
        /// It waits for the next request: the output since the request was handed over.
        case waiting(stdout: [UInt8], stderr: [UInt8])
        /// Its `_start` returned or failed: the program is over.
        case ended(Result<ShareableValue, any Error>)
    }

    // Under `lock`.
    private var request: [UInt8]?
    private var reply: Reply?
    private var isClosing = false
    private var isStarted = false
    private var isOver = false

    /// Exchanges so far (the caller's thread only).
    private var exchanges = 0

    init(
        module: GuestModule, arguments: [String]?, environment: [String: String]?, interpreterID: Int, limits: InterpreterLimits,
        engine: GuestEngine
    ) {
        self.module = module
        self.arguments = arguments
        self.environment = environment
        self.interpreterID = interpreterID
        // The program's run has no limit of its own: each exchange gets the call's.
        var unlimited = limits
        unlimited.fuel = nil
        unlimited.timeLimit = nil
        runtime = GuestRuntime(interpreterID: interpreterID, limits: unlimited, engine: engine)
    }

    /// Whether the program has ended (a new call needs a new one).
    var hasEnded: Bool { lock.withLock { isOver } }

    /// One exchange: hands `stdin` to the program and waits until it asks for more input (or
    /// ends). Returns the exchange's number in this run and the output it wrote meanwhile.
    ///
    /// - Throws: ``GuestError`` when the program traps, runs out of fuel or time
    ///   (`.timedOut`), or exits (`.exited`, its output delivered to the module's destination);
    ///   ``Futures/ExecutorError`` `.resourceExhausted` when its thread cannot be started.
    func exchange(stdin: [UInt8], fuel: UInt64?, timeLimit: Duration?) throws -> (number: Int, stdout: [UInt8], stderr: [UInt8]) {
        let deadline = Deadline.after(timeLimit)
        // The program waits (or has not started): its runtime is this thread's to set up.
        runtime.context.callDeadline = deadline
        let started = lock.withLock { isStarted }
        if started {
            runtime.refuel(fuel)
        } else {
            try runtime.wasiState(for: module).exchange = self
        }
        let ticket = try deadline.map { deadline throws(ExecutorError) in
            try CallWatchdog.shared.arm(runtime.interruptTarget(for: module), deadline: deadline)
        }
        if started {
            lock.withLock {
                request = stdin
                lock.broadcast()
            }
        } else {
            do {
                try start(stdin: stdin, fuel: fuel)
            } catch {
                if let ticket { _ = CallWatchdog.shared.disarm(ticket) }
                throw error
            }
        }
        let answer = lock.withLock {
            while reply == nil { _ = lock.wait(until: nil) }
            defer { reply = nil }
            return reply!
        }
        let stopped = ticket.map { CallWatchdog.shared.disarm($0) } ?? false
        exchanges += 1
        switch answer {
        case .waiting(let stdout, let stderr):
            // Stopped as it asked for input: the result stands, and the next exchange refuels.
            return (exchanges, stdout, stderr)
        case .ended(.success(let value)):
            var status: Int32 = 0
            if case .array(let fields) = value, fields.count == 3, case .int(let code) = fields[0] {
                status = Int32(truncatingIfNeeded: code)
                if case .bytes(let stdout) = fields[1], case .bytes(let stderr) = fields[2] {
                    GuestOutputRouting.deliver((stdout, stderr), module: module, function: "_start", failed: true)
                }
            }
            throw GuestError(
                kind: .exited, function: "_start",
                message: "the resident program ended with status \(status) during the call, instead of reading its next request",
                interpreterID: interpreterID, exitStatus: status)
        case .ended(.failure(let error)):
            if stopped {
                throw GuestError(
                    kind: .timedOut, function: "_start", message: "the call ran longer than its time limit of \(timeLimit!)",
                    interpreterID: interpreterID)
            }
            throw error
        }
    }

    /// Starts the program's thread, which runs `_start` with `stdin` as the first request.
    private func start(stdin: [UInt8], fuel: UInt64?) throws(ExecutorError) {
        let options = WASICallOptions(arguments: arguments, environment: environment, stdin: stdin, capture: true)
        lock.withLock { isStarted = true }
        do {
            try DetachedThread.start(name: "futures-resident", pool: nil) { [self] in
                let result = Result { try runtime.call(module: module, "_start", arguments: [], fuel: fuel, timeLimit: nil, wasi: options) }
                lock.withLock {
                    reply = .ended(result)
                    isOver = true
                    lock.broadcast()
                }
            }
        } catch {
            lock.withLock {
                isStarted = false
                isOver = true
            }
            throw error
        }
    }

    /// On the program's thread, when it reads standard input with the request used up: hands
    /// the exchange's output back and waits for the next request.
    ///
    /// - Throws: ``GuestFault`` when the program is being closed (it ends there).
    func awaitRequest(_ state: WASICallState) throws {
        let output = state.end()
        let next: [UInt8]? = lock.withLock {
            reply = .waiting(stdout: output.stdout, stderr: output.stderr)
            lock.broadcast()
            while request == nil && !isClosing { _ = lock.wait(until: nil) }
            defer { request = nil }
            return isClosing ? nil : request
        }
        guard let next else { throw GuestFault(kind: .trap, message: "the resident program was closed") }
        state.stdin = next
        state.stdinOffset = 0
    }

    /// Ends the program (at its read of standard input, where it waits between calls) and waits
    /// until its thread has finished.
    func close() {
        lock.withLock {
            guard isStarted else { return }
            isClosing = true
            lock.broadcast()
            while !isOver { _ = lock.wait(until: nil) }
        }
    }
}
