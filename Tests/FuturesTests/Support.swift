import Dispatch
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import ConcurrentFutures

/// A one-shot gate tasks can block on until a test opens it.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let waiters = Atomic<Int>(0)
    private let opened = Atomic<Bool>(false)

    /// Blocks until the gate opens (or 10 s pass, so a broken test cannot hang the suite).
    func wait() {
        waiters.wrappingAdd(1, ordering: .relaxed)
        if opened.load(ordering: .acquiring) { return }
        _ = semaphore.wait(timeout: .now() + 10)
        semaphore.signal()
    }

    func open() {
        opened.store(true, ordering: .releasing)
        semaphore.signal()
    }

    /// The number of threads that reached the gate.
    var arrivals: Int { waiters.load(ordering: .relaxed) }

    /// Blocks until `count` threads reached the gate.
    func awaitArrivals(_ count: Int) {
        let deadline = Deadline.after(.seconds(10))!
        while arrivals < count, !deadline.hasPassed { usleep(1000) }
    }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    @discardableResult func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    var count: Int { value.load(ordering: .relaxed) }
}

/// Thread-safe collection of values in arrival order.
final class Recorder<T: Sendable>: Sendable {
    private let values = Mutex<[T]>([])
    func append(_ value: T) { values.withLock { $0.append(value) } }
    var all: [T] { values.withLock { $0 } }
}

struct Boom: Error, Equatable {
    let id: Int
}

func expectCode(_ code: ExecutorError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(code), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as ExecutorError {
        #expect(error.code == code, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
