#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A heap-allocated, adaptive pthread mutex. Its owner must call ``destroy()``.
///
/// The package uses pthread mutexes rather than the standard library's `Mutex` because on Linux
/// `Mutex` is a futex inside the (uninstrumented) runtime library, so ThreadSanitizer cannot see
/// that it orders accesses and reports every access it protects as a race. A pthread mutex is
/// understood by ThreadSanitizer, and just as fast. It lives on the heap so that Swift never
/// moves it.
@usableFromInline
package struct PThreadMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    @usableFromInline
    package init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        // Adaptive: spin briefly before sleeping, since the critical sections are short.
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    @usableFromInline
    package func lock() { pthread_mutex_lock(mutex) }

    @usableFromInline
    package func unlock() { pthread_mutex_unlock(mutex) }

    package func destroy() {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The underlying mutex, for a condition variable to wait on.
    var pointer: UnsafeMutablePointer<pthread_mutex_t> { mutex }
}

/// A value protected by a ``PThreadMutex``: the package's replacement for `Mutex<ShareableValue>`.
package final class Locked<State>: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private var state: State

    package init(_ state: State) { self.state = state }

    deinit { mutex.destroy() }

    /// Runs `body` with exclusive access to the value.
    package func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&state)
    }
}
