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
/// the mistake is caught at compile time unless the executor is used through the ``Executor``
/// protocol.
public struct Call<Result: Sendable>: Sendable {
    /// How the call runs on a thread of this process; `nil` when it cannot.
    @usableFromInline
    package let local: (@Sendable () throws -> Result)?
    /// How the call is described to another interpreter or process; `nil` when it cannot be.
    @usableFromInline
    package let remote: RemoteCall?
    /// Turns what the call returned elsewhere back into `Result`.
    @usableFromInline
    package let decode: @Sendable (Value) throws -> Result
    /// What the call is, for error messages: "closure", "guest function 'f'", "job 'j'".
    public let summary: String

    /// A call of a host closure: it runs only on ``ThreadPoolExecutor``.
    public init(_ body: @escaping @Sendable () throws -> Result) {
        local = body
        remote = nil
        decode = { _ in throw NotShareableError("a host closure has no remote form") }
        summary = "host closure"
    }

    @usableFromInline
    package init(
        summary: String,
        local: (@Sendable () throws -> Result)?,
        remote: RemoteCall?,
        decode: @escaping @Sendable (Value) throws -> Result
    ) {
        self.summary = summary
        self.local = local
        self.remote = remote
        self.decode = decode
    }

    /// The same call with `transform` applied to its result, wherever it runs. The transform runs
    /// in this process, after the result has crossed back.
    public func map<Other: Sendable>(_ transform: @escaping @Sendable (Result) throws -> Other) -> Call<Other> {
        let decode = self.decode
        var mappedLocal: (@Sendable () throws -> Other)?
        if let local = self.local {
            mappedLocal = { try transform(try local()) }
        }
        return Call<Other>(
            summary: summary, local: mappedLocal, remote: remote,
            decode: { value in try transform(try decode(value)) })
    }
}

/// The form of a call that can cross to another interpreter or process.
@usableFromInline
package enum RemoteCall: Sendable {
    /// A function exported by a WebAssembly guest module.
    case guest(GuestInvocation)
    /// A Swift job registered by name in the worker program.
    case job(name: String, argument: Value)
    /// A call whose arguments could not be encoded: its future fails with this error.
    case unencodable(NotShareableError)
}

/// A guest function call with its arguments copied into values.
@usableFromInline
package struct GuestInvocation: Sendable {
    package let module: any GuestModuleHandle
    package let function: String
    package let arguments: [Value]
    /// A fuel budget for this call, overriding the executor's.
    package let fuel: UInt64?
    /// A time limit for this call, overriding the executor's.
    package let timeLimit: Duration?

    @usableFromInline
    package init(module: any GuestModuleHandle, function: String, arguments: [Value], fuel: UInt64?, timeLimit: Duration? = nil) {
        self.module = module
        self.function = function
        self.arguments = arguments
        self.fuel = fuel
        self.timeLimit = timeLimit
    }
}

/// A loaded guest module, as seen from this module (the `Interpreters` module implements it).
@usableFromInline
package protocol GuestModuleHandle: AnyObject, Sendable {
    /// The module's WebAssembly bytes.
    var wasmBytes: [UInt8] { get }
    /// A digest of the bytes: equal digests mean the same module in every process.
    var digest: String { get }
}
