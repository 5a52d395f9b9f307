import Futures
@_spi(Fuzzing) import WasmKit

/// What the watchdog stops: an engine's fuel counter, which another thread may set to zero.
protocol Interruptible: AnyObject {
    /// Makes the call running now run out of fuel at its next charge.
    func interrupt()
}

extension Store: Interruptible {
    func interrupt() { fuel = Fuel(remaining: 0) }
}

/// Stops guest calls that run past ``InterpreterLimits/timeLimit``.
///
/// WasmKit has no asynchronous interrupt; the one lever another thread has is the store's fuel.
/// One watchdog thread for the whole process sleeps until the earliest deadline of the calls in
/// flight, then sets an overdue call's fuel to zero, again every 100 µs until the call returns
/// (the interpreter's own fuel arithmetic can overwrite a single write). The call then fails
/// with ``GuestError/Kind-swift.struct/timedOut``.
///
/// - Important: Writing another thread's fuel counter is a deliberate, benign data race on one
///   64-bit word: it can only make the call end sooner. It is the only way to stop a guest that
///   calls no host function; a hard guarantee needs a worker process (`ProcessPoolExecutor`).
final class CallWatchdog: @unchecked Sendable {
    /// One call being watched.
    final class Ticket: @unchecked Sendable {
        let deadline: Deadline
        /// The fuel of the call; touched by the watchdog only while the ticket is armed.
        let target: any Interruptible
        var armed = true
        var fired = false

        init(deadline: Deadline, target: any Interruptible) {
            self.deadline = deadline
            self.target = target
        }
    }

    static let shared = CallWatchdog()

    private let lock = ConditionLock()
    private var tickets: [Ticket] = []
    private var started = false

    /// Starts watching a call on `target` that must end by `deadline`.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.resourceExhausted` when the watchdog thread cannot
    ///   be started (the call must not run unwatched).
    func arm(_ target: any Interruptible, deadline: Deadline) throws(ExecutorError) -> Ticket {
        let ticket = Ticket(deadline: deadline, target: target)
        try lock.withLock { () throws(ExecutorError) in
            if !started {
                try DetachedThread.start(name: "futures-watchdog", pool: nil) { self.watch() }
                started = true
            }
            tickets.append(ticket)
            lock.broadcast()
        }
        return ticket
    }

    /// Stops watching; returns whether the watchdog stopped the call.
    func disarm(_ ticket: Ticket) -> Bool {
        lock.withLock {
            ticket.armed = false
            tickets.removeAll { $0 === ticket }
            return ticket.fired
        }
    }

    private func watch() {
        lock.lock()
        while true {
            let now = Deadline.now
            var overdue = false
            for ticket in tickets where ticket.armed && ticket.deadline <= now {
                ticket.fired = true
                ticket.target.interrupt()
                overdue = true
            }
            if overdue {
                lock.wait(until: Deadline.after(.microseconds(100)))
            } else {
                lock.wait(until: tickets.map(\.deadline).min())
            }
        }
    }
}
