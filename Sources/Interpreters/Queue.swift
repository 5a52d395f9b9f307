import DequeModule
public import Futures
import Synchronization

/// A FIFO queue shared by interpreters, threads and guests: Python's
/// `concurrent.interpreters.Queue`.
///
/// Values are copied in and copied out, so a guest never sees another's memory. Blocking calls
/// wait on a condition variable (no polling) and honour fractional timeouts exactly (CPython
/// 3.14.10 truncates them to whole seconds, gh-153005). A queue is shared, not copied, when it
/// is passed to a task: it crosses as ``Futures/Value/queue(_:)`` with its id, and guests use it
/// through the `cf.queue_*` host imports (see `docs/guest-abi.md`). Queues live in one process;
/// they cannot be sent to a `ProcessPoolExecutor`.
///
/// The queue exists while any handle to it exists (a `Queue` object, or a task that received it).
public final class Queue: Sendable, Hashable, CustomStringConvertible {
    /// The queue's id, unique in the process.
    public var id: Int { storage.id }
    /// The most items it holds; 0 means unbounded.
    public var maxSize: Int { storage.maxSize }
    /// What happens to items whose interpreter is closed, unless `put` says otherwise.
    public var unboundItems: UnboundItems { storage.defaultUnbound }

    package let storage: QueueStorage

    package init(storage: QueueStorage) { self.storage = storage }

    /// Attaches to the existing queue `id`: Python's `Queue(id)`.
    ///
    /// - Throws: ``QueueError`` `.notFound` when no queue has that id.
    public convenience init(id: Int) throws(QueueError) {
        guard let storage = QueueRegistry.shared.lookup(id) else {
            throw QueueError(.notFound, "no queue with id \(id)")
        }
        self.init(storage: storage)
    }

    /// The number of items now.
    public var count: Int { storage.count }
    /// Whether the queue holds no item.
    public var isEmpty: Bool { storage.count == 0 }
    /// Whether the queue is bounded and holds `maxSize` items; always `false` when unbounded.
    public var isFull: Bool { storage.isFull }

    /// Appends a copy of `value`, waiting up to `timeout` (forever when `nil`) for room.
    ///
    /// - Throws: ``QueueFull`` when `timeout` passes with the queue still full.
    @available(*, noasync, message: "Blocks the thread; use the async form")
    public func put(_ value: some Shareable, timeout: Duration? = nil, unboundItems: UnboundItems? = nil) throws(QueueFull) {
        try storage.put(value.shareableValue, deadline: Deadline.after(timeout), unbound: unboundItems)
    }

    /// Appends a copy of `value` without waiting.
    ///
    /// - Throws: ``QueueFull`` when the queue is full.
    public func putNowait(_ value: some Shareable, unboundItems: UnboundItems? = nil) throws(QueueFull) {
        try storage.put(value.shareableValue, deadline: Deadline.now, unbound: unboundItems)
    }

    /// Removes and returns the oldest item, waiting up to `timeout` (forever when `nil`).
    ///
    /// - Throws: ``QueueEmpty`` when `timeout` passes with the queue still empty;
    ///   ``QueueError`` `.itemInterpreterDestroyed` for an item unbound under ``UnboundItems/error``.
    @available(*, noasync, message: "Blocks the thread; use the async form")
    public func get(timeout: Duration? = nil) throws -> Value {
        try storage.get(deadline: Deadline.after(timeout))
    }

    /// Removes the oldest item and converts it to `T`, waiting up to `timeout`.
    ///
    /// - Throws: What ``get(timeout:)`` throws, or ``Futures/ValueCodingError`` when the item is
    ///   not a `T`.
    @available(*, noasync, message: "Blocks the thread; use the async form")
    public func get<T: Shareable>(as type: T.Type, timeout: Duration? = nil) throws -> T {
        try T(shareableValue: storage.get(deadline: Deadline.after(timeout)))
    }

    /// Removes and returns the oldest item without waiting.
    ///
    /// - Throws: ``QueueEmpty`` when the queue is empty.
    public func getNowait() throws -> Value {
        try storage.get(deadline: Deadline.now)
    }

    /// The async twin of ``put(_:timeout:unboundItems:)``: waits for room without blocking the
    /// caller's thread.
    ///
    /// - Throws: ``QueueFull`` when `timeout` passes.
    public func put(_ value: some Shareable, timeout: Duration? = nil, unboundItems: UnboundItems? = nil) async throws {
        let item = value.shareableValue
        let storage = self.storage
        let deadline = Deadline.after(timeout)
        try await runBlocking { try storage.put(item, deadline: deadline, unbound: unboundItems) }
    }

    /// The async twin of ``get(as:timeout:)``.
    ///
    /// - Throws: ``QueueEmpty`` when `timeout` passes, or ``Futures/ValueCodingError`` when the
    ///   item is not a `T`.
    public func get<T: Shareable>(as type: T.Type, timeout: Duration? = nil) async throws -> T {
        try T(shareableValue: await get(timeout: timeout))
    }

    /// The async twin of ``get(timeout:)``: waits for an item without blocking the caller's
    /// thread.
    ///
    /// - Throws: ``QueueEmpty`` when `timeout` passes.
    public func get(timeout: Duration? = nil) async throws -> Value {
        let storage = self.storage
        let deadline = Deadline.after(timeout)
        return try await runBlocking { try storage.get(deadline: deadline) }
    }

    /// Two handles are equal when they name the same queue.
    public static func == (lhs: Queue, rhs: Queue) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    /// `Queue(<id>)`.
    public var description: String { "Queue(\(id))" }
}

extension Queue: Shareable {
    /// A queue crosses as its id; the receiver gets a handle to the same queue.
    public var shareableValue: Value { .queue(id) }

    /// Attaches to the queue a ``Futures/Value/queue(_:)`` names.
    ///
    /// - Throws: ``Futures/ValueCodingError`` for another kind of value; ``QueueError``
    ///   `.notFound` when the queue no longer exists.
    public convenience init(shareableValue value: Value) throws {
        guard case .queue(let id) = value else { throw ValueCodingError.mismatch(expected: "queue", got: value) }
        try self.init(id: id)
    }

    public static var isNativelyShareable: Bool { true }
}

/// Runs a blocking body on a dedicated thread and returns its outcome.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    let result = Locked<Result<T, any Error>?>(nil)
    await runOnDedicatedThread { result.withLock { $0 = Result { try body() } } }
    return try result.withLock { $0! }.get()
}

/// The shared state of one queue.
package final class QueueStorage: @unchecked Sendable {
    struct Item {
        var value: Value
        var interpreterID: Int
        var unbound: UnboundItems
        var orphaned = false
    }

    let id: Int
    let maxSize: Int
    let defaultUnbound: UnboundItems
    private let lock = ConditionLock()
    private var items = Deque<Item>()

    init(id: Int, maxSize: Int, unbound: UnboundItems) {
        self.id = id
        self.maxSize = maxSize
        defaultUnbound = unbound
    }

    deinit { QueueRegistry.shared.remove(id) }

    var count: Int { lock.withLock { items.count } }
    var isFull: Bool { lock.withLock { maxSize > 0 && items.count >= maxSize } }

    func put(_ value: Value, deadline: Deadline?, unbound: UnboundItems?) throws(QueueFull) {
        let item = Item(value: value, interpreterID: Interpreters.currentID, unbound: unbound ?? defaultUnbound)
        lock.lock()
        defer { lock.unlock() }
        while maxSize > 0, items.count >= maxSize {
            guard lock.wait(until: deadline) else {
                if items.count < maxSize { break }
                throw QueueFull(queueID: id)
            }
        }
        items.append(item)
        lock.broadcast()
    }

    func get(deadline: Deadline?) throws -> Value {
        try take(deadline: deadline).value
    }

    /// Removes and returns the oldest item as stored, waiting up to `deadline`.
    ///
    /// - Throws: ``QueueEmpty`` on timeout; ``QueueError`` for an item orphaned under
    ///   ``UnboundItems/error`` (which is consumed).
    func take(deadline: Deadline?) throws -> Item {
        try take(deadline: deadline) { _ in true }!
    }

    /// Like ``take(deadline:)``, but leaves the oldest item at the head and returns `nil` when
    /// `accept` refuses its value.
    func take(deadline: Deadline?, accept: (Value) -> Bool) throws -> Item? {
        lock.lock()
        defer { lock.unlock() }
        while items.isEmpty {
            guard lock.wait(until: deadline) else {
                if !items.isEmpty { break }
                throw QueueEmpty(queueID: id)
            }
        }
        guard items[0].orphaned || accept(items[0].value) else { return nil }
        let item = items.removeFirst()
        lock.broadcast()
        if item.orphaned {
            throw QueueError(.itemInterpreterDestroyed, "item's original interpreter \(item.interpreterID) was closed")
        }
        return item
    }

    /// Puts back an item taken with ``take(deadline:)`` at the head, when it could not be delivered.
    func restore(_ item: Item) {
        lock.withLock {
            items.insert(item, at: 0)
            lock.broadcast()
        }
    }

    /// Applies each item's unbound policy after `interpreterID` was closed.
    func interpreterClosed(_ interpreterID: Int) {
        lock.withLock {
            items.removeAll { $0.interpreterID == interpreterID && $0.unbound == .remove }
            for index in items.indices where items[index].interpreterID == interpreterID && items[index].unbound == .error {
                items[index].orphaned = true
            }
            lock.broadcast()
        }
    }
}

/// Every live queue, by id.
package final class QueueRegistry: Sendable {
    private struct Weak {
        weak var storage: QueueStorage?
    }

    private struct State {
        var queues: [Int: Weak] = [:]
        var nextID = 1
    }

    private let state = Locked(State())

    static let shared = QueueRegistry()

    func create(maxSize: Int, unbound: UnboundItems) -> QueueStorage {
        state.withLock { state in
            let storage = QueueStorage(id: state.nextID, maxSize: max(0, maxSize), unbound: unbound)
            state.queues[state.nextID] = Weak(storage: storage)
            state.nextID += 1
            return storage
        }
    }

    func lookup(_ id: Int) -> QueueStorage? {
        state.withLock { $0.queues[id]?.storage }
    }

    func remove(_ id: Int) {
        state.withLock { state in
            if state.queues[id]?.storage == nil { state.queues[id] = nil }
        }
    }

    /// The ids of every live queue.
    var ids: [Int] { state.withLock { $0.queues.filter { $0.value.storage != nil }.keys.sorted() } }

    func interpreterClosed(_ interpreterID: Int) {
        let live = state.withLock { $0.queues.values.compactMap(\.storage) }
        for storage in live { storage.interpreterClosed(interpreterID) }
    }
}
