import Dispatch
import Futures
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A one-shot gate tasks can block on until a test opens it.
package final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let waiters = Atomic<Int>(0)
    private let opened = Atomic<Bool>(false)

    package init() {}

    /// Blocks until the gate opens (or 10 s pass, so a broken test cannot hang the suite).
    package func wait() {
        waiters.wrappingAdd(1, ordering: .relaxed)
        if opened.load(ordering: .acquiring) { return }
        _ = semaphore.wait(timeout: .now() + 10)
        semaphore.signal()
    }

    package func open() {
        opened.store(true, ordering: .releasing)
        semaphore.signal()
    }

    /// The number of threads that reached the gate.
    package var arrivals: Int { waiters.load(ordering: .relaxed) }

    /// Blocks until `count` threads reached the gate (at most 10 s).
    package func awaitArrivals(_ count: Int) {
        for _ in 0..<10_000 where arrivals < count { usleep(1000) }
    }
}

/// A thread-safe counter.
package final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    package init() {}
    @discardableResult package func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    @discardableResult package func decrement() -> Int { value.wrappingSubtract(1, ordering: .relaxed).newValue }
    package var count: Int { value.load(ordering: .relaxed) }
}

/// Thread-safe collection of values in arrival order.
package final class Recorder<T: Sendable>: Sendable {
    private let values = Locked<[T]>([])
    package init() {}
    package func append(_ value: T) { values.withLock { $0.append(value) } }
    package var all: [T] { values.withLock { $0 } }
}

/// An error tests throw on purpose.
package struct Boom: Error, Equatable {
    package let id: Int
    package init(id: Int) { self.id = id }
}

/// Spins (yielding) until `condition` holds or 10 s pass.
package func waitUntil(_ condition: () -> Bool) {
    for _ in 0..<100_000 where !condition() { usleep(100) }
}

/// Runs `body(index)` on `count` new OS threads at once and waits for all of them. Unlike
/// `DispatchQueue.concurrentPerform`, every body gets its own thread, so bodies may block on
/// each other.
package func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        let box = Unmanaged.passRetained(Box { body(index) }).toOpaque()
        var thread = pthread_t()
        pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// Whether this process runs under a sanitizer that takes fault signals over (ThreadSanitizer,
/// AddressSanitizer, MemorySanitizer).
package let sanitized: Bool = ["__tsan_init", "__asan_init", "__msan_init"].contains { (name: String) in dlsym(nil, name) != nil }

/// Guests the hostile-directory tests share.
package enum PreopenGuests {
    /// A WASI command that opens `t` in its first preopen 3,000 times (closing what opened):
    /// what a FIFO swapped in under `t` tries to hold in `open`.
    package static let opener = """
        (module
          (import "wasi_snapshot_preview1" "path_open"
            (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "t")
          (func (export "_start") (local $i i32)
            (loop $again
              (if (i32.eqz (call $open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 0)
                      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
                (then (drop (call $close (i32.load (i32.const 200))))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $again (i32.lt_u (local.get $i) (i32.const 3000))))))
        """
}
