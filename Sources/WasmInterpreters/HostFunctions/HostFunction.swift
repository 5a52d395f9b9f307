/// A function written in Swift that guests import by name (`module.field`): the plugin API, as
/// Wasmtime's `Linker.func_wrap` or a JavaScript `importObject`.
///
/// A host function has a WebAssembly signature of numbers (``WasmValueType``), at most one
/// result. Strings, bytes and structured values cross through the guest ABI: the guest passes a
/// pointer and a length, which ``HostCall`` reads from its memory (``HostCall/string(_:)``,
/// ``HostCall/bytes(_:)``, ``HostCall/value(_:)``); the host returns them in memory it asks the
/// guest's `cf_alloc` for, as one `i64` (``HostCall/returning(string:)``: address in the low 32
/// bits, length in the high 32). See docs/guests.md for a worked plugin.
///
/// ```swift
/// let log = HostFunction(module: "env", name: "log", parameters: [.i32, .i32, .i32]) { call in
///     print("[\(call.arguments[0].int32!)] \(try call.string(1))")
///     return []
/// }
/// let plugin = try GuestModule(contentsOf: "plugin.wasm", linker: Linker([log]))
/// ```
///
/// The body runs on the thread that runs the guest, inside the call: the call's fuel and time
/// limit go on counting (the call fails with `timedOut` when the body returns past its deadline;
/// ``HostCall/remainingTime`` tells how long it has), reads and writes of guest memory are
/// charged like the `cf` imports' (one unit of fuel per 64 bytes), and a body that calls back
/// into the guest (``HostCall/callGuest(_:_:)``, ``HostCall/allocate(_:)``) does so one level
/// deep. A body that throws fails the guest's call with ``GuestError``: with the kind of a
/// ``HostFunctionFailure``, or `.hostFunction` for any other error, whose description becomes
/// the message.
public struct HostFunction: Sendable, CustomStringConvertible {
    /// The import's module name, such as `env`.
    public let module: String
    /// The import's field name, such as `log`.
    public let name: String
    /// The parameter types, in order.
    public let parameters: [WasmValueType]
    /// The result types: none or one.
    public let results: [WasmValueType]
    /// The function.
    public let body: @Sendable (HostCall) throws -> [WasmValue]

    /// A host function guests import as `module.name`, with the given signature.
    ///
    /// - Parameter body: Runs the call; returns one value per result type, of that type (a
    ///   result of another shape fails the guest's call with `badArguments`).
    public init(
        module: String, name: String, parameters: [WasmValueType] = [], results: [WasmValueType] = [],
        body: @escaping @Sendable (HostCall) throws -> [WasmValue]
    ) {
        self.module = module
        self.name = name
        self.parameters = parameters
        self.results = results
        self.body = body
    }

    /// `env.log (i32, i32, i32)`.
    public var description: String {
        "\(module).\(name) (\(parameters.map(\.rawValue).joined(separator: ", ")))"
            + (results.isEmpty ? "" : " -> \(results.map(\.rawValue).joined(separator: ", "))")
    }

    /// `module.name`.
    var qualifiedName: String { "\(module).\(name)" }
}

/// An error a host function throws to fail the guest's call with a ``GuestError`` of a chosen
/// kind (`.hostFunction` unless given) and message.
public struct HostFunctionFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of the ``GuestError`` the call fails with.
    public let kind: GuestError.Kind
    /// What went wrong, for the error's message.
    public let message: String

    /// A failure of kind `kind` saying `message`.
    public init(_ message: String, kind: GuestError.Kind = .hostFunction) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
