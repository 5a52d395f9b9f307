public import Futures

/// ``InterpreterQueue/get(timeout:)`` timed out, or ``InterpreterQueue/getNowait()`` found the queue empty: Python's
/// `QueueEmpty`.
public struct QueueEmptyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The queue's id.
    public let queueID: Int
    /// Creates an error.
    public init(queueID: Int) { self.queueID = queueID }
    public var description: String { "QueueEmptyError: queue \(queueID) is empty" }
}

/// ``InterpreterQueue/put(_:timeout:unboundItems:)`` timed out, or ``InterpreterQueue/putNowait(_:unboundItems:)``
/// found the queue full: Python's `QueueFull`.
public struct QueueFullError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The queue's id.
    public let queueID: Int
    /// Creates an error.
    public init(queueID: Int) { self.queueID = queueID }
    public var description: String { "QueueFullError: queue \(queueID) is full" }
}

/// A queue that no longer exists was used: Python's `QueueNotFoundError`, or an item whose
/// interpreter was closed under ``UnboundItems/error``: Python's `ItemInterpreterDestroyed`.
public struct QueueError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<QueueError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.notFound, .itemInterpreterDestroyed]

    /// What went wrong.
    public let code: Code
    /// Details.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension ErrorCode where Domain == QueueError {
    /// No queue has this id (it was never created, or every handle to it is gone).
    public static let notFound = Self("notFound")
    /// The item's interpreter was closed and the item was put with ``UnboundItems/error``.
    public static let itemInterpreterDestroyed = Self("itemInterpreterDestroyed")
}

/// What happens to a queued item when the interpreter that put it is closed.
///
/// Items are always copies that own their data, so unlike CPython nothing *must* happen: the
/// default keeps them. ``remove`` and ``error`` reproduce CPython's `UNBOUND_REMOVE` and
/// `UNBOUND_ERROR`. Items put from outside any worker interpreter (the main interpreter) are
/// never affected.
public enum UnboundItems: Sendable, Hashable {
    /// The item stays in the queue and reads back unchanged.
    case keep
    /// The item is removed from the queue when its interpreter is closed.
    case remove
    /// The item stays; getting it throws ``QueueError`` `.itemInterpreterDestroyed` and
    /// consumes it.
    case error
}
