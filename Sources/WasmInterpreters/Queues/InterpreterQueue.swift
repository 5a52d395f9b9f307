import DequeModule
public import Futures
import Synchronization

/// A FIFO queue shared by interpreters, threads and guests: Python's
/// `concurrent.interpreters.Queue`.
///
/// Values are copied in and copied out, so a guest never sees another's memory. Blocking calls
/// wait on a condition variable (no polling) and honour fractional timeouts exactly (CPython
/// 3.14.10 truncates them to whole seconds, gh-153005). A queue is shared, not copied, when it
/// is passed to a task: it crosses as ``Futures/ShareableValue/queue(_:)`` with its id, and guests use it
/// through the `cf.queue_*` host imports (see `docs/guest-abi.md`). Queues live in one process;
/// they cannot be sent to a `ProcessPoolExecutor`.
///
/// The queue exists while any handle to it exists (an `InterpreterQueue` object, or a task that received it).
public final class InterpreterQueue: Sendable, Hashable, CustomStringConvertible {
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
    /// - Throws: ``QueueFullError`` when `timeout` passes with the queue still full;
    ///   ``Futures/NotShareableError`` when `value` cannot be encoded.
    @available(*, noasync, message: "Blocks the thread; use the async form")
    public func put(_ value: some Shareable, timeout: Duration? = nil, unboundItems: UnboundItems? = nil) throws {
        try storage.put(value.shareableValue, deadline: Deadline.after(timeout), unbound: unboundItems)
    }

    /// Appends a copy of `value` without waiting.
    ///
    /// - Throws: ``QueueFullError`` when the queue is full; ``Futures/NotShareableError`` when
    ///   `value` cannot be encoded.
    public func putNowait(_ value: some Shareable, unboundItems: UnboundItems? = nil) throws {
        try storage.put(value.shareableValue, deadline: Deadline.now, unbound: unboundItems)
    }

    /// Removes and returns the oldest item, waiting up to `timeout` (forever when `nil`).
    ///
    /// - Throws: ``QueueEmptyError`` when `timeout` passes with the queue still empty;
    ///   ``QueueError`` `.itemInterpreterDestroyed` for an item unbound under ``UnboundItems/error``.
    @available(*, noasync, message: "Blocks the thread; use the async form")
    public func get(timeout: Duration? = nil) throws -> ShareableValue {
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
    /// - Throws: ``QueueEmptyError`` when the queue is empty.
    public func getNowait() throws -> ShareableValue {
        try storage.get(deadline: Deadline.now)
    }

    /// The async twin of ``put(_:timeout:unboundItems:)``: waits for room without blocking a
    /// thread (the waiting task is registered with the queue and resumed when room appears).
    ///
    /// - Throws: ``QueueFullError`` when `timeout` passes; `CancellationError` when the task is
    ///   cancelled while waiting (the value is then not put); ``Futures/NotShareableError``
    ///   when `value` cannot be encoded.
    public func put(_ value: some Shareable, timeout: Duration? = nil, unboundItems: UnboundItems? = nil) async throws {
        try await storage.put(value.shareableValue, deadline: Deadline.after(timeout), unbound: unboundItems)
    }

    /// The async twin of ``get(as:timeout:)``.
    ///
    /// - Throws: What ``get(timeout:)`` throws, `CancellationError`, or
    ///   ``Futures/ValueCodingError`` when the item is not a `T`.
    public func get<T: Shareable>(as type: T.Type, timeout: Duration? = nil) async throws -> T {
        try T(shareableValue: await get(timeout: timeout))
    }

    /// The async twin of ``get(timeout:)``: waits for an item without blocking a thread (the
    /// waiting task is registered with the queue and resumed with the next item).
    ///
    /// - Throws: ``QueueEmptyError`` when `timeout` passes; `CancellationError` when the task is
    ///   cancelled while waiting (no item is taken then); ``QueueError``
    ///   `.itemInterpreterDestroyed` for an item unbound under ``UnboundItems/error``.
    public func get(timeout: Duration? = nil) async throws -> ShareableValue {
        try await storage.get(deadline: Deadline.after(timeout))
    }

    /// Two handles are equal when they name the same queue.
    public static func == (lhs: InterpreterQueue, rhs: InterpreterQueue) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
    /// `Queue(<id>)`.
    public var description: String { "Queue(\(id))" }
}

extension InterpreterQueue: AsyncSequence {
    /// Items are values: what the queue holds.
    public typealias Element = ShareableValue

    /// Takes items as they come, for ever: `for try await item in queue { ... }`. Iteration ends
    /// (returns `nil`) when the consuming task is cancelled; an item unbound under
    /// ``UnboundItems/error`` throws ``QueueError``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let storage: QueueStorage

        /// The next item; `nil` once the task is cancelled.
        ///
        /// - Throws: ``QueueError`` `.itemInterpreterDestroyed`.
        public mutating func next() async throws -> ShareableValue? {
            do {
                return try await storage.get(deadline: nil)
            } catch is CancellationError {
                return nil
            }
        }
    }

    /// An iterator that takes items from the queue.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(storage: storage) }
}

extension InterpreterQueue: Shareable {
    /// A queue crosses as its id; the receiver gets a handle to the same queue.
    public var shareableValue: ShareableValue { .queue(id) }

    /// Attaches to the queue a ``Futures/ShareableValue/queue(_:)`` names.
    ///
    /// - Throws: ``Futures/ValueCodingError`` for another kind of value; ``QueueError``
    ///   `.notFound` when the queue no longer exists.
    public convenience init(shareableValue value: ShareableValue) throws {
        guard case .queue(let id) = value else { throw ValueCodingError.mismatch(expected: "queue", got: value) }
        try self.init(id: id)
    }

    public static var isNativelyShareable: Bool { true }
}

/// The shared state of one queue.
///
/// Threads wait on a condition variable; tasks wait as continuations registered here (no thread
/// each): a put hands its value straight to the oldest waiting task, and a get admits the oldest
/// task waiting for room. A timed wait of a task is ended by a timer task; cancelling the waiting
/// task removes it at once.
package final class QueueStorage: @unchecked Sendable {
    struct Item {
        var value: ShareableValue
        var interpreterID: Int
        var unbound: UnboundItems
        var orphaned = false
        /// What the value counts against the memory limit of the guest that put it.
        var charge: QueueCharge?
    }

    /// A task waiting for an item, or for room to put one.
    final class Waiter: @unchecked Sendable {
        var continuation: CheckedContinuation<ShareableValue, any Error>?
        /// For a putter: the item it waits to put.
        var item: Item?
        var cancelled = false
        var timer: Task<Void, Never>?
    }

    let id: Int
    let maxSize: Int
    let defaultUnbound: UnboundItems
    private let lock = ConditionLock()
    private var items = Deque<Item>()
    private var getters = Deque<Waiter>()
    private var putters = Deque<Waiter>()

    init(id: Int, maxSize: Int, unbound: UnboundItems) {
        self.id = id
        self.maxSize = maxSize
        defaultUnbound = unbound
    }

    deinit { QueueRegistry.shared.remove(id) }

    var count: Int { lock.withLock { items.count } }
    var isFull: Bool { lock.withLock { isFullLocked } }
    private var isFullLocked: Bool { maxSize > 0 && items.count >= maxSize }

    private func makeItem(_ value: ShareableValue, unbound: UnboundItems?, charge: QueueCharge?) -> Item {
        Item(value: value, interpreterID: Interpreters.currentID, unbound: unbound ?? defaultUnbound, charge: charge)
    }

    func put(_ value: ShareableValue, deadline: Deadline?, unbound: UnboundItems?, charge: QueueCharge? = nil) throws(QueueFullError) {
        let item = makeItem(value, unbound: unbound, charge: charge)
        lock.lock()
        while isFullLocked {
            guard lock.wait(until: deadline) else {
                if !isFullLocked { break }
                lock.unlock()
                charge?.release()
                throw QueueFullError(queueID: id)
            }
        }
        let resume = enqueueLocked(item)
        lock.unlock()
        resume?()
    }

    /// Adds `item`, or hands it to the oldest waiting task; returns the resumption to run
    /// outside the lock.
    private func enqueueLocked(_ item: Item) -> (() -> Void)? {
        while let getter = getters.popFirst() {
            guard let continuation = getter.take() else { continue }
            item.charge?.release()
            return { continuation.resume(returning: item.value) }
        }
        items.append(item)
        lock.broadcast()
        return nil
    }

    func get(deadline: Deadline?) throws -> ShareableValue {
        try take(deadline: deadline).value
    }

    /// Removes and returns the oldest item as stored, waiting up to `deadline`.
    ///
    /// - Throws: ``QueueEmptyError`` on timeout; ``QueueError`` for an item orphaned under
    ///   ``UnboundItems/error`` (which is consumed).
    func take(deadline: Deadline?) throws -> Item {
        try take(deadline: deadline) { _ in true }!
    }

    /// Like ``take(deadline:)``, but leaves the oldest item at the head and returns `nil` when
    /// `accept` refuses its value.
    func take(deadline: Deadline?, accept: (ShareableValue) -> Bool) throws -> Item? {
        lock.lock()
        while items.isEmpty {
            guard lock.wait(until: deadline) else {
                if !items.isEmpty { break }
                lock.unlock()
                throw QueueEmptyError(queueID: id)
            }
        }
        guard items[0].orphaned || accept(items[0].value) else {
            lock.unlock()
            return nil
        }
        let (item, admitted) = removeFirstLocked()
        lock.unlock()
        for resume in admitted { resume() }
        if item.orphaned {
            throw QueueError(.itemInterpreterDestroyed, "item's original interpreter \(item.interpreterID) was closed")
        }
        return item
    }

    /// Removes the head item, releasing its charge, and admits waiting putters into the room it
    /// leaves; returns the item and the resumptions to run outside the lock.
    private func removeFirstLocked() -> (Item, [() -> Void]) {
        let item = items.removeFirst()
        item.charge?.release()
        lock.broadcast()
        return (item, admitPuttersLocked())
    }

    private func admitPuttersLocked() -> [() -> Void] {
        var resumptions: [() -> Void] = []
        while !isFullLocked, let putter = putters.popFirst() {
            guard let item = putter.item, let continuation = putter.take() else { continue }
            if let handed = enqueueLocked(item) { resumptions.append(handed) }
            resumptions.append { continuation.resume(returning: .none) }
        }
        return resumptions
    }

    /// Puts back an item taken with ``take(deadline:)`` at the head, when it could not be delivered.
    func restore(_ item: Item) {
        var item = item
        item.charge = nil
        let resume: (() -> Void)? = lock.withLock {
            if !getters.isEmpty { return enqueueLocked(item) }
            items.insert(item, at: 0)
            lock.broadcast()
            return nil
        }
        resume?()
    }

    /// Applies each item's unbound policy after `interpreterID` was closed.
    func interpreterClosed(_ interpreterID: Int) {
        let admitted: [() -> Void] = lock.withLock {
            var kept = Deque<Item>()
            for item in items {
                if item.interpreterID == interpreterID && item.unbound == .remove {
                    item.charge?.release()
                } else {
                    kept.append(item)
                }
            }
            items = kept
            for index in items.indices where items[index].interpreterID == interpreterID && items[index].unbound == .error {
                items[index].orphaned = true
            }
            lock.broadcast()
            return admitPuttersLocked()
        }
        for resume in admitted { resume() }
    }

    // MARK: Tasks

    /// Takes the oldest item, suspending the task (not blocking a thread) until one comes or
    /// `deadline` passes.
    func get(deadline: Deadline?) async throws -> ShareableValue {
        let waiter = Waiter()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ShareableValue, any Error>) in
                lock.lock()
                if !items.isEmpty {
                    let (item, admitted) = removeFirstLocked()
                    lock.unlock()
                    for resume in admitted { resume() }
                    if item.orphaned {
                        continuation.resume(
                            throwing: QueueError(
                                .itemInterpreterDestroyed, "item's original interpreter \(item.interpreterID) was closed"))
                    } else {
                        continuation.resume(returning: item.value)
                    }
                    return
                }
                parkLocked(waiter, on: \.getters, continuation, deadline: deadline, timeout: QueueEmptyError(queueID: id))
            }
        } onCancel: {
            abandon(waiter, with: CancellationError())
        }
    }

    /// Puts `value`, suspending the task until there is room or `deadline` passes.
    func put(_ value: ShareableValue, deadline: Deadline?, unbound: UnboundItems?) async throws {
        let waiter = Waiter()
        let item = makeItem(value, unbound: unbound, charge: nil)
        _ = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ShareableValue, any Error>) in
                lock.lock()
                if !isFullLocked {
                    let resume = enqueueLocked(item)
                    lock.unlock()
                    resume?()
                    continuation.resume(returning: .none)
                    return
                }
                waiter.item = item
                parkLocked(waiter, on: \.putters, continuation, deadline: deadline, timeout: QueueFullError(queueID: id))
            }
        } onCancel: {
            abandon(waiter, with: CancellationError())
        }
    }

    /// Called with the lock held when a task must wait: fails it at once when it was cancelled or
    /// `deadline` has passed, otherwise parks `waiter` on `list` with its timer. Unlocks.
    private func parkLocked(
        _ waiter: Waiter, on list: ReferenceWritableKeyPath<QueueStorage, Deque<Waiter>>,
        _ continuation: CheckedContinuation<ShareableValue, any Error>, deadline: Deadline?, timeout: any Error & Sendable
    ) {
        if waiter.cancelled || deadline?.hasPassed == true {
            lock.unlock()
            continuation.resume(throwing: waiter.cancelled ? CancellationError() : timeout)
            return
        }
        waiter.continuation = continuation
        Self.append(waiter, to: &self[keyPath: list])
        lock.unlock()
        if let deadline { startTimer(waiter, deadline: deadline, error: timeout) }
    }

    private func startTimer(_ waiter: Waiter, deadline: Deadline, error: any Error & Sendable) {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: deadline.remaining)
            if Task.isCancelled { return }
            self?.abandon(waiter, with: error)
        }
        let cancelAtOnce = lock.withLock {
            waiter.timer = timer
            return waiter.continuation == nil
        }
        if cancelAtOnce { timer.cancel() }
    }

    /// Ends a waiting task with `error` (cancellation or timeout), if it still waits. The waiter
    /// stays in its list, inert, until it is popped or compacted away.
    private func abandon(_ waiter: Waiter, with error: any Error) {
        let continuation: CheckedContinuation<ShareableValue, any Error>? = lock.withLock {
            waiter.cancelled = true
            return waiter.take()
        }
        continuation?.resume(throwing: error)
    }

    /// Appends a waiter, dropping abandoned ones whenever the list doubles, so that tasks that
    /// time out or are cancelled do not accumulate.
    private static func append(_ waiter: Waiter, to list: inout Deque<Waiter>) {
        if list.count >= 64, list.count.nonzeroBitCount == 1 {
            list.removeAll { $0.continuation == nil }
        }
        list.append(waiter)
    }
}

extension QueueStorage.Waiter {
    /// The continuation, once: later callers get `nil`. The queue's lock must be held. Cancels
    /// the waiter's timer.
    func take() -> CheckedContinuation<ShareableValue, any Error>? {
        defer {
            continuation = nil
            timer?.cancel()
            timer = nil
        }
        return continuation
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
