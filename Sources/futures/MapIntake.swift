import ConcurrentFutures
import DequeModule
@preconcurrency import Foundation

/// An error as one line for a person: a guest error's kind, function and message, and for a call
/// stopped by a limit, the option that sets it.
func describe(_ error: any Error) -> String {
    switch error {
    case let error as GuestError: "\(error.kind) in \(error.function): \(error.message)\(limitHint(error.kind))"
    case let error as any CodedError: error.message
    default: String(describing: error)
    }
}

/// What to change when a call stopped at one of the command's limits.
private func limitHint(_ kind: GuestError.Kind) -> String {
    switch kind {
    case .memoryLimit: " (the memory limit: raise it with --memory MiB)"
    case .outOfFuel: " (the fuel budget: raise it with --fuel, or leave it out)"
    case .timedOut: " (the time limit: raise it with --timeout seconds, or leave it out)"
    default: ""
    }
}

/// The lines in flight between the thread that reads and submits them and the one that writes
/// their results: at most `window` at a time, in input order.
final class Intake: @unchecked Sendable {
    /// One input line: its number and the future of its result (`nil` for a blank line).
    struct Entry {
        let line: Int
        let future: Future<ShareableValue>?
    }

    private let condition = NSCondition()
    private var entries = Deque<Entry>()
    private var inFlight = 0
    private var finished = false
    private var stopped = false
    private var readCount = 0
    let window: Int

    init(window: Int) { self.window = window }

    /// The number of inputs read (blank lines not counted).
    var read: Int { condition.withLock { readCount } }

    /// Adds an entry, waiting while the window is full; `false` once stopped.
    func push(_ entry: Entry, counted: Bool) -> Bool {
        condition.withLock {
            while inFlight >= window, !stopped { condition.wait() }
            guard !stopped else {
                entry.future?.cancel()
                return false
            }
            if counted { readCount += 1 }
            inFlight += 1
            entries.append(entry)
            condition.broadcast()
            return true
        }
    }

    /// The next entry in input order, waiting for it; `nil` at the end or once stopped.
    func next() -> Entry? {
        condition.withLock {
            while entries.isEmpty, !finished, !stopped { condition.wait() }
            return stopped ? nil : entries.popFirst()
        }
    }

    /// The entries ready now, without waiting.
    func available() -> [Entry] {
        condition.withLock {
            defer { entries.removeAll() }
            return Array(entries)
        }
    }

    /// One entry was reported: room for another.
    func completed() {
        condition.withLock {
            inFlight -= 1
            condition.broadcast()
        }
    }

    /// The input ended.
    func finish() {
        condition.withLock {
            finished = true
            condition.broadcast()
        }
    }

    /// No more lines are read or handed out.
    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }
}
