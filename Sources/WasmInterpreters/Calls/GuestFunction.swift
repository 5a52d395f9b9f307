public import Futures

/// A function exported by a ``GuestModule``, typed by its result: what a Python program would
/// pass to `submit` as a module-level function.
///
/// It runs on every executor: in the shared main interpreter on ``ThreadPoolExecutor``, in the
/// worker's own interpreter on `InterpreterPoolExecutor`, in the worker process's interpreter on
/// `ProcessPoolExecutor`. Arguments must be ``Futures/Shareable``, so host closures and other
/// values that cannot cross do not compile.
///
/// ```swift
/// let tasks = try GuestModule(contentsOf: "Tasks.wasm")
/// let square = try tasks.function("square", returning: Int.self)
/// let future = try pool.submit(square, 7)      // 49
/// ```
public struct GuestFunction<Success: Shareable>: Sendable, CustomStringConvertible {
    /// The module that exports the function.
    public let module: GuestModule
    /// The export's name.
    public let name: String
    /// A fuel budget for each call, overriding the executor's limits; `nil` keeps them.
    public let fuel: UInt64?
    /// A wall-clock limit for each call, overriding the executor's limits; `nil` keeps them.
    public let timeLimit: Duration?
    /// What each call gives a WASI guest (arguments, environment, stdin, output capture).
    @usableFromInline
    let wasi: WASICallOptions?

    /// Creates a handle; prefer ``GuestModule/function(_:returning:)``, which checks the export.
    public init(module: GuestModule, name: String, fuel: UInt64? = nil, timeLimit: Duration? = nil) {
        self.init(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: nil)
    }

    package init(module: GuestModule, name: String, fuel: UInt64?, timeLimit: Duration?, wasi: WASICallOptions?) {
        self.module = module
        self.name = name
        self.fuel = fuel
        self.timeLimit = timeLimit
        self.wasi = wasi
    }

    /// The same function with a fuel budget of `fuel` per call.
    public func withFuel(_ fuel: UInt64?) -> GuestFunction {
        GuestFunction(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: wasi)
    }

    /// The same function giving a WASI guest `arguments` as `argv[1...]` in each call, instead of
    /// the module's ``WASIOptions/arguments`` (`argv[0]` is the module's name). Ignored by
    /// modules that do not import WASI.
    public func withArguments(_ arguments: [String]) -> GuestFunction {
        withWASI { $0.arguments = arguments }
    }

    /// The same function giving a WASI guest `environment` in each call, instead of the module's
    /// ``WASIOptions/environment``.
    public func withEnvironment(_ environment: [String: String]) -> GuestFunction {
        withWASI { $0.environment = environment }
    }

    /// The same function giving a WASI guest `stdin` as its standard input in each call (empty
    /// unless given: a guest reading more gets end-of-file, never a wait).
    public func withStdin(_ stdin: [UInt8]) -> GuestFunction {
        withWASI { $0.stdin = stdin }
    }

    /// The same function returning each call's standard output and error with its result,
    /// instead of sending them to the module's ``WASIOptions/output`` destination. A module
    /// without WASI returns empty output.
    public func capturingOutput() -> GuestFunction<GuestOutput<Success>> {
        var options = wasi ?? WASICallOptions()
        options.capture = true
        return GuestFunction<GuestOutput<Success>>(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: options)
    }

    private func withWASI(_ change: (inout WASICallOptions) -> Void) -> GuestFunction {
        var options = wasi ?? WASICallOptions()
        change(&options)
        return GuestFunction(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: options)
    }

    /// The same function with a wall-clock limit of `timeLimit` per call (see
    /// ``InterpreterLimits/timeLimit``). It applies on every executor, the thread pool's shared
    /// main interpreter included.
    public func withTimeLimit(_ timeLimit: Duration?) -> GuestFunction {
        GuestFunction(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: wasi)
    }

    /// The same function, returning another type.
    public func returning<Other: Shareable>(_ type: Other.Type) -> GuestFunction<Other> {
        GuestFunction<Other>(module: module, name: name, fuel: fuel, timeLimit: timeLimit, wasi: wasi)
    }

    /// `module.name`.
    public var description: String { "\(module.name).\(name)" }

    /// Binds the function to `arguments`, for ``Futures/PoolExecutor/submit(_:)``.
    ///
    /// An argument that cannot cross (a `Codable` value whose encoding throws) does not fail
    /// here: the call's future fails with ``Futures/NotShareableError``, carrying the encoder's
    /// reason, on every executor.
    @inlinable
    public func call<each Argument: Shareable>(_ arguments: repeat each Argument) -> Call<Success> {
        do {
            let (invocation, keepAlive) = try self.invocation(repeat each arguments)
            return call(invocation, keepAlive: keepAlive)
        } catch {
            return Call(
                kind: "guest function", name: name, local: { throw error }, remote: .unencodable(error), decode: { _ in throw error })
        }
    }

    /// Binds the function to a list of values decided at run time (a command line, a file): the
    /// form of ``call(_:)`` for when the number of arguments is not known at compile time.
    /// Each value is one argument, as a typed argument's ``Futures/Shareable/shareableValue``
    /// would be.
    public func call(arguments: [ShareableValue]) -> Call<Success> {
        var keepAlive: [any AnyObject & Sendable] = []
        collectQueues(arguments, into: &keepAlive)
        let invocation = GuestInvocation(
            module: module, function: name, arguments: arguments, fuel: fuel, timeLimit: timeLimit, wasi: wasi)
        return call(invocation, keepAlive: keepAlive)
    }

    /// The call of `invocation`: in the main interpreter when run in this process, elsewhere as
    /// the invocation itself. `keepAlive` holds the queues the arguments name.
    @inlinable
    func call(_ invocation: GuestInvocation, keepAlive: [any AnyObject & Sendable]) -> Call<Success> {
        // Without queues to keep alive, the closures capture less (and `decode` nothing at all).
        // Without queues to keep alive, the call is its invocation and a decoder that captures
        // nothing: no closure is allocated (a thread pool runs the invocation itself).
        if keepAlive.isEmpty {
            return Call(
                kind: "guest function", name: name, local: nil, remote: .invocation(invocation), decode: { try Success(shareableValue: $0) })
        }
        return Call(
            kind: "guest function", name: name,
            local: {
                withExtendedLifetime(keepAlive) {}
                return try Success(shareableValue: Interpreters.runInMain(invocation))
            },
            remote: .invocation(invocation),
            decode: { value in
                withExtendedLifetime(keepAlive) {}
                return try Success(shareableValue: value)
            })
    }

    /// The invocation for `arguments`, and the queues it names (kept alive with the call).
    ///
    /// - Throws: ``Futures/NotShareableError`` when an argument cannot be encoded.
    @inlinable
    func invocation<each Argument: Shareable>(
        _ arguments: repeat each Argument
    ) throws(NotShareableError) -> (invocation: GuestInvocation, keepAlive: [any AnyObject & Sendable]) {
        var values: [ShareableValue] = []
        for argument in repeat each arguments { values.append(try argument.shareableValue) }
        var keepAlive: [any AnyObject & Sendable] = []
        collectQueues(values, into: &keepAlive)
        return (
            GuestInvocation(module: module, function: name, arguments: values, fuel: fuel, timeLimit: timeLimit, wasi: wasi),
            keepAlive
        )
    }
}

@usableFromInline
func collectQueues(_ values: [ShareableValue], into storages: inout [any AnyObject & Sendable]) {
    for value in values {
        switch value {
        case .queue(let id): if let storage = QueueRegistry.shared.lookup(id) { storages.append(storage) }
        case .array(let elements): collectQueues(elements, into: &storages)
        default: break
        }
    }
}

extension PoolExecutor {
    /// Schedules `function` with `arguments` and returns the future of its result.
    ///
    /// - Throws: What ``Futures/PoolExecutor/submit(_:)`` throws.
    @inlinable
    public func submit<each Argument: Shareable, Success>(
        _ function: GuestFunction<Success>, _ arguments: repeat each Argument
    ) throws -> Future<Success> {
        try submit(function.call(repeat each arguments))
    }

    /// Runs `function` over `inputs`, results in input order. See
    /// ``Futures/PoolExecutor/map(_:timeout:bufferSize:call:)`` for `timeout` and `bufferSize`.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` for a bad `bufferSize`; what
    ///   `submit` throws.
    @inlinable
    public func map<Input: Shareable, Success>(
        _ function: GuestFunction<Success>,
        _ inputs: some Sequence<Input>,
        timeout: Duration? = nil,
        bufferSize: Int? = nil
    ) throws -> MapResults<Success> {
        try map(inputs, timeout: timeout, bufferSize: bufferSize) { function.call($0) }
    }
}

/// A guest function call with its arguments copied into values: what crosses to a worker's
/// interpreter, or to a worker process. A class, so that the pool moves one reference.
@usableFromInline
package final class GuestInvocation: RemoteInvocation {
    package let module: GuestModule
    package let function: String
    package let arguments: [ShareableValue]
    /// A fuel budget for this call, overriding the executor's.
    package let fuel: UInt64?
    /// A time limit for this call, overriding the executor's.
    package let timeLimit: Duration?
    /// What the call gives a WASI guest; `nil` for the module's defaults.
    package let wasi: WASICallOptions?

    @usableFromInline
    package init(
        module: GuestModule, function: String, arguments: [ShareableValue], fuel: UInt64?, timeLimit: Duration? = nil,
        wasi: WASICallOptions? = nil
    ) {
        self.module = module
        self.function = function
        self.arguments = arguments
        self.fuel = fuel
        self.timeLimit = timeLimit
        self.wasi = wasi
    }

    /// Whether the result is `[value, stdout, stderr]`.
    package var capturesOutput: Bool { wasi?.capture ?? false }

    /// Runs the call in the main interpreter (a thread pool's worker).
    @usableFromInline
    package func runHere() throws -> ShareableValue { try Interpreters.runInMain(self) }
}

extension RemoteCall {
    /// The guest call, when this is one.
    @inlinable
    package var guestInvocation: GuestInvocation? {
        if case .invocation(let invocation) = self { return invocation as? GuestInvocation }
        return nil
    }
}
