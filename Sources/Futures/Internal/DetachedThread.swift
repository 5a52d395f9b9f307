import CFuturesShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Starting detached OS threads, and knowing which pool worker the current thread is.
package enum DetachedThread {
    /// The identity a pool worker thread carries in thread-local storage.
    package final class Identity: @unchecked Sendable {
        package let name: String
        package let pool: ObjectIdentifier?
        /// Whether the thread serves a pool (not a helper thread).
        package var isPoolWorker: Bool { pool != nil }
        /// Per-thread state an executor attaches (for example the worker's interpreter).
        package var attachment: AnyObject?

        init(name: String, pool: ObjectIdentifier?) {
            self.name = name
            self.pool = pool
        }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Identity>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// For tests: how many coming ``start(name:pool:_:)`` calls for thread names with a given
    /// prefix fail as if the system had no thread left.
    package static let simulatedFailures = Locked<[String: Int]>([:])

    /// The identity of the current thread, when it is a pool worker.
    package static var current: Identity? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<Identity>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Starts a detached thread named `name` (the OS keeps the first 15 bytes) that runs `body`.
    ///
    /// - Throws: ``ExecutorError`` `.resourceExhausted` when the system cannot start another
    ///   thread (`body` then never runs).
    package static func start(
        name: String, pool: ObjectIdentifier?, _ body: @escaping @Sendable () -> Void
    ) throws(ExecutorError) {
        final class Start {
            let identity: Identity
            let body: @Sendable () -> Void
            init(identity: Identity, body: @escaping @Sendable () -> Void) {
                self.identity = identity
                self.body = body
            }
        }
        let simulated = simulatedFailures.withLock { failures -> Bool in
            guard let prefix = failures.keys.first(where: { name.hasPrefix($0) }), failures[prefix]! > 0 else { return false }
            failures[prefix]! -= 1
            return true
        }
        if simulated { throw ExecutorError(.resourceExhausted, "cannot start thread \(name): simulated failure") }
        let start = Start(identity: Identity(name: name, pool: pool), body: body)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 8 << 20)
        var thread = pthread_t()
        let retained = Unmanaged.passRetained(start)
        let status = pthread_create(
            &thread, &attributes,
            { argument in
                let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
                pthread_setspecific(DetachedThread.key, Unmanaged.passRetained(start.identity).toOpaque())
                cf_set_thread_name(start.identity.name)
                start.body()
                return nil
            }, retained.toOpaque())
        pthread_attr_destroy(&attributes)
        if status != 0 {
            retained.release()
            throw ExecutorError(.resourceExhausted, "cannot start thread \(name): pthread_create failed (errno \(status))")
        }
    }
}
