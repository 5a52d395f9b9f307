package import Futures

/// Hands messages to MPI in the order of their tickets, whatever order they were encoded in.
///
/// ``MPIRouterState`` decides sends under the router's lock and numbers them; each thread then
/// encodes its messages outside the lock and posts them here. A message whose predecessors are
/// still being encoded waits here until they arrive, so a module still precedes the calls that
/// need it, and messages to one rank keep their order. Every ticket must be posted once: with
/// the bytes, or with `nil` for a message that is not sent after all.
package final class MPISendSequencer: @unchecked Sendable {
    /// A message ready to go.
    package struct Outgoing: Sendable {
        package let destination: Int
        package let bytes: [UInt8]
        package let isWork: Bool

        package init(destination: Int, bytes: [UInt8], isWork: Bool) {
            self.destination = destination
            self.bytes = bytes
            self.isWork = isWork
        }
    }

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var next: UInt64 = 0
    private var waiting: [UInt64: Outgoing?] = [:]
    private let hand: @Sendable (Outgoing) -> Void

    /// Creates a sequencer that hands each message, in ticket order, to `hand` (called with the
    /// sequencer's lock held, so that the order holds there too).
    package init(hand: @escaping @Sendable (Outgoing) -> Void) {
        self.hand = hand
    }

    /// Posts the message of `ticket` (`nil`: none), and hands over every message now in order.
    package func post(_ ticket: UInt64, _ message: Outgoing?) {
        lock.withLock {
            waiting[ticket] = .some(message)
            while let ready = waiting.removeValue(forKey: next) {
                next += 1
                if let ready { hand(ready) }
            }
            lock.broadcast()
        }
    }

    /// Waits until every message up to `ticket` was handed over, or `deadline`.
    package func waitUntilHandedOver(through ticket: UInt64, until deadline: Deadline?) {
        lock.withLock {
            while next <= ticket {
                if !lock.wait(until: deadline), next <= ticket { return }
            }
        }
    }
}
