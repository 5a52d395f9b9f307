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
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    @usableFromInline
    package init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        // Adaptive: spin briefly before sleeping, since the critical sections are a few dozen
        // instructions and a sleep costs two context switches.
        var mutexAttributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&mutexAttributes)
        pthread_mutexattr_settype(&mutexAttributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &mutexAttributes)
        pthread_mutexattr_destroy(&mutexAttributes)
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
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @usableFromInline
    package func lock() { pthread_mutex_lock(mutex) }
    @usableFromInline
    package func unlock() { pthread_mutex_unlock(mutex) }

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
            pthread_cond_wait(condition, mutex)
            return true
        }
        if deadline.hasPassed { return false }
        var time = deadline.posixTime
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }
}
