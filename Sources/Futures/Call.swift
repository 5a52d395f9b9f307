/// One invocation, bound to its arguments and ready to submit: what Python passes to `submit`
/// as `fn, *args`.
///
/// A call says how it can run, and each executor takes the forms it supports:
/// - in this process, on the worker thread (``ThreadPoolExecutor``): any call;
/// - inside a worker's own interpreter (`InterpreterPoolExecutor`): guest function calls;
/// - in a worker process (`ProcessPoolExecutor`): guest function calls and named jobs.
///
/// A host closure (``init(_:)``) can only run in this process; submitting it to an executor that
/// isolates its workers fails with ``NotShareableError``, as a closure that captures state
/// fails in Python. The concrete executor types only offer `submit { ... }` where it works, so
/// the mistake is caught at compile time unless the executor is used through the ``PoolExecutor``
/// protocol.
public struct Call<Success: Sendable>: Sendable {
    /// How the call runs on a thread of this process, when it has a body of its own; a call of
    /// a ``RemoteInvocation`` without one runs that invocation here (see ``localBody``), so that
    /// the calls an interpreter pool takes allocate no closure they never run.
    @usableFromInline
    package let local: (@Sendable () throws -> Success)?
    /// How the call is described to another interpreter or process; `nil` when it cannot be.
    @usableFromInline
    package let remote: RemoteCall?
    /// Turns what the call returned elsewhere back into `Success`.
    @usableFromInline
    package let decode: @Sendable (ShareableValue) throws -> Success
    /// What the call is, for error messages: "host closure", "guest function 'f'", "job 'j'".
    /// Built when asked: a call is made for every item of a `map`, its summary rarely read.
    public var summary: String { summaryName.isEmpty ? summaryKind : "\(summaryKind) '\(summaryName)'" }
    @usableFromInline
    let summaryKind: String
    @usableFromInline
    let summaryName: String

    /// A call of a host closure: it runs only on ``ThreadPoolExecutor``.
    public init(_ body: @escaping @Sendable () throws -> Success) {
        local = body
        remote = nil
        decode = { _ in throw NotShareableError("a host closure has no remote form") }
        summaryKind = "host closure"
        summaryName = ""
    }

    /// A call described as `kind 'name'` (or `kind` alone when `name` is empty).
    @usableFromInline
    package init(
        kind: String,
        name: String = "",
        local: (@Sendable () throws -> Success)?,
        remote: RemoteCall?,
        decode: @escaping @Sendable (ShareableValue) throws -> Success
    ) {
        summaryKind = kind
        summaryName = name
        self.local = local
        self.remote = remote
        self.decode = decode
    }

    /// How the call runs on a thread of this process; `nil` when it cannot.
    @inlinable
    package var localBody: (@Sendable () throws -> Success)? {
        if let local { return local }
        guard case .invocation(let invocation)? = remote else { return nil }
        let decode = decode
        return { try decode(invocation.runHere()) }
    }

    /// The same call with its result ignored: what an executor's `initializer` takes, so that
    /// any call (a closure, a job, a guest function) can prepare a worker.
    public func discardingResult() -> Call<Void> {
        map { _ in () }
    }

    /// The same call with `transform` applied to its result, wherever it runs. The transform runs
    /// in this process, after the result has crossed back.
    public func map<Other: Sendable>(_ transform: @escaping @Sendable (Success) throws -> Other) -> Call<Other> {
        let decode = self.decode
        var mappedLocal: (@Sendable () throws -> Other)?
        if let local = self.local {
            mappedLocal = { try transform(try local()) }
        }
        return Call<Other>(
            kind: summaryKind, name: summaryName, local: mappedLocal, remote: remote,
            decode: { value in try transform(try decode(value)) })
    }
}

/// The form of a call that can cross to another interpreter or process.
@usableFromInline
package enum RemoteCall: Sendable {
    /// A call of code this module does not know (a guest function), which the executors that
    /// know it recognize by its type.
    case invocation(any RemoteInvocation)
    /// A Swift job registered by name in the worker program.
    case job(name: String, argument: ShareableValue)
    /// A call whose arguments could not be encoded: its future fails with this error.
    case unencodable(NotShareableError)
}

/// A call of code defined outside this module, such as a guest function. `Futures` only carries
/// it; the module that defines the conforming type runs it.
@usableFromInline
package protocol RemoteInvocation: AnyObject, Sendable {
    /// Runs the invocation on the calling thread, in this process (a guest function in the main
    /// interpreter): how ``ThreadPoolExecutor`` runs it.
    func runHere() throws -> ShareableValue
}
