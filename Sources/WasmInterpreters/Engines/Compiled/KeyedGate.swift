import Futures

/// Lets one thread at a time work on a key, and any number on different keys.
final class KeyedGate: Sendable {
    private let lock = ConditionLock()
    private nonisolated(unsafe) var busy: Set<String> = []

    /// Runs `body` while no other thread runs a body for `key`.
    func with<T, E: Error>(_ key: String, _ body: () throws(E) -> T) throws(E) -> T {
        lock.withLock {
            while busy.contains(key) { _ = lock.wait(until: nil) }
            busy.insert(key)
        }
        defer {
            lock.withLock {
                busy.remove(key)
                lock.broadcast()
            }
        }
        return try body()
    }
}
