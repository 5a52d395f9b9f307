#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex paired with a condition variable whose timed waits use the monotonic clock.
///
/// The standard library's `Mutex` cannot be paired with a condition variable, and Foundation's
/// `NSCondition` measures timeouts on the wall clock, which a clock step breaks. The pthread
/// objects live on the heap so that Swift never moves them.
@usableFromInline
package final class ConditionLock: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    @usableFromInline
    package init() {
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if !canImport(Darwin)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        mutex.destroy()
    }

    @usableFromInline
    package func lock() { mutex.lock() }
    @usableFromInline
    package func unlock() { mutex.unlock() }

    @inlinable
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Wakes one waiting thread.
    package func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiting thread.
    package func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits for a signal; the lock must be held. Returns `false` when `deadline` passed first.
    ///
    /// Spurious wake-ups return `true`: callers re-check their condition in a loop.
    @discardableResult
    package func wait(until deadline: Deadline?) -> Bool {
        guard let deadline else {
            pthread_cond_wait(condition, mutex.pointer)
            return true
        }
        if deadline.hasPassed { return false }
        var time = deadline.posixTime
        return pthread_cond_timedwait(condition, mutex.pointer, &time) != ETIMEDOUT
    }
}
